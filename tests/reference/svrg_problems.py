"""Small problems shared by the SVRG/HALP tests: data, Keras models, numpy gradients."""

import keras
import numpy as np


def least_squares(n=30, d=4, units=1, seed=0, noise=0.1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    w = rng.normal(size=(d, units))
    y = x @ w + 0.5 + noise * rng.normal(size=(n, units))
    return x, y


def softmax_data(n=30, d=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = rng.integers(0, classes, size=n)
    return x, y


def dense_model(d, units, seed=1, scale=0.3):
    """`Dense(units)` on `d` inputs with reproducible random initial weights."""
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(units)])
    rng = np.random.default_rng(seed)
    model.set_weights(
        [scale * rng.normal(size=(d, units)), scale * rng.normal(size=(units,))]
    )
    return model


def mse_grad(params, x, y):
    """Gradient of Keras `mse` (mean over batch and units) for `x @ W + b`."""
    kernel, bias = params
    r = x @ kernel + bias - y
    scale = 2.0 / r.size
    return [scale * x.T @ r, scale * r.sum(axis=0)]


def softmax_grad(params, x, y):
    """Gradient of sparse categorical cross-entropy on logits `x @ W + b`."""
    kernel, bias = params
    logits = x @ kernel + bias
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return [x.T @ p / len(y), p.sum(axis=0) / len(y)]


def batches(x, y, batch_size):
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]


def lstsq_solution(x, y):
    """Kernel and bias minimising the mean squared error."""
    design = np.c_[x, np.ones(len(x))]
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    return solution[:-1], solution[-1]
