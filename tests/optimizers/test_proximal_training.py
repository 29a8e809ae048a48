"""ProximalSGD / ProximalAdagrad inside `fit`: XLA and sparse embeddings (resume: tests/conformance/)."""

import keras
import numpy as np
import pytest

from tf_lowprec.optimizers import ProximalAdagrad, ProximalSGD

OPTIMIZERS = {
    "proximal_sgd": lambda: ProximalSGD(0.05, 1e-3, 1e-2, clipnorm=5.0),
    "proximal_adagrad": lambda: ProximalAdagrad(0.05, 0.1, 1e-3, 1e-2),
}


def _data():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 20, size=(32, 3)).astype("int32")
    y = rng.normal(size=(32, 1)).astype("float32")
    return tokens, y


def _model():
    # The Embedding's gradient is a tf.IndexedSlices (the sparse path).
    inputs = keras.Input((3,), dtype="int32")
    x = keras.layers.Embedding(20, 4)(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(1)(keras.layers.Dense(8, activation="relu")(x))
    return keras.Model(inputs, outputs)


def _record_gradient_types(optimizer):
    seen = set()
    update_step = optimizer.update_step

    def spy(gradient, variable, learning_rate):
        seen.add(type(gradient).__name__)
        return update_step(gradient, variable, learning_rate)

    optimizer.update_step = spy
    return seen


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_fit_with_and_without_xla_agree_and_reduce_loss(name):
    tokens, y = _data()
    init = _model().get_weights()
    results = []
    for jit in (False, True):
        model = _model()
        model.set_weights(init)
        optimizer = OPTIMIZERS[name]()
        seen = _record_gradient_types(optimizer)
        model.compile(optimizer=optimizer, loss="mse", jit_compile=jit)
        history = model.fit(tokens, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
        losses = history.history["loss"]
        assert losses[-1] < losses[0]
        assert "IndexedSlices" in seen  # the sparse path ran inside fit
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
