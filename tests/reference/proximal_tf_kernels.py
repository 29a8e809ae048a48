"""TensorFlow's own proximal kernels (tf.raw_ops) as oracles for the tests.

Thin wrappers that apply `ResourceApply*` / `ResourceSparseApply*` to plain
`tf.Variable`s. The raw sparse kernels apply repeated indices one after the
other, so callers pass de-duplicated indices (TF1's Python optimizer summed
duplicates before calling them).
"""

import tensorflow as tf


def _scalar(x, dtype):
    return tf.constant(x, dtype)


def proximal_sgd(var, grad, lr, l1, l2, indices=None):
    dtype = var.dtype
    args = dict(
        var=var.handle,
        alpha=_scalar(lr, dtype),
        l1=_scalar(l1, dtype),
        l2=_scalar(l2, dtype),
    )
    grad = tf.constant(grad, dtype)
    if indices is None:
        tf.raw_ops.ResourceApplyProximalGradientDescent(delta=grad, **args)
    else:
        tf.raw_ops.ResourceSparseApplyProximalGradientDescent(
            grad=grad, indices=tf.constant(indices), **args
        )


def proximal_adagrad(var, accum, grad, lr, l1, l2, indices=None):
    dtype = var.dtype
    args = dict(
        var=var.handle,
        accum=accum.handle,
        lr=_scalar(lr, dtype),
        l1=_scalar(l1, dtype),
        l2=_scalar(l2, dtype),
        grad=tf.constant(grad, dtype),
    )
    if indices is None:
        tf.raw_ops.ResourceApplyProximalAdagrad(**args)
    else:
        tf.raw_ops.ResourceSparseApplyProximalAdagrad(
            indices=tf.constant(indices), **args
        )
