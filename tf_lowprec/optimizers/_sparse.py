"""`tf.IndexedSlices` gradients: detection and duplicate-index summation.

Sparse gradients (e.g. from `keras.layers.Embedding` under the TensorFlow
backend) reach `update_step` as `tf.IndexedSlices`, whose `indices` may repeat.
Non-linear updates (proximal steps, Adagrad accumulators) must first sum the
rows of each index, as TF1's `Optimizer._apply_sparse_duplicate_indices` did;
otherwise a row hit twice would be updated from two partial gradients.
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
