"""Batch size as a function of the epoch, trained with `model.fit`.

A batch-size schedule maps the 0-based epoch to a batch size, e.g.
`30 + 10 * epoch` (`LinearBatchSize(30, 10)`, or the string
`"30+10*epoch"`). `ScheduledBatches` serves a **fixed training subset** with
that schedule, in one of two ways:

- `overlap=False` (default): each epoch is one pass over the (reshuffled)
  subset in disjoint batches, so the number of steps shrinks as the batch
  grows: `ceil(n / batch_size)` (`floor` with `drop_remainder=True`);
- `overlap=True`: each step draws `batch_size` distinct examples uniformly
  from the subset, independently of the other steps, so batches overlap;
  `steps_per_epoch` is fixed if given, else `ceil(n / batch_size)`.

Why a driver: Keras 3 `fit` fixes the number of steps per epoch when it
starts (the count of epoch 0). A dataset whose epochs get longer is silently
truncated, and one whose epochs get shorter warns "Your input ran out of
data" every epoch. `fit_with_batch_schedule(model, batches, epochs)` therefore
calls `model.fit` once per epoch, each time with that epoch's `tf.data`
dataset, and threads **one** `CallbackList` through all the calls: callbacks
see a single `on_train_begin` / `on_train_end`, the true epoch numbers, one
`History`, `model.stop_training` (e.g. `EarlyStopping`) is honoured, and every
epoch's logs carry its `batch_size`. The train function is re-traced for a
new batch shape (cheap; with `jit_compile=True` it means one XLA compile per
distinct batch size).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Self, TypeAlias

import keras
import numpy as np
import tensorflow as tf

from tf_lowprec import validation

BatchSizeSchedule: TypeAlias = int | str | Callable[[int], int]
"""A batch-size schedule as the APIs take it: an int (constant), a spec string such
as `"30+10*epoch"`, or a callable `epoch -> batch size`."""


@keras.saving.register_keras_serializable(package="tf_lowprec")
class LinearBatchSize:
    """`batch_size(epoch) = initial + increment * epoch`, capped at `maximum`.

    Args:
        initial: A positive int, the batch size of epoch 0.
        increment: An int added per epoch (may be negative; the result never
            drops below 1). Defaults to `0` (a constant batch size).
        maximum: A positive int cap, or `None`. Defaults to `None`.

    Example:

    >>> [LinearBatchSize(30, 10)(e) for e in range(3)]
    [30, 40, 50]
    """

    _SPEC = re.compile(
        r"^\s*(?P<initial>\d+)\s*(?:(?P<sign>[+-])\s*(?P<inc>\d+)\s*\*\s*epoch)?\s*$"
    )

    def __init__(self, initial: int, increment: int = 0, maximum: int | None = None) -> None:
        self.initial = validation.positive_int(initial, "initial")
        self.increment = validation.integer(increment, "increment")
        self.maximum = validation.optional(validation.positive_int, maximum, "maximum")

    @classmethod
    def from_string(cls, spec: str) -> Self:
        """Parses `"64"`, `"30+10*epoch"` or `"256 - 16*epoch"`."""
        match = cls._SPEC.match(spec)
        if match is None:
            raise ValueError(
                "A batch-size spec string must look like '64' or "
                f"'30+10*epoch'. Received: {spec!r}."
            )
        increment = int(match["inc"] or 0)
        if match["sign"] == "-":
            increment = -increment
        return cls(int(match["initial"]), increment)

    def __call__(self, epoch):
        size = max(1, self.initial + self.increment * int(epoch))
        return size if self.maximum is None else min(size, self.maximum)

    def __repr__(self):
        return (
            f"LinearBatchSize(initial={self.initial}, "
            f"increment={self.increment}, maximum={self.maximum})"
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "initial": self.initial,
            "increment": self.increment,
            "maximum": self.maximum,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)


def get_batch_size_schedule(spec: BatchSizeSchedule) -> Callable[[int], int]:
    """Turns an int, a spec string or a callable into `epoch -> batch size`.

    Args:
        spec: An int (constant), a string such as `"30+10*epoch"`, or a
            callable taking the 0-based epoch and returning a positive int.

    Returns:
        A callable `epoch -> int`.
    """
    if isinstance(spec, bool):
        raise ValueError(f"Invalid batch-size schedule. Received: spec={spec!r}.")
    if isinstance(spec, (int, np.integer)):
        return LinearBatchSize(int(spec))
    if isinstance(spec, str):
        return LinearBatchSize.from_string(spec)
    if callable(spec):
        return spec
    raise ValueError(
        "A batch-size schedule must be an int, a string like '30+10*epoch' "
        f"or a callable epoch -> int. Received: spec={spec!r}."
    )


class ScheduledBatches:
    """A fixed training subset, batched per epoch by a batch-size schedule.

    Args:
        x: Inputs: an array, or a dict/tuple of arrays with the same first
            dimension.
        y: Targets with the same first dimension.
        batch_size: A batch-size schedule: an int, a string such as
            `"30+10*epoch"`, or a callable `epoch -> int`. A batch size larger
            than the subset is capped at the subset size.
        subset_size: Train on this many examples, picked once at random
            (with `seed`), or `None` for all of them. Defaults to `None`.
        overlap: `False` for disjoint batches (one pass per epoch), `True`
            for independently drawn, overlapping batches. Defaults to `False`.
        steps_per_epoch: With `overlap=True`, a fixed number of steps per
            epoch, or `None` for `ceil(n / batch_size)`. Defaults to `None`.
        drop_remainder: With `overlap=False`, whether to drop the last,
            smaller batch of each epoch. Defaults to `False`.
        shuffle: With `overlap=False`, whether to reshuffle every epoch.
            Defaults to `True`.
        seed: Seed of the subset choice and of the per-epoch order; epoch `e`
            uses `(seed, e)`, so reruns and resumed runs see the same
            batches. Defaults to `0`.

    Example:

    >>> batches = ScheduledBatches(x, y, "30+10*epoch", subset_size=1000)
    >>> history = fit_with_batch_schedule(model, batches, epochs=10)
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        batch_size: BatchSizeSchedule,
        subset_size: int | None = None,
        overlap: bool = False,
        steps_per_epoch: int | None = None,
        drop_remainder: bool = False,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        self.schedule = get_batch_size_schedule(batch_size)
        sizes = {len(a) for a in tf.nest.flatten((x, y))}
        if len(sizes) != 1:
            raise ValueError(
                "`x` and `y` must have the same number of examples. "
                f"Received sizes: {sorted(sizes)}."
            )
        total = sizes.pop()
        subset_size = validation.optional(
            validation.integer, subset_size, "subset_size", minimum=1, maximum=total
        )
        overlap = validation.boolean(overlap, "overlap")
        drop_remainder = validation.boolean(drop_remainder, "drop_remainder")
        shuffle = validation.boolean(shuffle, "shuffle")
        seed = validation.seed(seed, allow_none=False)
        steps_per_epoch = validation.optional(
            validation.positive_int, steps_per_epoch, "steps_per_epoch"
        )
        if steps_per_epoch is not None and not overlap:
            raise ValueError(
                "`steps_per_epoch` must be a positive integer, and only "
                "applies with overlap=True. "
                f"Received: steps_per_epoch={steps_per_epoch}, overlap={overlap}."
            )
        self.overlap = bool(overlap)
        self.steps_per_epoch = steps_per_epoch
        self.drop_remainder = bool(drop_remainder)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        if subset_size is None:
            self.indices = np.arange(total)
        else:
            rng = np.random.default_rng(self.seed)
            self.indices = np.sort(rng.choice(total, subset_size, replace=False))
        self._x = tf.nest.map_structure(tf.convert_to_tensor, x)
        self._y = tf.nest.map_structure(tf.convert_to_tensor, y)

    @property
    def num_examples(self) -> int:
        """Size of the training subset."""
        return len(self.indices)

    def batch_size(self, epoch: int) -> int:
        """The batch size of `epoch` (capped at the subset size)."""
        size = self.schedule(epoch)
        if int(size) != size or size < 1:
            raise ValueError(
                "The batch-size schedule must return a positive integer. "
                f"Received: {size!r} for epoch {epoch}."
            )
        return min(int(size), self.num_examples)

    def num_batches(self, epoch: int) -> int:
        """Steps in `epoch`."""
        size = self.batch_size(epoch)
        if self.overlap and self.steps_per_epoch is not None:
            return int(self.steps_per_epoch)
        if self.drop_remainder and not self.overlap:
            return self.num_examples // size
        return math.ceil(self.num_examples / size)

    def epoch_indices(self, epoch: int) -> list[np.ndarray]:
        """The example indices of every batch of `epoch`, as a list of arrays."""
        rng = np.random.default_rng([self.seed, int(epoch)])
        size, steps = self.batch_size(epoch), self.num_batches(epoch)
        if self.overlap:
            return [
                self.indices[rng.choice(self.num_examples, size, replace=False)]
                for _ in range(steps)
            ]
        order = rng.permutation(self.indices) if self.shuffle else self.indices
        return [order[i * size : (i + 1) * size] for i in range(steps)]

    def dataset(self, epoch: int) -> tf.data.Dataset:
        """A `tf.data.Dataset` of `(x, y)` batches for `epoch`."""
        batches = self.epoch_indices(epoch)
        flat = np.concatenate(batches)
        lengths = [len(b) for b in batches]
        ragged = tf.RaggedTensor.from_row_lengths(flat, lengths)
        x, y = self._x, self._y

        def gather(index):
            take = lambda a: tf.gather(a, index)  # noqa: E731
            return tf.nest.map_structure(take, x), tf.nest.map_structure(take, y)

        return (
            tf.data.Dataset.from_tensor_slices(ragged)
            .map(gather)
            .prefetch(tf.data.AUTOTUNE)
        )


class _BatchSizeLog(keras.callbacks.Callback):
    """Writes the epoch's batch size and step count into the epoch logs."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["batch_size"] = self.batches.batch_size(epoch)
            logs["steps"] = self.batches.num_batches(epoch)


class _OneTrainingRun(keras.callbacks.CallbackList):
    """A CallbackList that spans several `fit` calls as one training run."""

    _started = False

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not self._started:
            self._started = True
            super().on_train_begin(logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        pass  # the driver calls `finish` once, after the last epoch

    def finish(self, logs=None):
        if self._started:
            super().on_train_end(logs)


def fit_with_batch_schedule(
    model: keras.Model,
    batches: ScheduledBatches,
    epochs: int,
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
    verbose: str | int = "auto",
    initial_epoch: int = 0,
    **fit_kwargs: Any,
) -> keras.callbacks.History:
    """`model.fit` over `epochs`, each epoch with its scheduled batch size.

    Args:
        model: A compiled `keras.Model`.
        batches: A `ScheduledBatches`.
        epochs: Index of the last epoch + 1, as in `fit`.
        callbacks: Keras callbacks; they see one training run. Defaults to
            `None`.
        verbose: As in `fit` (`"auto"` means 1). Defaults to `"auto"`.
        initial_epoch: Epoch to start from (to resume). Defaults to `0`.
        **fit_kwargs: Passed to every `fit` call (e.g. `validation_data`,
            `class_weight`). Not allowed: `x`, `y`, `batch_size`,
            `steps_per_epoch`, `shuffle`, `epochs` (they come from `batches`).

    Returns:
        The `keras.callbacks.History` of the whole run; its `history` has
        `batch_size` and `steps` per epoch besides the metrics.

    Raises:
        ValueError: for a fit argument that `batches` owns, or an optimizer
            with `use_ema=True` (`fit` swaps the EMA weights in at the end
            of every call, i.e. after every epoch here).
    """
    owned = {"x", "y", "batch_size", "steps_per_epoch", "shuffle", "epochs"}
    clash = sorted(owned & set(fit_kwargs))
    if clash:
        raise ValueError(
            f"{clash} are set by `batches`/`epochs`; do not pass them to "
            "fit_with_batch_schedule."
        )
    if getattr(model.optimizer, "use_ema", False):
        raise ValueError(
            "fit_with_batch_schedule calls fit once per epoch, and fit swaps "
            "EMA weights into the model at the end of each call. Received an "
            "optimizer with use_ema=True."
        )
    verbose = 1 if verbose == "auto" else verbose
    run = _OneTrainingRun(
        [_BatchSizeLog(batches), *(callbacks or [])],
        add_history=True,
        add_progbar=verbose != 0,
        verbose=verbose,
        epochs=epochs,
        steps=None,
        model=model,
    )
    history = next(
        cb for cb in run.callbacks if isinstance(cb, keras.callbacks.History)
    )
    logs = None
    for epoch in range(initial_epoch, epochs):
        # Callbacks (the progress bar among them) learn this epoch's length.
        run.set_params({**run.params, "steps": batches.num_batches(epoch)})
        model.fit(
            batches.dataset(epoch),
            epochs=epoch + 1,
            initial_epoch=epoch,
            callbacks=run,
            verbose=verbose,
            shuffle=False,  # the order is `batches`' business
            **fit_kwargs,
        )
        logs = {k: v[-1] for k, v in history.history.items()} or None
        if model.stop_training:
            break
    run.finish(logs)
    return history
