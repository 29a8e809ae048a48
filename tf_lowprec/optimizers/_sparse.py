"""`tf.IndexedSlices` gradients: detection, duplicate-index summation, row updates.

Sparse gradients (e.g. from `keras.layers.Embedding` under the TensorFlow
backend) reach `update_step` as `tf.IndexedSlices`, whose `indices` may repeat.
Non-linear updates (proximal steps, Adagrad accumulators) must first sum the
rows of each index, as TF1's `Optimizer._apply_sparse_duplicate_indices` did;
otherwise a row hit twice would be updated from two partial gradients.

`touched` and `assign_touched` give an `update_step` one code path for
dense and sparse gradients: it computes on the values the gradient touches
(the whole variable, or the rows at the summed indices) and writes them back.
"""

import keras
import tensorflow as tf


def is_indexed_slices(gradient):
    """Whether `gradient` is a `tf.IndexedSlices` (sparse rows)."""
    return isinstance(gradient, tf.IndexedSlices)


def sum_duplicate_indices(gradient):
    """Sums the rows of `gradient` that share an index.

    Args:
        gradient: A `tf.IndexedSlices`.

    Returns:
        `(indices, values)`: unique indices (first-occurrence order) and, per
        index, the sum of its rows. Works in graph mode and under XLA.
    """
    indices, positions = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(
        gradient.values, positions, tf.shape(indices)[0]
    )
    return indices, values


def gather_rows(variable, indices):
    """`variable[indices]` read row by row (`ResourceGather`).

    Unlike `keras.ops.take`, which first reads the whole variable into a
    tensor, this reads only the requested rows.
    """
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return tf.gather(variable, indices)


def indexed_slices(values, indices, dense_shape):
    """Packs updated rows as a `tf.IndexedSlices` for `Optimizer.assign`.

    `Optimizer.assign` turns `tf.IndexedSlices` into a `scatter_update`, so
    rows not listed in `indices` keep their value.
    """
    return tf.IndexedSlices(values, indices, dense_shape=dense_shape)


def touched(gradient, variable, *slots):
    """`(indices, g, values)`: what one update step reads.

    A dense gradient touches everything: `indices` is `None` and `values`
    is `[variable, *slots]`. A `tf.IndexedSlices` gradient first has its
    duplicate indices summed (`sum_duplicate_indices`); `values` are the rows
    at those indices of `variable` and of each slot, so rows the gradient
    does not reach are neither read nor updated (TF1 behaviour). `g` is the
    (summed) gradient cast to `variable.dtype`.
    """
    dtype = variable.dtype
    if is_indexed_slices(gradient):
        indices, g = sum_duplicate_indices(gradient)
        values = [gather_rows(v, indices) for v in (variable, *slots)]
        return indices, keras.ops.cast(g, dtype), values
    return None, keras.ops.cast(gradient, dtype), [variable, *slots]


def assign_touched(optimizer, target, value, indices):
    """`optimizer.assign(target, value)`, only at the rows `indices` unless `None`."""
    if indices is not None:
        value = indexed_slices(value, indices, target.shape)
    optimizer.assign(target, value)
