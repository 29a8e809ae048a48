"""A built subclassed Keras model: the kind the model rewriters refuse.

`quantize_model`, `prune_low_magnitude` and `prune_filters` rewrite the layer
graph of Sequential and functional models; a subclassed model has no graph
to rewrite, and each must say so in a `ValueError`.
"""

import keras
import numpy as np


class Subclassed(keras.Model):
    """One Dense layer called from `call`."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def built_subclassed_model():
    """A `Subclassed` model, built on a (1, 3) float32 batch."""
    model = Subclassed()
    model(np.ones((1, 3), np.float32))
    return model
