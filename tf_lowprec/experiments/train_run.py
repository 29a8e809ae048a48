"""One training run: model, optimizer, data -> one row of metrics per epoch."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import keras

if TYPE_CHECKING:
    import tensorflow as tf

from tf_lowprec.pruning.sparsity import SparsityLogger
from tf_lowprec.training.epoch_timer import EpochTimer

# fit() log keys -> the column names of every tf_lowprec results table.
_COLUMNS = {
    "loss": "train_loss",
    "accuracy": "train_accuracy",
    "val_loss": "test_loss",
    "val_accuracy": "test_accuracy",
    "sparsity": "sparsity",
    "seconds": "seconds",
}


def train_and_evaluate(
    build_model: Callable[[], keras.Model],
    optimizer: keras.optimizers.Optimizer,
    train_data: tf.data.Dataset | Callable[[], tf.data.Dataset],
    test_data: tf.data.Dataset | Callable[[], tf.data.Dataset],
    epochs: int,
    loss: str | keras.losses.Loss | Callable[..., Any] | None = None,
    seed: int = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
) -> tuple[keras.Model, list[dict[str, Any]]]:
    """Trains a fresh model and returns one metrics dict per epoch.

    The model is built after `keras.utils.set_random_seed(seed)`, so runs that
    share a seed share their initial weights, whatever the optimizer. Pass the
    data as zero-argument callables (e.g. `lambda: data.load(...)`) so that
    they, too, are created after the seed is set: `tf.data` shuffling depends
    on TensorFlow's global seed as well as its own, so a dataset created
    before seeding gets another order in the first run of a process.

    Args:
        build_model: Zero-argument callable returning an uncompiled
            `keras.Model` that outputs logits.
        optimizer: A `keras.optimizers.Optimizer` (a fresh one per run).
        train_data: A `tf.data.Dataset` of `(x, y)` batches with integer
            labels, or a zero-argument callable returning one (preferred).
        test_data: A `tf.data.Dataset` evaluated at the end of every epoch,
            or a zero-argument callable returning one.
        epochs: Number of epochs.
        loss: A Keras loss. Defaults to sparse categorical cross-entropy on
            logits.
        seed: Seed for the initial weights and Keras randomness. Defaults to 0.
        callbacks: Extra Keras callbacks.
        verbose: Passed to `fit` (`1` shows Keras's progress bar).

    Returns:
        `(model, rows)`: the trained model and a list with one dict per
        epoch: `epoch` (1-based), `train_loss`, `train_accuracy`,
        `test_loss`, `test_accuracy`, `sparsity`, `seconds` (training time of
        the epoch) and `diverged` (the training loss was NaN or infinite).
    """
    keras.utils.set_random_seed(seed)
    train_data = train_data() if callable(train_data) else train_data
    test_data = test_data() if callable(test_data) else test_data
    model = build_model()
    model.compile(
        optimizer=optimizer,
        loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        train_data,
        validation_data=test_data,
        epochs=epochs,
        shuffle=False,  # datasets arrive shuffled (tf_lowprec.data.load)
        callbacks=[EpochTimer(), SparsityLogger(), *callbacks],
        verbose=verbose,
    )
    rows = []
    for index in range(len(history.history.get("loss", []))):
        row = {"epoch": index + 1}
        for key, column in _COLUMNS.items():
            values = history.history.get(key)
            row[column] = float(values[index]) if values else float("nan")
        row["diverged"] = not math.isfinite(row["train_loss"])
        rows.append(row)
    return model, rows
