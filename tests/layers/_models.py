"""Tiny data and models shared by the layer tests."""

import numpy as np


def classification_data(n=128, shape=(8,), classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + shape).astype(np.float32)
    w = rng.normal(size=(int(np.prod(shape)), classes))
    y = np.argmax(x.reshape(n, -1) @ w, axis=1)
    return x, y
