"""Proximal operators of the L1 and squared-L2 penalties.

Pure tensor functions (no variables), written with `keras.ops` so they run
eagerly, inside `tf.function` and under XLA (`jit_compile=True`), for any
floating dtype. They are shared by `ProximalSGD`, `ProximalAdagrad` and `GRDA`.

For a step size folded into the strengths, the proximal map of
`h(w) = l1 * ||w||_1 + (l2 / 2) * ||w||_2^2` is

```
prox_h(x) = soft_threshold(x, l1) / (1 + l2)
```

which is what TensorFlow's `ApplyProximalGradientDescent` /
`ApplyProximalAdagrad` kernels compute with `l1 <- lr * l1`, `l2 <- lr * l2`.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

from keras import ops

from tf_lowprec import validation

if TYPE_CHECKING:
    import tensorflow as tf
    from tensorflow.types.experimental import TensorLike


def _check_strength(name, value):
    """Numbers must be finite and >= 0; tensors are trusted (graph-safe)."""
    if isinstance(value, numbers.Real) or not hasattr(value, "dtype"):
        validation.non_negative_float(value, name)


def _is_python_zero(value):
    return isinstance(value, (int, float)) and value == 0


def soft_threshold(x: TensorLike, threshold: float | TensorLike) -> tf.Tensor:
    """Elementwise soft-thresholding `S_t(x) = sign(x) * max(|x| - t, 0)`.

    Computed as `x - clip(x, -t, t)`: one clip and one subtraction, and no
    work at all for a Python `0`. The result is bit-identical to
    `sign(x) * max(|x| - t, 0)` (the subtraction `|x| - t` is the same
    rounded operation, mirrored for negative `x`); entries with `|x| <= t`
    become `+0.0` where the sign form gives `-0.0` for negative `x`, which
    compares equal. `threshold=0` returns `x` unchanged.

    Args:
        x: A floating-point tensor.
        threshold: A non-negative scalar, or a tensor broadcastable to `x`.
            It is converted to `x.dtype` directly (a Python float is not
            rounded through float32 first).

    Returns:
        A tensor with the shape and dtype of `x`.
    """
    _check_strength("threshold", threshold)
    x = ops.convert_to_tensor(x)
    if _is_python_zero(threshold):
        return x  # skip the work; the formula would return x exactly
    t = ops.convert_to_tensor(threshold, x.dtype)
    return ops.subtract(x, ops.clip(x, ops.negative(t), t))


def prox_l1(x: TensorLike, l1: float | TensorLike) -> tf.Tensor:
    """Proximal map of `l1 * ||w||_1`: `soft_threshold(x, l1)`.

    The same function under the penalty's name (a bad `l1` is reported as
    `l1`); `x` and the result are as for `soft_threshold`, and `l1` is its
    threshold, the strength with the step size already folded in (e.g.
    `lr * l1_regularization_strength`).
    """
    _check_strength("l1", l1)
    return soft_threshold(x, l1)


def prox_l2(x: TensorLike, l2: float | TensorLike) -> tf.Tensor:
    """Proximal map of `(l2 / 2) * ||w||_2^2`: shrinkage `x / (1 + l2)`.

    Args:
        x: A floating-point tensor.
        l2: A non-negative scalar or broadcastable tensor (step size
            already folded in, e.g. `lr * l2_regularization_strength`).

    Returns:
        A tensor with the shape and dtype of `x`.
    """
    _check_strength("l2", l2)
    x = ops.convert_to_tensor(x)
    if _is_python_zero(l2):
        return x
    one = ops.convert_to_tensor(1.0, x.dtype)
    return ops.divide(x, ops.add(one, ops.convert_to_tensor(l2, x.dtype)))


def prox_elastic_net(
    x: TensorLike, l1: float | TensorLike, l2: float | TensorLike
) -> tf.Tensor:
    """Proximal map of `l1 * ||w||_1 + (l2 / 2) * ||w||_2^2`.

    Equals `prox_l2(prox_l1(x, l1), l2)`, i.e.
    `soft_threshold(x, l1) / (1 + l2)`.

    Args:
        x: A floating-point tensor.
        l1: A non-negative scalar or broadcastable tensor.
        l2: A non-negative scalar or broadcastable tensor.

    Returns:
        A tensor with the shape and dtype of `x`.
    """
    return prox_l2(prox_l1(x, l1), l2)


__all__ = ["soft_threshold", "prox_l1", "prox_l2", "prox_elastic_net"]
