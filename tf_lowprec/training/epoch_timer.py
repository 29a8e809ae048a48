"""A callback that records wall-clock seconds per epoch in the logs."""

from __future__ import annotations

import time
from typing import Any, Self

import keras


@keras.saving.register_keras_serializable(package="tf_lowprec")
class EpochTimer(keras.callbacks.Callback):
    """Adds `logs["seconds"]`: wall-clock time of the epoch's training steps.

    The time runs from `on_epoch_begin` to the end of the last training batch,
    so validation at the end of the epoch is not included. Put it before
    `CSVLogger`/`TensorBoard` in the callback list for them to record it.
    """

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()
        self._train_end = None

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            end = self._train_end or time.perf_counter()
            logs["seconds"] = end - self._start

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)
