"""Sparsity report and SparsityLogger against direct numpy counts."""

import csv

import keras
import numpy as np

from tf_lowprec.optimizers import GRDA
from tf_lowprec.pruning import SparsityLogger, sparsity


def _model():
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    outputs = keras.layers.Dense(3, name="head")(hidden)
    return keras.Model(inputs, outputs)


def test_counts_exact_zeros_globally_and_per_layer():
    model = _model()
    kernel = np.ones((6, 4), np.float32)
    kernel[:3] = 0.0  # 12 zeros
    model.get_layer("hidden").set_weights([kernel, np.zeros(4, np.float32)])  # +4 zeros
    head_kernel = np.full((4, 3), 1e-30, np.float32)  # tiny but nonzero
    model.get_layer("head").set_weights([head_kernel, np.array([0.0, 1.0, 0.0], np.float32)])

    report = sparsity(model)
    assert report.layers["hidden"].zeros == 16 and report.layers["hidden"].total == 28
    assert report.layers["head"].zeros == 2 and report.layers["head"].total == 15
    assert report.zeros == 18 and report.total == 43
    assert report.sparsity == 18 / 43
    assert report.density == 1 - 18 / 43
    assert "global" in str(report) and "hidden" in str(report)

    kernels = sparsity(model, kernels_only=True)
    assert kernels.total == 24 + 12 and kernels.zeros == 12


def test_logger_adds_sparsity_to_history_and_csv(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 6)).astype(np.float32), rng.integers(0, 3, 64)
    model = _model()
    model.compile(
        optimizer=GRDA(learning_rate=0.1, c=0.05, mu=0.7),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    log = tmp_path / "log.csv"
    history = model.fit(
        x, y, epochs=3, batch_size=16, verbose=0,
        callbacks=[SparsityLogger(per_layer=True), keras.callbacks.CSVLogger(str(log))],
    )
    assert len(history.history["sparsity"]) == 3
    assert history.history["sparsity"][-1] == sparsity(model).sparsity
    assert history.history["sparsity"][-1] > 0
    assert "sparsity/hidden" in history.history
    with open(log) as f:
        rows = list(csv.DictReader(f))
    assert float(rows[-1]["sparsity"]) == history.history["sparsity"][-1]


def test_logger_config_round_trip():
    logger = SparsityLogger(per_layer=True, kernels_only=True)
    clone = SparsityLogger.from_config(logger.get_config())
    assert clone.per_layer and clone.kernels_only
