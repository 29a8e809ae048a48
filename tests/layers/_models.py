"""Tiny data and models shared by the layer tests."""

import numpy as np


def classification_data(n=128, shape=(8,), classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + shape).astype(np.float32)
    w = rng.normal(size=(int(np.prod(shape)), classes))
    y = np.argmax(x.reshape(n, -1) @ w, axis=1)
    return x, y


def conv_bn_dense(input_shape, filters, hidden, classes):
    """Conv2D("conv") -> BatchNorm("bn") -> Flatten -> Dense("hidden") -> Dense("logits")."""
    import keras

    inputs = keras.Input(input_shape)
    h = keras.layers.Conv2D(filters, 3, activation="relu", name="conv")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(hidden, activation="relu", name="hidden")(h)
    return keras.Model(inputs, keras.layers.Dense(classes, name="logits")(h))


def with_same_weights(layer, twin, input_shape):
    """Builds `layer` and `twin` for `input_shape` and gives both the same random weights."""
    layer.build(input_shape)
    twin.build(input_shape)
    weights = [
        np.random.default_rng(1).normal(size=w.shape).astype(np.float32)
        for w in layer.weights
    ]
    layer.set_weights(weights)
    twin.set_weights(weights)
    return layer, twin
