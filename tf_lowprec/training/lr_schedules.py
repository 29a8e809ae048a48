"""Learning-rate schedules for sweeps and paper reproductions.

All are `keras.optimizers.schedules.LearningRateSchedule`s, evaluated by the
optimizer at `optimizer.iterations` (completed steps, 0 on the first step),
registered for `.keras` save/load, and written with `keras.ops` (no Python
control flow on tensors), so they run in graph mode and under XLA.

Schedules that think in epochs take `steps_per_epoch`: the epoch is then
`step // steps_per_epoch` and the rate is constant within an epoch, as in
PyTorch's per-epoch schedulers.

- `MultiStep`: multiply by `gamma` at each milestone (PyTorch `MultiStepLR`).
- `ConstantAndDrop`: constant, then multiplied by `drop_factor` once at
  `drop_at` (or every `drop_at` with `repeat=True`, i.e. `StepLR`); the
  gRDA ImageNet recipe ("lr x0.1 at epoch 140" / "every 30 epochs").
- `PaperPiecewise`: the gRDA / SWALP schedule (constant to 50%, linear to 1%
  by 90%, then constant; SWALP's `swa_lr` after 100%).
- `CosineAnnealing`: an alias of `keras.optimizers.schedules.CosineDecay`,
  which already is cosine annealing (`eta_min = alpha * initial`); see its
  docstring below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
from keras import ops

from tf_lowprec import validation

if TYPE_CHECKING:
    import tensorflow as tf
    from tensorflow.types.experimental import TensorLike

CosineAnnealing = keras.optimizers.schedules.CosineDecay
"""Cosine annealing (Loshchilov & Hutter, 2017, without restarts).

`CosineAnnealing(initial_learning_rate, decay_steps, alpha=0.0)` is Keras'
`CosineDecay`: for `t = min(step, decay_steps)`,

    lr = eta_min + (initial - eta_min) * (1 + cos(pi * t / decay_steps)) / 2

with `eta_min = alpha * initial_learning_rate`, i.e. PyTorch's
`CosineAnnealingLR(T_max=decay_steps, eta_min)` over its first `T_max` steps
(after that Keras holds `eta_min` where PyTorch climbs back up). Use
`keras.optimizers.schedules.CosineDecayRestarts` for SGDR with restarts.
"""


class _EpochAware(keras.optimizers.schedules.LearningRateSchedule):
    """Shared arguments, config and step -> (step or epoch) conversion; not public."""

    def __init__(self, initial_learning_rate, steps_per_epoch, name):
        super().__init__()
        self.initial_learning_rate = validation.positive_float(
            initial_learning_rate, "initial_learning_rate"
        )
        self.steps_per_epoch = validation.optional(
            validation.positive_int, steps_per_epoch, "steps_per_epoch"
        )
        self.name = name

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "steps_per_epoch": self.steps_per_epoch,
            "name": self.name,
        }

    def _position(self, step):
        """The schedule's clock as float32: steps, or whole epochs."""
        step = ops.convert_to_tensor(step)
        if self.steps_per_epoch is not None:
            step = ops.floor_divide(ops.cast(step, "int64"), self.steps_per_epoch)
        return ops.cast(step, "float32")


@keras.saving.register_keras_serializable(package="tf_lowprec")
class MultiStep(_EpochAware):
    """Multiplies the rate by `gamma` at each milestone.

    ```
    lr(s) = initial_learning_rate * gamma ** (number of milestones m <= s)
    ```

    where `s` is the step (or the epoch, with `steps_per_epoch`). The drop
    takes effect *at* the milestone, as in PyTorch's `MultiStepLR` (Keras'
    `PiecewiseConstantDecay` switches one step later, after its boundary).

    Args:
        initial_learning_rate: A float > 0. Defaults to none (required).
        milestones: Strictly increasing non-negative integers, in steps (or
            epochs, with `steps_per_epoch`).
        gamma: A float > 0, the factor applied at each milestone. Defaults to
            `0.1`.
        steps_per_epoch: A positive int to count `milestones` in epochs, or
            `None` to count them in steps. Defaults to `None`.
        name: Defaults to `"MultiStep"`.

    Example:

    >>> schedule = MultiStep(0.1, milestones=[150, 250], steps_per_epoch=391)
    >>> optimizer = keras.optimizers.SGD(schedule, momentum=0.9)
    """

    def __init__(
        self,
        initial_learning_rate: float,
        milestones: Sequence[int],
        gamma: float = 0.1,
        steps_per_epoch: int | None = None,
        name: str = "MultiStep",
    ) -> None:
        super().__init__(initial_learning_rate, steps_per_epoch, name)
        gamma = validation.positive_float(gamma, "gamma")
        if not isinstance(milestones, (list, tuple)):
            raise validation.ArgumentTypeError(
                f"`milestones` must be a list of integers. Received: milestones={milestones!r}"
            )
        milestones = [validation.integer(m, "milestones") for m in milestones]
        if not milestones or milestones[0] < 0 or any(
            b <= a for a, b in zip(milestones, milestones[1:])
        ):
            raise ValueError(
                "`milestones` must be a non-empty, strictly increasing list "
                f"of non-negative integers. Received: milestones={milestones}."
            )
        self.milestones = milestones
        self.gamma = gamma

    def __call__(self, step: int | TensorLike) -> tf.Tensor:
        position = self._position(step)
        milestones = ops.convert_to_tensor(self.milestones, "float32")
        passed = ops.sum(ops.cast(position >= milestones, "float32"))
        gamma = ops.convert_to_tensor(self.gamma, "float32")
        return ops.multiply(self.initial_learning_rate, ops.power(gamma, passed))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "milestones": self.milestones, "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="tf_lowprec")
class ConstantAndDrop(_EpochAware):
    """Constant rate, multiplied by `drop_factor` at `drop_at`.

    ```
    k = (s >= drop_at)          # repeat=False: one drop
    k = floor(s / drop_at)      # repeat=True:  a drop every drop_at (StepLR)
    lr(s) = initial_learning_rate * drop_factor ** k
    ```

    where `s` is the step (or the epoch, with `steps_per_epoch`). This is the
    schedule of the gRDA ResNet50/ImageNet runs (lr 0.1, x0.1 at epoch 140,
    or every 30 epochs); pair it with `GRDA`, whose accumulated threshold
    keeps its value across the drop.

    Args:
        initial_learning_rate: A float > 0.
        drop_at: A positive int: the step (or epoch) of the drop, or the
            period with `repeat=True`.
        drop_factor: A float > 0. Defaults to `0.1`.
        repeat: Whether to drop again every `drop_at`. Defaults to `False`.
        steps_per_epoch: A positive int to count `drop_at` in epochs, or
            `None` for steps. Defaults to `None`.
        name: Defaults to `"ConstantAndDrop"`.

    Example:

    >>> schedule = ConstantAndDrop(0.1, drop_at=140, steps_per_epoch=5005)
    """

    def __init__(
        self,
        initial_learning_rate: float,
        drop_at: int,
        drop_factor: float = 0.1,
        repeat: bool = False,
        steps_per_epoch: int | None = None,
        name: str = "ConstantAndDrop",
    ) -> None:
        super().__init__(initial_learning_rate, steps_per_epoch, name)
        drop_factor = validation.positive_float(drop_factor, "drop_factor")
        drop_at = validation.positive_int(drop_at, "drop_at")
        repeat = validation.boolean(repeat, "repeat")
        self.drop_at = int(drop_at)
        self.drop_factor = drop_factor
        self.repeat = bool(repeat)

    def __call__(self, step: int | TensorLike) -> tf.Tensor:
        position = self._position(step)
        if self.repeat:
            drops = ops.floor(ops.divide(position, float(self.drop_at)))
        else:
            drops = ops.cast(position >= self.drop_at, "float32")
        factor = ops.convert_to_tensor(self.drop_factor, "float32")
        return ops.multiply(self.initial_learning_rate, ops.power(factor, drops))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "drop_at": self.drop_at,
            "drop_factor": self.drop_factor,
            "repeat": self.repeat,
        }


@keras.saving.register_keras_serializable(package="tf_lowprec")
class PaperPiecewise(_EpochAware):
    """The gRDA / SWALP schedule: flat, linear decay to 1%, flat.

    With `t = s / total` (`s` the step, or the epoch with `steps_per_epoch`):

    ```
    t <= 0.5:        lr = initial
    0.5 < t <= 0.9:  lr = initial * (1 - 0.99 * (t - 0.5) / 0.4)
    t > 0.9:         lr = initial * 0.01
    t >= 1:          lr = final_learning_rate   (only if it is given)
    ```

    gRDA's `train.py` (`learning_rate_schedule`) uses it per epoch with
    `total` = all epochs. SWALP's `train.py` (`schedule`) uses it per epoch
    with `total = swa_start` and `final_learning_rate = swa_lr`: the constant
    rate of the weight-averaging phase. Without `steps_per_epoch` the rate
    moves every step (a smooth variant of the same curve).

    Args:
        initial_learning_rate: A float > 0.
        total: A positive int: the length of the schedule in steps (or in
            epochs, with `steps_per_epoch`).
        steps_per_epoch: A positive int for the per-epoch schedule of the
            papers, or `None` for the per-step one. Defaults to `None`.
        final_learning_rate: A float > 0 used from `t >= 1` on (SWALP's
            `swa_lr`), or `None` to stay at `0.01 * initial`. Defaults to
            `None`.
        name: Defaults to `"PaperPiecewise"`.

    Example:

    >>> # SWALP VGG16: lr_init 0.05, swa_start 200, swa_lr 0.01, 391 steps/epoch
    >>> schedule = PaperPiecewise(0.05, total=200, steps_per_epoch=391,
    ...                           final_learning_rate=0.01)

    References:

    - [Chao et al., 2020](https://arxiv.org/abs/2006.09358), gRDA;
      [code](https://github.com/donlan2710/gRDA-Optimizer).
    - [Yang et al., 2019](https://arxiv.org/abs/1904.11943), SWALP;
      [code](https://github.com/stevenygd/SWALP).
    """

    def __init__(
        self,
        initial_learning_rate: float,
        total: int,
        steps_per_epoch: int | None = None,
        final_learning_rate: float | None = None,
        name: str = "PaperPiecewise",
    ) -> None:
        super().__init__(initial_learning_rate, steps_per_epoch, name)
        total = validation.positive_int(total, "total")
        final_learning_rate = validation.optional(
            validation.positive_float, final_learning_rate, "final_learning_rate"
        )
        self.total = int(total)
        self.final_learning_rate = final_learning_rate

    def __call__(self, step: int | TensorLike) -> tf.Tensor:
        t = ops.divide(self._position(step), float(self.total))
        # 1 - 0.99 * (t - 0.5) / 0.4, written to stay accurate near t = 0.9
        ramp = ops.add(0.01, ops.multiply(0.99 / 0.4, ops.subtract(0.9, t)))
        factor = ops.where(t <= 0.5, 1.0, ops.where(t <= 0.9, ramp, 0.01))
        lr = ops.multiply(self.initial_learning_rate, factor)
        if self.final_learning_rate is not None:
            lr = ops.where(t >= 1.0, float(self.final_learning_rate), lr)
        return ops.cast(lr, "float32")

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "total": self.total,
            "final_learning_rate": self.final_learning_rate,
        }
