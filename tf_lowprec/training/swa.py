"""Stochastic weight averaging (SWA) for Keras 3: where the average lives, and when.

SWA (Izmailov et al., 2018) trains as usual and, once the learning rate has
been brought to a constant (or cyclic) value, averages the weights visited
at the end of every epoch (or every `frequency` epochs):

    avg_0 = 0,    avg_{n+1} = avg_n + (w - avg_n) / (n + 1)

i.e. `avg_n` is the mean of the first `n` snapshots (SWALP's
`moving_average(swa, w, 1 / (n + 1))`). The averaged network is what is
evaluated and returned; BatchNorm statistics do not average (they belong to
the weights that produced them), so they are recomputed with one pass over
training data (`recompute_batchnorm_statistics`, torch's `update_bn`).

Three pieces:

* `SWA(optimizer)` (`tf_lowprec.optimizers.swa`, also exported here): wraps any Keras optimizer and keeps the running average
  (float32, one slot per trainable variable) and the snapshot count as
  *optimizer variables*. Everything else is the inner optimizer's. The
  average lives in the optimizer because that is the state Keras saves with
  the model: `model.save("m.keras")` stores optimizer variables and
  `load_model` restores them, so training resumed from a checkpoint taken
  mid-averaging continues the same average. (Model variables would change
  the model's architecture and its weight list; a callback's own state is
  not saved at all. TFA's `SWA` and Keras's EMA also keep it there.)
* `StochasticWeightAveraging`: the callback that decides when to average
  (after epoch `start_epoch`, then every `frequency` epochs), optionally
  switches the learning rate to `swa_lr`, swaps the averaged weights (and
  recomputed BatchNorm statistics) in for every evaluation during `fit`
  and restores the training weights afterwards, and swaps them in for good
  at the end of training.
* `recompute_batchnorm_statistics(model, data)`.

References:
    - [Izmailov, Podoprikhin, Garipov, Vetrov, Wilson, "Averaging Weights
      Leads to Wider Optima and Better Generalization", UAI 2018](https://arxiv.org/abs/1803.05407).
    - [Yang et al., "SWALP", ICML 2019](https://arxiv.org/abs/1904.11943);
      code: github.com/stevenygd/SWALP (`train.py`, `utils.moving_average`,
      `utils.bn_update`).
    - TensorFlow Addons `tfa.optimizers.SWA` (legacy optimizers only, EOL 2024);
      PyTorch `torch.optim.swa_utils` (`AveragedModel`, `SWALR`, `update_bn`).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any, TypeAlias

import keras
import numpy as np
import tensorflow as tf

from tf_lowprec import validation
from tf_lowprec.optimizers.swa import (
    SWA,  # noqa: F401 (also public here)
    find_swa_optimizer,
)


def _batchnorm_layers(model):
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]


def _as_batches(data):
    if isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, (np.ndarray, tf.Tensor)):
        return tf.data.Dataset.from_tensor_slices(data).batch(128)
    return data


def _inputs_of(batch):
    if isinstance(batch, (tuple, list)):
        return batch[0]
    return batch


_FORWARD = weakref.WeakKeyDictionary()


BatchNormData: TypeAlias = tf.data.Dataset | np.ndarray | Iterable[Any]
"""Training data for the BatchNorm recompute: a `tf.data.Dataset` of inputs or
of `(inputs, targets[, weights])` batches, a numpy array of inputs, or an
iterable of such batches."""


def recompute_batchnorm_statistics(
    model: keras.Model, data: BatchNormData | None, steps: int | None = None
) -> int:
    """Sets every BatchNorm's moving statistics to their average over `data`.

    Runs `model(x, training=True)` over the batches of `data` and gives each
    `BatchNormalization` layer the mean, over the batches (weighted by batch
    size), of the batch means and batch variances it saw: the
    cumulative-average pass of SWA's `bn_update` (torch `update_bn`). Each
    batch is normalised with its own statistics, as in training; dropout is
    active too, as there. Frozen BatchNorm layers are left alone.

    Args:
        model: a Keras model.
        data: training data: a `tf.data.Dataset` of inputs or of
            `(inputs, targets[, weights])` batches, a numpy array of inputs
            (batched by 128), or an iterable of such batches.
        steps: use only the first `steps` batches; `None` for all. Defaults
            to `None`.

    Returns:
        The number of examples seen (0 if the model has no BatchNorm layer).
    """
    layers = _batchnorm_layers(model)
    if not layers:
        return 0
    if data is None:
        raise ValueError(
            "`data` is required to recompute BatchNorm statistics. Received: data=None"
        )
    forward = _FORWARD.get(model)
    if forward is None:
        # Traced with momentum 0, so each call leaves the batch's own
        # statistics in the moving variables; they are summed here.
        forward = tf.function(lambda x: model(x, training=True), reduce_retracing=True)
        _FORWARD[model] = forward
    momenta = [layer.momentum for layer in layers]
    sums = [
        [np.zeros(layer.moving_mean.shape, np.float64), np.zeros(layer.moving_variance.shape, np.float64)]
        for layer in layers
    ]
    seen = 0
    try:
        for layer in layers:
            layer.momentum = 0.0
        for step, batch in enumerate(_as_batches(data)):
            if steps is not None and step >= steps:
                break
            x = _inputs_of(batch)
            size = int(tf.shape(tf.nest.flatten(x)[0])[0])
            forward(x)
            for layer, (mean, var) in zip(layers, sums):
                mean += size * np.asarray(layer.moving_mean.numpy(), np.float64)
                var += size * np.asarray(layer.moving_variance.numpy(), np.float64)
            seen += size
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    if seen:
        for layer, (mean, var) in zip(layers, sums):
            layer.moving_mean.assign((mean / seen).astype(layer.moving_mean.dtype))
            layer.moving_variance.assign((var / seen).astype(layer.moving_variance.dtype))
    return seen


def _innermost(optimizer):
    while getattr(optimizer, "inner_optimizer", None) is not None:
        optimizer = optimizer.inner_optimizer
    return optimizer


class StochasticWeightAveraging(keras.callbacks.Callback):
    """Averages the weights once per epoch (or every `frequency` epochs) during `fit`.

    Schedule (epochs counted as completed epochs, as in SWALP's `train.py`
    with `swa_start = start_epoch`): the weights at the end of epoch `e`
    (0-based) join the average when `e + 1 >= start_epoch` and
    `(e + 1 - start_epoch) % frequency == 0`; with `swa_lr`, the learning
    rate is set to `swa_lr` for every epoch `e >= start_epoch`. (SWALP: the
    first snapshot is taken after epoch `swa_start`, which still ran at the
    decayed rate; then one per epoch at `swa_lr`.) Use
    `tf_lowprec.training.PaperPiecewise(..., final_learning_rate=swa_lr)` for
    SWALP's whole schedule instead of `swa_lr` here.

    The average itself lives in the model's `SWA` optimizer wrapper (see the
    module docstring), so `.keras` checkpoints written during training
    (e.g. by `keras.callbacks.ModelCheckpoint`, which runs with the training
    weights in place) resume with the same average; the epoch counter comes
    from `fit(initial_epoch=...)`.

    During `fit`, every evaluation (the `val_*` metrics) runs on the
    averaged weights once there is at least one snapshot: the training
    weights and every other model variable (BatchNorm statistics, random
    seeds) are saved, the averages written in, BatchNorm statistics
    recomputed over `data`, and everything restored after the evaluation, so
    the training trajectory does not depend on evaluation. At the end of
    `fit` (with `swap_at_end`) the averaged weights and their BatchNorm
    statistics stay in the model.

    Args:
        start_epoch: int >= 0: number of completed epochs before the first
            snapshot (SWALP's `swa_start`).
        frequency: int >= 1: epochs between snapshots. Defaults to `1`.
        swa_lr: float, the constant learning rate from epoch `start_epoch`
            on, or `None` to leave the learning rate alone (e.g. when the
            optimizer has a schedule). Defaults to `None`.
        data: training data for the BatchNorm recompute (see
            `recompute_batchnorm_statistics`); required when the model has
            BatchNorm layers. Defaults to `None`.
        batchnorm_steps: batches of `data` used per recompute, `None` for
            all. Defaults to `None`.
        swap_for_evaluation: evaluate the averaged weights during `fit`.
            Defaults to `True`.
        swap_at_end: leave the averaged weights in the model after `fit`.
            Defaults to `True`.

    Logs `swa_num_averaged` (snapshots in the average) at each epoch end.
    """

    def __init__(
        self,
        start_epoch: int,
        frequency: int = 1,
        swa_lr: float | None = None,
        data: BatchNormData | None = None,
        batchnorm_steps: int | None = None,
        swap_for_evaluation: bool = True,
        swap_at_end: bool = True,
    ) -> None:
        super().__init__()
        self.start_epoch = validation.non_negative_int(start_epoch, "start_epoch")
        self.frequency = validation.positive_int(frequency, "frequency")
        self.swa_lr = validation.optional(validation.positive_float, swa_lr, "swa_lr")
        batchnorm_steps = validation.optional(
            validation.positive_int, batchnorm_steps, "batchnorm_steps"
        )
        self.data = data
        self.batchnorm_steps = batchnorm_steps
        self.swap_for_evaluation = bool(swap_for_evaluation)
        self.swap_at_end = bool(swap_at_end)
        self._optimizer = None
        self._epoch = None
        self._averaged_epoch = None
        self._backup = None
        self._in_fit = False

    def averages_after(self, epoch: int) -> bool:
        """Whether the weights at the end of 0-based `epoch` join the average."""
        done = epoch + 1
        return done >= self.start_epoch and (done - self.start_epoch) % self.frequency == 0

    # Callback hooks.

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        optimizer = find_swa_optimizer(self.model.optimizer)
        if optimizer is None:
            raise ValueError(
                "StochasticWeightAveraging needs the model's optimizer wrapped "
                "in tf_lowprec.training.SWA (which holds the average, so that "
                "it is saved with the model). Received: optimizer="
                f"{self.model.optimizer!r}"
            )
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        if self.swa_lr is not None:
            rate = getattr(_innermost(optimizer), "_learning_rate", None)
            if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule) or callable(rate):
                raise ValueError(
                    "`swa_lr` needs an optimizer with a constant (settable) "
                    "learning rate; this one has a schedule. Put the SWA rate "
                    "in the schedule (e.g. PaperPiecewise(final_learning_rate=...)) "
                    f"and pass swa_lr=None. Received: swa_lr={self.swa_lr}"
                )
        if _batchnorm_layers(self.model) and self.data is None:
            raise ValueError(
                "The model has BatchNormalization layers, whose statistics must "
                "be recomputed for the averaged weights: pass the training "
                "data as `data`. Received: data=None"
            )
        self._optimizer = optimizer
        self._in_fit = True

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        if self.swa_lr is not None and epoch >= self.start_epoch:
            self.model.optimizer.learning_rate = self.swa_lr

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        steps = self.params.get("steps") if self.params else None
        if steps is not None and batch + 1 >= steps:
            self._maybe_average()

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not self._in_fit:
            return
        self._maybe_average()  # before validation, if the epoch length is unknown
        if self.swap_for_evaluation and self._optimizer.num_averaged > 0:
            self._backup = [v.numpy() for v in self.model.variables]
            self._swap_in()

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._backup is not None:
            for variable, value in zip(self.model.variables, self._backup):
                variable.assign(value)
            self._backup = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._maybe_average()
        if logs is not None and self._optimizer is not None:
            logs["swa_num_averaged"] = self._optimizer.num_averaged

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._in_fit = False
        if self.swap_at_end and self._optimizer is not None and self._optimizer.num_averaged > 0:
            self._swap_in()

    # Internals.

    def _maybe_average(self):
        epoch = self._epoch
        if epoch is None or self._averaged_epoch == epoch or not self.averages_after(epoch):
            return
        self._optimizer.update_average()
        self._averaged_epoch = epoch

    def _swap_in(self):
        self._optimizer.assign_average()
        recompute_batchnorm_statistics(self.model, self.data, self.batchnorm_steps)
