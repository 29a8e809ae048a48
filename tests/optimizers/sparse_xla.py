"""Shared test step: one sparse (`tf.IndexedSlices`) update inside XLA."""

import tensorflow as tf


def apply_sparse_under_xla(optimizer, variable, rows, indices):
    """Builds `optimizer` for `variable` and applies `rows` at `indices`, jit-compiled."""
    optimizer.build([variable])

    @tf.function(jit_compile=True)
    def step(rows, indices):
        gradient = tf.IndexedSlices(rows, indices, tf.constant(list(variable.shape)))
        optimizer.apply([gradient], [variable])

    step(rows, indices)
