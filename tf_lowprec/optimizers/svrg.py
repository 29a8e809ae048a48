"""SVRG: stochastic variance-reduced gradient, driven by `model.fit`."""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf
from keras import ops

from tf_lowprec import validation
from tf_lowprec.optimizers.step_arguments import CurrentLearningRate, Gradient

if TYPE_CHECKING:
    from tensorflow.types.experimental import TensorLike

    from tf_lowprec.optimizers.learning_rate import LearningRate

_EPOCH_PATTERN = re.compile(
    r"^\s*(?P<count>\d+(?:\.\d*)?|\.\d+)\s*(?:epoch|epochs)\s*$", re.IGNORECASE
)

_NEEDS_WRAPPER = (
    "{name} needs two gradients per step (at the current weights and at the "
    "snapshot, on the same minibatch) and a full-dataset gradient every T "
    "steps, which the default `Model.train_step` does not compute. Wrap the "
    "model before compiling:\n"
    "    model = tf_lowprec.training.VarianceReduced(model)\n"
    "    model.compile(optimizer={name}(...), loss=...)\n"
    "    model.fit(...)   # adds the full-gradient snapshot callback itself\n"
    "In a custom loop, call `model.take_snapshot(data)` every T steps and "
    "`model.train_step(batch)`."
)


def parse_period(T: int | str) -> tuple[str, int | float]:
    """Validates `T` and returns `("steps", int)` or `("epochs", float)`.

    Args:
        T: A positive integer number of steps, or a string such as
            `"0.5epoch"`, `"1 epoch"` or `"3epochs"`.

    Raises:
        ValueError: for anything else, or a period below one step.
    """
    if isinstance(T, bool):
        raise ValueError(f"Argument `T` must be >= 1. Received: T={T!r}")
    if isinstance(T, numbers.Integral):
        if T < 1:
            raise ValueError(
                f"Argument `T` (steps between snapshots) must be >= 1. "
                f"Received: T={T!r}"
            )
        return "steps", int(T)
    if isinstance(T, numbers.Real):
        if float(T).is_integer() and T >= 1:
            return "steps", int(T)
        raise ValueError(
            "Argument `T` must be an integer number of steps (>= 1) or a "
            "string like '0.5epoch'; a float is ambiguous. "
            f"Received: T={T!r}"
        )
    if isinstance(T, str):
        match = _EPOCH_PATTERN.match(T)
        if match is None:
            raise ValueError(
                "Argument `T` must be an integer number of steps or a string "
                f"like '0.5epoch' or '3epochs'. Received: T={T!r}"
            )
        count = float(match.group("count"))
        if not count > 0:
            raise ValueError(
                f"Argument `T` must be a positive number of epochs. "
                f"Received: T={T!r}"
            )
        return "epochs", count
    raise ValueError(
        "Argument `T` must be an integer number of steps or a string like "
        f"'0.5epoch'. Received: T={T!r}"
    )


def _canonical_period(T):
    kind, value = parse_period(T)
    if kind == "steps":
        return value
    return f"{value:g}epoch"


def _reject(name, value, why):
    if value is not None:
        raise ValueError(
            f"Argument `{name}` is not supported by this optimizer: {why} "
            f"Received: {name}={value!r}"
        )


@keras.saving.register_keras_serializable(package="tf_lowprec")
class SVRG(keras.optimizers.Optimizer):
    """Stochastic variance-reduced gradient (SVRG), trained with `model.fit`.

    Every `T` steps SVRG takes a snapshot `w~` of the weights and computes
    the full-dataset gradient `g~ = grad F(w~)` there. Each step in between
    evaluates the minibatch gradient both at the current weights and at the
    snapshot, and follows their difference, re-centred on the full gradient:

    ```
    every T steps:  w~ = w ;  g~ = (1/N) sum_{j=1..N} grad f_j(w~)
    every step:     d  = grad f_B(w) - grad f_B(w~) + g~
                    w  = w - lr * (d + wd * w)
    ```

    `d` is an unbiased estimate of `grad F(w)` whose variance vanishes as `w`
    and `w~` approach the optimum, which gives linear convergence on
    strongly convex problems with a constant learning rate.

    Notation:
        `f_B` is the training loss on minibatch `B` (the compiled loss plus
        the model's regularisation losses), `F = (1/N) sum_j f_j` the loss
        over the `N` training samples, `lr` the learning rate (a schedule is
        evaluated at the step count), `wd` the `weight_decay`.

    Use it through `tf_lowprec.training.VarianceReduced`, which computes the
    two gradients in its `train_step` and passes `grad f_B(w) - grad f_B(w~)`
    to this optimizer, and whose `fit` adds the callback that installs the
    full gradient every `T` steps. Compiling a plain model with SVRG raises a
    `ValueError` at the first training step that says so.

    Semantics (as HazyResearch/torchhalp `SVRG`, "option I": the snapshot is
    the last iterate), with these choices:
        * The full gradient is the exact sample mean (batches weighted by
          their size). torchhalp averages batch means, which gives a short
          last batch the weight of a full one.
        * The snapshot pass and the current pass see the same minibatch,
          the same dropout mask and the same batch statistics; the snapshot
          pass does not update batch-norm moving statistics or any other
          model state. (torchhalp re-runs the closure, with fresh dropout,
          and updates running statistics in both passes.) The full-gradient
          pass is an ordinary training-mode pass.
        * `weight_decay` is decoupled decay of the model weights, which for
          SGD without momentum equals torch's coupled `weight_decay`.
        * `T` counts optimizer steps; the first step of training takes a
          snapshot, and after resuming from a checkpoint the schedule
          continues where it stopped (the snapshot, the full gradient and the
          step of the last snapshot are optimizer variables).

    Args:
        learning_rate: A positive float, a
            `keras.optimizers.schedules.LearningRateSchedule`, or a callable
            returning the learning rate. SVRG is normally run with a constant
            learning rate. Defaults to `0.01`.
        T: Steps between snapshots: a positive integer, or a string
            `"<x>epoch"` (e.g. `"0.5epoch"`, `"2epochs"`) resolved against
            the number of steps per epoch of the `fit` call (rounded, at
            least 1). torchhalp's default is 2 epochs; its CIFAR-10 runs use
            half an epoch. Defaults to `"1epoch"`.

    Base optimizer arguments (keyword arguments of `keras.optimizers.Optimizer`):
        weight_decay: Optional non-negative float, decoupled weight decay
            `w -= lr * wd * w` per step. Defaults to `None`.
        use_ema, ema_momentum, ema_overwrite_frequency: As in Keras.
        loss_scale_factor: As in Keras (static loss scaling).
        clipnorm, clipvalue, global_clipnorm, gradient_accumulation_steps:
            Not supported (`ValueError`): clipping would act on the
            difference of two gradients, per replica before aggregation, and
            accumulation would change what a step is.
        name: String, name of the optimizer; `None` gives the snake-case
            class name, numbered from the second instance on (`grda`,
            `grda_1`), as Keras names its own optimizers.

    Example:

    ```python
    model = tf_lowprec.training.VarianceReduced(tf_lowprec.models.mlp())
    model.compile(
        optimizer=tf_lowprec.optimizers.SVRG(learning_rate=0.05, T="0.5epoch"),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(train_ds, epochs=10, validation_data=test_ds)
    ```

    References:
        - [Johnson and Zhang, "Accelerating Stochastic Gradient Descent using
          Predictive Variance Reduction", NIPS 2013](
          https://papers.nips.cc/paper/4937).
        - [De Sa, Leszczynski, Zhang, Marzoev, Aberger, Olukotun and Ré,
          "High-Accuracy Low-Precision Training", 2018](
          https://arxiv.org/abs/1803.03383); authors' code
          [HazyResearch/torchhalp](https://github.com/HazyResearch/torchhalp)
          (`torchhalp/optim/svrg.py`).
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        T: int | str = "1epoch",
        **kwargs: Any,
    ) -> None:
        learning_rate = validation.learning_rate(learning_rate)
        T = _canonical_period(T)
        clip_why = (
            "clipping would act on the difference of two gradients, per "
            "replica and before aggregation."
        )
        for clip in ("clipnorm", "clipvalue", "global_clipnorm"):
            _reject(clip, kwargs.get(clip), clip_why)
        validation.optimizer_common_args(**kwargs)
        _reject(
            "gradient_accumulation_steps",
            kwargs.get("gradient_accumulation_steps"),
            "a variance-reduced step needs its own full-gradient correction.",
        )
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.T = T
        self._driven = False

    # ----------------------------------------------------------------- state
    def build(self, var_list: list[keras.Variable]) -> None:
        """Creates the snapshot, full-gradient and bookkeeping variables.

        Creation order (the order of `.keras` checkpoints): the base
        variables, `snapshot_iteration`, one `snapshot` and one
        `full_gradient` per variable, then subclass state.
        """
        if self.built:
            return
        super().build(var_list)
        # Step of the last snapshot (-1: none yet). Written from a callback,
        # in cross-replica context, so "none" aggregation is enough.
        self._snapshot_iteration = self.add_variable(
            shape=(),
            dtype="int64",
            initializer=keras.initializers.Constant(-1),
            name="snapshot_iteration",
        )
        self._snapshots = self.add_optimizer_variables(var_list, "snapshot")
        self._full_gradients = self.add_optimizer_variables(
            var_list, "full_gradient"
        )

    @property
    def snapshot_iteration(self) -> keras.Variable:
        """Optimizer step at which the last snapshot was taken (-1: none)."""
        return self._snapshot_iteration

    def period(self, steps_per_epoch: int | None = None) -> int:
        """`T` in optimizer steps.

        Args:
            steps_per_epoch: Steps per epoch of the training run, needed
                when `T` is given in epochs.

        Raises:
            ValueError: if `T` is in epochs and `steps_per_epoch` is unknown.
        """
        kind, value = parse_period(self.T)
        if kind == "steps":
            return value
        if not steps_per_epoch:
            raise ValueError(
                f"{type(self).__name__}(T={self.T!r}) needs the number of "
                "steps per epoch, which `fit` does not know for this data "
                "(e.g. a dataset of unknown cardinality). Pass "
                "`steps_per_epoch=` to `fit`, or give `T` in steps. "
                f"Received: steps_per_epoch={steps_per_epoch!r}"
            )
        return max(1, int(round(value * steps_per_epoch)))

    def snapshot_point(self, variable: keras.Variable) -> keras.Variable:
        """The snapshot weights `w~` matching a trainable `variable`."""
        return self._snapshots[self._get_variable_index(variable)]

    def full_gradient(self, variable: keras.Variable) -> keras.Variable:
        """The stored full gradient `g~` matching a trainable `variable`."""
        return self._full_gradients[self._get_variable_index(variable)]

    def take_snapshot(self, full_gradients: Sequence[TensorLike | None]) -> None:
        """Starts a new outer iteration at the current weights.

        Sets `w~ = w` and `g~ = full_gradients` for every trainable variable
        and records the step. Call it in cross-replica context (a callback),
        with the full gradient at the current weights, aggregated over
        replicas (`tf_lowprec.training.full_gradient`).

        Args:
            full_gradients: One tensor per variable the optimizer was built
                with, in the same order.
        """
        variables = self._trainable_variables
        if len(full_gradients) != len(variables):
            raise ValueError(
                f"Expected {len(variables)} full gradients, one per trainable "
                f"variable. Received: {len(full_gradients)}"
            )
        for variable, snapshot, full, gradient in zip(
            variables, self._snapshots, self._full_gradients, full_gradients
        ):
            if snapshot is None:
                continue  # `overwrite_with_gradient`: no SVRG state
            snapshot.assign(variable)
            full.assign(ops.cast(gradient, full.dtype))
        self._snapshot_iteration.assign(ops.cast(self.iterations, "int64"))

    # ---------------------------------------------------------------- update
    def apply_variance_reduced(
        self,
        corrections: Sequence[TensorLike | tf.IndexedSlices | None],
        trainable_variables: Sequence[keras.Variable] | None = None,
    ) -> None:
        """Applies one step given `grad f_B(w) - grad f_B(w~)` per variable.

        This is the entry point of `VarianceReduced.train_step`; the full
        gradient is added in `update_step`, after the cross-replica
        aggregation of the corrections.
        """
        self._driven = True
        try:
            return self.apply(corrections, trainable_variables)
        finally:
            self._driven = False

    def apply(
        self,
        grads: Sequence[TensorLike | tf.IndexedSlices | None],
        trainable_variables: Sequence[keras.Variable] | None = None,
    ) -> None:
        if not self._driven:
            raise ValueError(_NEEDS_WRAPPER.format(name=type(self).__name__))
        return super().apply(grads, trainable_variables)

    def _direction(self, correction, variable):
        """`d = correction + g~` in the variable's dtype (dense)."""
        if isinstance(correction, tf.IndexedSlices):
            correction = tf.convert_to_tensor(correction)
        full = self._full_gradients[self._get_variable_index(variable)]
        return ops.add(
            ops.cast(correction, variable.dtype), ops.cast(full, variable.dtype)
        )

    def update_step(
        self, gradient: Gradient, variable: keras.Variable, learning_rate: CurrentLearningRate
    ) -> None:
        """`w -= lr * (correction + g~)` (decay was applied by the base)."""
        lr = ops.cast(learning_rate, variable.dtype)
        self.assign_sub(
            variable, ops.multiply(lr, self._direction(gradient, variable))
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["T"] = self.T
        return config
