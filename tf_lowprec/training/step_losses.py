"""A callback that keeps the training loss of individual steps."""

from __future__ import annotations

import math
from typing import Any

import keras


class StepLossRecorder(keras.callbacks.Callback):
    """Records the training loss per step, averaged over blocks of `every` steps.

    Keras reports, at the end of batch `k` of an epoch, the running mean
    `m_k` of the loss over the epoch so far (weighted by batch size). With
    equal batch sizes the loss of batch `k` itself is `k m_k - (k - 1) m_{k-1}`,
    which this callback recovers and averages over consecutive blocks of
    `every` steps. Use equal batches (`drop_remainder=True`) for exact values.

    After training, `block_losses` is a list with one list per epoch of the
    block means, and `every` the block length in steps.
    """

    def __init__(self, every: int = 10) -> None:
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"`every` must be a positive integer. Received: every={every!r}")
        self.every = every
        self.block_losses = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._previous_mean = 0.0
        self._block = []
        self.block_losses.append([])

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        mean = float((logs or {}).get("loss", math.nan))
        k = batch + 1
        self._block.append(k * mean - (k - 1) * self._previous_mean)
        self._previous_mean = mean
        if len(self._block) == self.every:
            self._flush()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._block:
            self._flush()

    def _flush(self):
        self.block_losses[-1].append(sum(self._block) / len(self._block))
        self._block = []
