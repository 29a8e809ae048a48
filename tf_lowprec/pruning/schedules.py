"""Pruning schedules: when masks are recomputed and at which sparsity.

A schedule is a stateless, serializable callable of the training step. The
step convention is TFMOT's: the step about to run is numbered
`optimizer.iterations + 1`, so the first training step is step 1 and a
schedule with `begin_step=0` first prunes at step `frequency`.
"""

from __future__ import annotations

import abc
import inspect
from typing import Any, Self

import keras

from tf_lowprec import validation


def _check_step(step):
    return validation.integer(step, "step")


class PruningSchedule(abc.ABC):
    """Base class: `schedule(step) -> (should_prune, sparsity)`.

    `should_prune` says whether masks are recomputed at `step`; `sparsity` is
    the target fraction of zeros, in `[0, 1)`, used when they are. Both are
    plain Python values, so the pruning callback decides outside the compiled
    training step (no `ops.cond` in the graph).

    A step is a pruning step when it lies in `[begin_step, end_step]`
    (`end_step=-1`: no end) and `(step - begin_step) % frequency == 0`.

    Subclass it by implementing `sparsity_at(step)`, keeping each
    constructor argument in the attribute of the same name (what
    `get_config()` reads), and register the subclass for `.keras` saving:

    ```python
    @keras.saving.register_keras_serializable(package="my_project")
    class Halving(PruningSchedule):
        def __init__(self, begin_step=0, end_step=-1, frequency=100):
            super().__init__(begin_step, end_step, frequency)

        def sparsity_at(self, step):
            n = (step - self.begin_step) // self.frequency + 1
            return 1.0 - 0.5 ** n
    ```

    Args:
        begin_step: First step at which masks may be recomputed, >= 0.
        end_step: Last such step, `>= begin_step`, or `-1` for no end.
        frequency: Recompute masks every `frequency` steps, >= 1.
    """

    _allow_endless = True

    def __init__(self, begin_step: int, end_step: int, frequency: int) -> None:
        self.begin_step = validation.integer(begin_step, "begin_step", minimum=0)
        self.end_step = validation.integer(end_step, "end_step", minimum=-1)
        self.frequency = validation.positive_int(frequency, "frequency")
        if self.end_step == -1 and not self._allow_endless:
            raise ValueError(
                f"`end_step` must be >= `begin_step` for {type(self).__name__} "
                f"(-1, no end, is not allowed). Received: end_step={end_step!r}"
            )
        if self.end_step != -1 and self.end_step < self.begin_step:
            raise ValueError(
                "`end_step` must be -1 or >= `begin_step`. Received: "
                f"end_step={end_step!r} with begin_step={begin_step!r}"
            )

    def should_prune(self, step: int) -> bool:
        """Whether masks are recomputed at `step` (a Python bool)."""
        step = _check_step(step)
        in_range = step >= self.begin_step and (self.end_step == -1 or step <= self.end_step)
        return in_range and (step - self.begin_step) % self.frequency == 0

    @abc.abstractmethod
    def sparsity_at(self, step: int) -> float:
        """Target sparsity (fraction of zeros) at `step`, a float in [0, 1)."""

    def __call__(self, step: int) -> tuple[bool, float]:
        step = _check_step(step)
        return self.should_prune(step), float(self.sparsity_at(step))

    def last_pruning_step(self, first: int, last: int) -> int | None:
        """Largest pruning step in `[first, last]`, or `None` if there is none.

        Used when several training steps run per callback (`steps_per_execution`).
        """
        for step in range(last, first - 1, -1):
            if self.should_prune(step):
                return step
        return None

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serializable.

        Read from the attributes named like the arguments of `__init__`, in
        its order; a subclass that keeps an argument under another name
        overrides this.
        """
        parameters = inspect.signature(type(self).__init__).parameters.values()
        return {
            p.name: getattr(self, p.name)
            for p in parameters
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self), tuple(sorted(self.get_config().items()))))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package="tf_lowprec")
class ConstantSparsity(PruningSchedule):
    """Prunes to the same sparsity at every pruning step.

    `sparsity(step) = target_sparsity`, applied at steps
    `begin_step, begin_step + frequency, ...` up to `end_step`.

    Args:
        target_sparsity: Fraction of weights set to zero, in `[0, 1)`.
        begin_step: First pruning step. Defaults to `0`.
        end_step: Last pruning step, or `-1` to prune until training ends.
            Defaults to `-1`.
        frequency: Steps between mask updates. Defaults to `100`.

    Example:

    ```python
    schedule = ConstantSparsity(0.9, begin_step=0, frequency=100)
    pruned = prune_low_magnitude(model, schedule)
    ```
    """

    def __init__(
        self,
        target_sparsity: float,
        begin_step: int = 0,
        end_step: int = -1,
        frequency: int = 100,
    ) -> None:
        super().__init__(begin_step, end_step, frequency)
        self.target_sparsity = validation.float_in_range(target_sparsity, "target_sparsity", 0.0, 1.0, high_open=True)

    def sparsity_at(self, step: int) -> float:
        return self.target_sparsity


@keras.saving.register_keras_serializable(package="tf_lowprec")
class PolynomialDecay(PruningSchedule):
    """Gradual pruning of Zhu & Gupta (2017): sparsity rises fast, then levels off.

    With `p = clip((step - begin_step) / (end_step - begin_step), 0, 1)`:

    ```
    sparsity(step) = final_sparsity
                     + (initial_sparsity - final_sparsity) * (1 - p) ** power
    ```

    so `sparsity(begin_step) = initial_sparsity` and
    `sparsity(end_step) = final_sparsity`; masks are recomputed every
    `frequency` steps in `[begin_step, end_step]`. `power=1` is a linear ramp:
    "+10% of filters every 10 epochs from epoch 10 to 50" is
    `PolynomialDecay(0.1, 0.5, 10 * E, 50 * E, power=1, frequency=10 * E)` with
    `E` steps per epoch.

    Args:
        initial_sparsity: Sparsity at `begin_step`, in `[0, 1)`.
        final_sparsity: Sparsity at and after `end_step`, in `[0, 1)`.
        begin_step: First pruning step, >= 0.
        end_step: Last pruning step, > `begin_step`.
        power: Exponent of the decay, > 0. Defaults to `3`.
        frequency: Steps between mask updates. Defaults to `100`.

    References:
        Zhu & Gupta, "To prune, or not to prune: exploring the efficacy of
        pruning for model compression", 2017, https://arxiv.org/abs/1710.01878
    """

    _allow_endless = False

    def __init__(
        self,
        initial_sparsity: float,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        power: float = 3,
        frequency: int = 100,
    ) -> None:
        super().__init__(begin_step, end_step, frequency)
        if self.end_step == self.begin_step:
            raise ValueError(
                "`end_step` must be > `begin_step` for PolynomialDecay. Received: "
                f"end_step={end_step!r} with begin_step={begin_step!r}"
            )
        self.initial_sparsity = validation.float_in_range(initial_sparsity, "initial_sparsity", 0.0, 1.0, high_open=True)
        self.final_sparsity = validation.float_in_range(final_sparsity, "final_sparsity", 0.0, 1.0, high_open=True)
        self.power = validation.positive_float(power, "power")

    def sparsity_at(self, step: int) -> float:
        step = _check_step(step)
        p = (step - self.begin_step) / (self.end_step - self.begin_step)
        p = min(1.0, max(0.0, p))
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (
            (1.0 - p) ** self.power
        )
