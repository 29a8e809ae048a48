"""The setting of TF's proximal optimizer tests (algorithms.md §4.4) for golden vectors."""

import keras
import tensorflow as tf

G0, G1 = [0.1, 0.2], [0.01, 0.02]


def golden_run(optimizer, steps):
    """`steps` updates of `[1, 2]` and `[4, 3]` with constant gradients `G0`, `G1`, as numpy."""
    v0, v1 = keras.Variable([1.0, 2.0]), keras.Variable([4.0, 3.0])
    for _ in range(steps):
        optimizer.apply([tf.constant(G0), tf.constant(G1)], [v0, v1])
    return v0.numpy(), v1.numpy()
