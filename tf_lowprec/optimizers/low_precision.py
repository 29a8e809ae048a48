"""LowPrecision: quantize the gradient, state and weights of any Keras optimizer."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tf_lowprec import formats, quantizers
from tf_lowprec.formats import deserialize_format
from tf_lowprec.ops.rounding import check_rounding
from tf_lowprec.optimizers.inner_optimizer import Untracked, WrapperOptimizer, slot_prefix
from tf_lowprec.optimizers.slots import add_copy_slots
from tf_lowprec.quantizers import Quantizer, QuantizerLike, stream_seed

# Random streams per variable (`stream` of `tf_lowprec.quantizers.stream_seed`).
GRADIENT_STREAM = 0
ACCUMULATOR_STREAM = 1
WEIGHT_STREAM = 2
MOMENTUM_STREAM = 3  # + k for the k-th state slot of the variable

# Per-variable slots of the inner optimizer that are not optimizer *state*:
# Keras's EMA copy and gradient-accumulation buffers are never quantized.
_NOT_STATE = ("_average", "_gradient_accumulator")

_QUANTIZERS = (
    "weight_quantizer",
    "gradient_quantizer",
    "momentum_quantizer",
    "accumulator_quantizer",
)

# The documented rounding of a bare format here: stochastic, the unbiased
# choice for optimizer quantities (nearest rounding drops every update
# smaller than half a grid step).
DEFAULT_ROUNDING = "stochastic"

# `rounding_seed(seed, step, variable_index, stream)`: the package's one
# seed-stream rule, `fold_in([seed, step], variable_index * 64 + stream)`,
# with `step` the inner optimizer's `iterations` before the update. Public
# so that tests can reproduce the draws
# (`tf_lowprec.ops.rounding.uniform(shape, rounding_seed(...))`).
rounding_seed = stream_seed


def as_quantizer(
    value: QuantizerLike | tuple[Any, str] | list[Any] | None, name: str
) -> Quantizer | None:
    """A `Quantizer` from a `Quantizer`, a bare format, a config or `None`.

    A bare format rounds with `DEFAULT_ROUNDING` ("stochastic"). The former
    `(format, rounding)` pairs are still accepted (deprecated).
    """
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                f"`{name}` must be a Quantizer, a number format or None "
                f"(or a deprecated (format, rounding) pair). Received: {name}={value!r}"
            )
        warnings.warn(
            f"`{name}=(format, rounding)` is deprecated; pass "
            "tf_lowprec.quantizers.Quantizer(format, rounding).",
            DeprecationWarning,
            stacklevel=3,
        )
        fmt, mode = value
        check_rounding(mode, f"{name}[1] (rounding)")
        value = Quantizer(deserialize_format(fmt, name), mode)
    return quantizers.as_quantizer(
        value, name, DEFAULT_ROUNDING, allowed=formats.QUANTIZE_FORMATS
    )


def _read(variable):
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return tf.convert_to_tensor(variable)


def _quantize_sparse(gradient, quantize_values):
    """Q of an `IndexedSlices` gradient as if it were dense.

    Duplicate indices are summed first; every block maximum over the dense
    gradient is then a maximum over the touched rows (the rest are zero), so
    the touched rows get exactly the dense grid.
    """
    unique, position = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(
        gradient.values, position, tf.shape(unique)[0]
    )
    return tf.IndexedSlices(quantize_values(values), unique, gradient.dense_shape)


@keras.saving.register_keras_serializable(package="tf_lowprec")
class LowPrecision(WrapperOptimizer):
    """Low-precision training with any Keras optimizer (SWALP / QPyTorch OptimLP).

    Wraps `optimizer` and quantizes, at every step and for every variable,
    the numbers the optimizer reads and writes:

    ```
    g      = Q_G(g)                       # the all-reduced, clipped gradient
    a      = inner update of a with g     # a: the accumulator (see below)
    a      = Q_ACC(a)
    w      = Q_W(a)                       # what the forward pass uses
    s      = Q_M(s) for each state slot s of the variable
    ```

    The inner optimizer's own rule runs unchanged in between (learning
    rate, schedule, decoupled `weight_decay`, clipping, EMA all as
    configured on it). With every quantizer `None` this optimizer *is* the
    inner one: `apply` calls `optimizer.apply` and nothing else, bit for bit.

    Accumulator: SWALP keeps the weights the model uses (`w`, `Q_W`) apart
    from the copy the optimizer accumulates into (`a`, `Q_ACC`). A separate
    float copy of every variable is kept only when it can differ from `w`:
    when `weight_quantizer` is set and `accumulator_quantizer` is `None`
    (a full-precision accumulator, low-precision weights) or has a different
    format. The inner optimizer is then built on the accumulators (its
    slots, weight decay and EMA act on `a`), and the model variable receives
    `Q_W(a)` after every update. When both quantizers share a format (the
    SWALP paper: 8-bit BFP for both) `Q_W(Q_ACC(a)) = Q_ACC(a)` (the
    quantizers are idempotent), so the model variable itself is the
    accumulator and no copy is made.

    Momentum: `momentum_quantizer` applies to every per-variable state slot
    of the inner optimizer, as the inner optimizer defines it: Keras SGD's
    velocity, Adam's first and second moments (QPyTorch quantizes the same
    ones). Keras SGD keeps `v = m * v - lr * g; w += v`, i.e. `v = -lr * buf`
    for torch's `buf = m * buf + g; w -= lr * buf` (and, when the learning
    rate changes, `v` still carries the old rates). A block format's grid is
    relative to the block maximum, so `Q(v)` has the resolution of
    `Q(buf)`; for a learning rate that is a power of two and nearest
    rounding the two are identical (`tests/optimizers/test_low_precision.py`
    checks LowPrecision(SGD) bit for bit against a numpy transcription of
    SWALP's torch step), otherwise they differ only in where rounding
    boundaries fall. SWALP itself quantizes the momentum with its gradient
    quantizer: pass the same format for both.

    Weight decay: the inner optimizer's decoupled decay (`w -= lr * wd * w`,
    before the update) acts on the accumulator, unquantized, as SWALP's
    `g + wd * acc` does; torch's coupled decay enters the momentum, so the
    paper's `wd = 5e-4` with momentum 0.9 corresponds to roughly
    `weight_decay = 5e-3` here.

    Distribution: the hooks run inside the inner optimizer's per-variable
    `update_step`, after the cross-replica all-reduce, so every replica
    quantizes the same global gradient with the same random numbers
    (`rounding_seed` is stateless in `(seed, iterations, variable)`), and
    training under `tf.distribute.MirroredStrategy` follows single-device
    training. Stochastic rounding is also reproducible across a `.keras`
    save/load: `iterations` and the seed are saved.

    Notation:
        `Q_X` is the `tf_lowprec.quantizers.Quantizer` given for `X`, drawing
        (for stochastic rounding) from `stream_seed(seed, iterations,
        variable index, stream of X)`; `g` is the gradient with respect to
        the model variable `w`.

    Args:
        optimizer: the inner `keras.optimizers.Optimizer` (not yet built);
            any optimizer with a per-variable `update_step` (SGD, Adam, the
            tf_lowprec optimizers, ...). Wrappers such as
            `LossScaleOptimizer` cannot be wrapped (wrap `LowPrecision` in
            them instead).
        weight_quantizer: quantizer of the weights the model uses, or `None`.
        gradient_quantizer: quantizer of the gradients, or `None`.
        momentum_quantizer: quantizer of the optimizer's state slots, or
            `None`.
        accumulator_quantizer: quantizer of the accumulator, or `None`.
        seed: int in `[0, 2^31)`, the stochastic-rounding seed; `None` draws
            one (from Python's `random`, so `keras.utils.set_random_seed`
            makes it reproducible). Defaults to `None`.
        name: string. Defaults to `"low_precision"`.

    Each quantizer is a `tf_lowprec.quantizers.Quantizer`, or a bare
    `tf_lowprec.formats` format, which becomes `Quantizer(format,
    "stochastic")` (the documented default here: unbiased). A quantizer's
    own `seed`, if set, replaces this optimizer's `seed` for its draws. The
    former `(format, rounding)` pairs still work (deprecated for one
    release).

    Sparse gradients (`tf.IndexedSlices`): duplicate indices are summed and
    the touched rows quantized on the grid the dense gradient would have;
    the other quantizers act on whole variables.

    Example:

    ```python
    bfp8 = tf_lowprec.quantizers.Quantizer(
        tf_lowprec.formats.BlockFloatingPoint(8, axis=-1), "stochastic")  # per output channel
    optimizer = tf_lowprec.optimizers.LowPrecision(
        keras.optimizers.SGD(0.05, momentum=0.9),
        weight_quantizer=bfp8, gradient_quantizer=bfp8,
        momentum_quantizer=bfp8, accumulator_quantizer=bfp8)
    model.compile(optimizer=optimizer, loss=..., metrics=["accuracy"])
    ```

    `tf_lowprec.recipes.swalp` builds the paper's whole setup.

    References:
        - [Yang, Zhang, Wang, De Sa, "SWALP: Stochastic Weight Averaging in
          Low-Precision Training", ICML 2019](https://arxiv.org/abs/1904.11943);
          [code](https://github.com/stevenygd/SWALP) (`utils.train_batch`).
        - [Zhang, Yang, De Sa, "QPyTorch: A Low-Precision Arithmetic
          Simulation Framework", 2019](https://arxiv.org/abs/1910.04540)
          (`qtorch/optim/optim_low.py`, `OptimLP`).
    """

    _default_name = "low_precision"

    def __init__(
        self,
        optimizer: keras.optimizers.Optimizer,
        weight_quantizer: QuantizerLike | None = None,
        gradient_quantizer: QuantizerLike | None = None,
        momentum_quantizer: QuantizerLike | None = None,
        accumulator_quantizer: QuantizerLike | None = None,
        seed: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(optimizer, name=name, **kwargs)
        self._require_inner_update_step(
            " around other optimizers. Wrap LowPrecision in it instead"
        )
        seed = self._seed_or_random(seed)
        self.weight_quantizer = as_quantizer(weight_quantizer, "weight_quantizer")
        self.gradient_quantizer = as_quantizer(gradient_quantizer, "gradient_quantizer")
        self.momentum_quantizer = as_quantizer(momentum_quantizer, "momentum_quantizer")
        self.accumulator_quantizer = as_quantizer(
            accumulator_quantizer, "accumulator_quantizer"
        )
        self.seed = seed
        self._weight_decay_exclusions = None

    # ------------------------------------------------------------------ state

    @property
    def quantizes(self) -> bool:
        """Whether any quantizer is set (otherwise this is the inner optimizer)."""
        return any(getattr(self, name) is not None for name in _QUANTIZERS)

    @property
    def separate_accumulator(self) -> bool:
        """Whether a full copy `a` is kept apart from the model weights `w`."""
        if self.weight_quantizer is None:
            return False
        acc = self.accumulator_quantizer
        return acc is None or acc.format != self.weight_quantizer.format

    def build(self, var_list: list[keras.Variable]) -> None:
        """Builds the accumulators (if any) and the inner optimizer on them."""
        if self.built:
            return
        super().build(var_list)
        inner = self.inner_optimizer
        if self.separate_accumulator:
            if inner.built:
                raise ValueError(
                    "The inner optimizer of a LowPrecision with a separate "
                    "accumulator must not be built yet (it is built on the "
                    f"accumulators). Received: a built {inner.name!r}."
                )
            # Initialised from the variables, also inside the train
            # function's trace of an unbuilt model (`slots`). Variables with
            # `overwrite_with_gradient` (float8 scales, amax histories) get
            # none: Keras overwrites them with their gradient, unquantized.
            self._accumulators = add_copy_slots(self, var_list, "lp_accumulator")
            targets = [
                v if a is None else a for v, a in zip(var_list, self._accumulators)
            ]
        else:
            self._accumulators = []
            targets = list(var_list)
        self._refs = Untracked(model_variables=list(var_list), targets=targets)
        if self._weight_decay_exclusions is not None:
            excluded, names = self._weight_decay_exclusions
            by_id = {id(v): t for v, t in zip(var_list, targets)}
            inner.exclude_from_weight_decay(
                var_list=[by_id.get(id(v), v) for v in excluded] or None,
                var_names=names,
            )
        inner.build(targets)
        self._refs.state_slots = self._find_state_slots(targets)
        if self.quantizes:
            self._install_hook()

    def _find_state_slots(self, targets):
        """Per target variable, the inner optimizer's slots made from it.

        Keras names a slot `{reference.path with "/" -> "_"}_{slot name}`
        (`add_variable_from_reference`); the longest matching prefix wins.
        """
        prefixes = [slot_prefix(t) + "_" for t in targets]
        slots = [[] for _ in targets]
        target_ids = {id(t) for t in targets}
        for variable in self.inner_optimizer.variables:
            if id(variable) in target_ids:
                continue
            name = variable.name
            matches = [
                i
                for i, prefix in enumerate(prefixes)
                if name.startswith(prefix) and tuple(variable.shape) == tuple(targets[i].shape)
            ]
            if not matches:
                continue
            best = max(matches, key=lambda i: len(prefixes[i]))
            if name[len(prefixes[best]) - 1 :].startswith(_NOT_STATE):
                continue
            slots[best].append(variable)
        return slots

    @property
    def accumulators(self) -> list[keras.Variable | None]:
        """The separate accumulators `a` (empty unless `separate_accumulator`)."""
        return list(self._accumulators)

    def reset_accumulators(self) -> None:
        """Copies the current model weights into the accumulators.

        Call it after changing the model weights by hand (e.g. `set_weights`)
        when `separate_accumulator` is true; otherwise the next step resumes
        from the accumulator and overwrites them.
        """
        for accumulator, variable in zip(self._accumulators, self._refs.model_variables):
            if accumulator is not None:
                accumulator.assign(variable)

    def exclude_from_weight_decay(
        self,
        var_list: Sequence[keras.Variable] | None = None,
        var_names: Sequence[str] | None = None,
    ) -> None:
        """As for any Keras optimizer; forwarded to the inner one at build time
        (with model variables translated to their accumulators)."""
        if self.built:
            raise ValueError(
                "`exclude_from_weight_decay()` can only be configured before "
                "the optimizer is built."
            )
        self._weight_decay_exclusions = (list(var_list or []), var_names)

    # ----------------------------------------------------------------- update

    def _apply_inner(self, grads, trainable_variables):
        if trainable_variables is None:
            targets = list(self._refs.targets)
        else:
            targets = [
                self._refs.targets[self._variable_index(v)] for v in trainable_variables
            ]
        self.inner_optimizer.apply(grads, targets)
        if self.separate_accumulator:
            # Keras applies constraints to the variables it updated (here the
            # accumulators, which have none): project the accumulator, and the
            # model variable `Q_W(a)`, with the model variable's constraint.
            for variable, accumulator in zip(self._refs.model_variables, self._accumulators):
                if accumulator is not None and variable.constraint is not None:
                    accumulator.assign(variable.constraint(accumulator))
                    variable.assign(variable.constraint(variable))

    def _install_hook(self):
        """Routes the inner optimizer's `update_step` through `_quantized_update`.

        `update_step` is where every Keras optimizer receives one variable's
        all-reduced, clipped gradient, in the per-replica update context of
        `tf.distribute`; wrapping it on the instance (the inner optimizer is
        owned by this wrapper) is the one place that sees the same numbers
        on one device and on many.
        """
        inner = self.inner_optimizer
        if getattr(inner, "_tf_lowprec_low_precision_hook", False):
            return
        original = inner.update_step

        def update_step(gradient, variable, learning_rate):
            self._quantized_update(original, gradient, variable, learning_rate)

        inner.update_step = update_step
        inner._tf_lowprec_low_precision_hook = True

    def _q(self, x, quantizer, index, stream):
        def q(values):
            return quantizer(
                values,
                step=self.inner_optimizer.iterations,
                index=index,
                stream=stream,
                seed=self.seed,
            )

        if isinstance(x, tf.IndexedSlices):
            return _quantize_sparse(x, q)
        return q(x)

    def _quantized_update(self, update_step, gradient, variable, learning_rate):
        inner = self.inner_optimizer
        index = inner._get_variable_index(variable)
        if self.gradient_quantizer is not None:
            gradient = self._q(gradient, self.gradient_quantizer, index, GRADIENT_STREAM)
        update_step(gradient, variable, learning_rate)
        if self.accumulator_quantizer is not None:
            inner.assign(
                variable,
                self._q(_read(variable), self.accumulator_quantizer, index, ACCUMULATOR_STREAM),
            )
        if self.separate_accumulator:
            inner.assign(
                self._refs.model_variables[index],
                self._q(_read(variable), self.weight_quantizer, index, WEIGHT_STREAM),
            )
        # else: `Q_W` is None, or `Q_W(Q_ACC(a)) = Q_ACC(a)` (same format).
        if self.momentum_quantizer is not None:
            for k, slot in enumerate(self._refs.state_slots[index]):
                inner.assign(
                    slot,
                    self._q(_read(slot), self.momentum_quantizer, index, MOMENTUM_STREAM + k),
                )

    def finalize_variable_values(self, var_list: Sequence[keras.Variable]) -> None:
        inner = self.inner_optimizer
        if not self.separate_accumulator or not self.built:
            inner.finalize_variable_values(var_list)
            return
        inner.finalize_variable_values(self._refs.targets)
        if inner.use_ema:
            # The inner EMA averaged the accumulators: hand it to the model.
            for variable, accumulator in zip(self._refs.model_variables, self._accumulators):
                if accumulator is not None:
                    variable.assign(accumulator)

    # ---------------------------------------------------------------- config

    def _wrapper_config(self):
        config = {"seed": self.seed}
        for name in _QUANTIZERS:
            quantizer = getattr(self, name)
            config[name] = None if quantizer is None else quantizer.get_config()
        return config
