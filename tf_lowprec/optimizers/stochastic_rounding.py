"""StochasticRounding: train bfloat16/float16 weights without a float32 copy."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tf_lowprec import formats
from tf_lowprec.ops.floating_point import quantize_floating_point
from tf_lowprec.optimizers.inner_optimizer import Untracked, WrapperOptimizer
from tf_lowprec.optimizers.low_precision import rounding_seed

# Random streams (see `rounding_seed`): weight decay and the update of one
# variable at one step round with independent numbers.
DECAY_STREAM = 0
UPDATE_STREAM = 1

_FORMATS = {
    "bfloat16": formats.FloatingPoint(8, 7),
    "float16": formats.FloatingPoint(5, 10),
}


def _dense(value):
    """An `IndexedSlices` increment as a dense tensor (duplicates summed; adding
    zero elsewhere is exact after stochastic rounding of a grid value)."""
    if isinstance(value, tf.IndexedSlices):
        return tf.convert_to_tensor(value)
    return value


def _read32(variable):
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return tf.cast(tf.convert_to_tensor(variable), tf.float32)


_ROUNDED_SUMS = {}


def _rounded_sum(base, value, sign, fmt, seed):
    """`SR(f32(base) + sign * f32(value))` (`sign=0`: `SR(f32(value))`) in
    `base`'s dtype, as one XLA kernel: the float32 sum and the rounding fuse
    into one loop, so no full-size float32 temporary is stored."""
    value = tf.convert_to_tensor(value)
    key = (tuple(base.shape), base.dtype, value.dtype, sign, fmt)
    fn = _ROUNDED_SUMS.get(key)
    if fn is None:

        def body(base, value, seed):
            total = tf.cast(value, tf.float32)
            if sign:
                total = tf.cast(base, tf.float32) + sign * total
            rounded = quantize_floating_point(total, fmt, "stochastic", seed)
            return tf.cast(rounded, base.dtype)

        fn = tf.function(body, jit_compile=True, autograph=False)
        _ROUNDED_SUMS[key] = fn
    return fn(base, value, seed)


@keras.saving.register_keras_serializable(package="tf_lowprec")
class StochasticRounding(WrapperOptimizer):
    """Stochastically rounded updates of bfloat16 / float16 variables.

    A 16-bit weight `w` updated with round-to-nearest, `w <- RN(w + dw)`,
    does not move at all when `|dw|` is below half its ulp (`2^-9 |w|` for
    bfloat16): with a small learning rate, late in training, or for weight
    decay, training stalls. This wrapper computes every write the inner
    optimizer makes to a 16-bit model variable in float32 and rounds it
    stochastically onto the variable's grid:

    ```
    w <- SR(float32(w) + float32(dw)),   E[SR(x)] = x
    ```

    so the update is kept in expectation (Gupta et al., 2015; Zamirai et
    al., 2020), with no float32 master copy: the model stores 2 bytes per
    weight. `SR` is the kernel of `tf_lowprec.ops.quantize(x,
    FloatingPoint(8, 7)` (or `(5, 10)` for float16)`, "stochastic", seed)`,
    fused with the float32 sum into one XLA kernel; its result is exactly
    representable in the variable's dtype. Seeds are counter-based and
    stateless in `(seed, iterations, variable index, stream)` (as in
    `LowPrecision`), so replicas under `tf.distribute.MirroredStrategy`
    round identically and a run resumed from a `.keras` file continues bit
    for bit.

    What is intercepted: the inner optimizer's `assign`, `assign_add` and
    `assign_sub` on the model variables (every Keras and tf_lowprec
    optimizer writes weights through them) and its decoupled weight decay
    (`w <- SR(w - lr * wd * w)`). float32 variables pass through unchanged.
    The inner optimizer's state slots are left as it makes them: Keras's
    optimizers create them in the variable's dtype (bfloat16, updated with
    nearest rounding by Keras, in bfloat16 arithmetic); `Adam8bit`,
    `AdamW8bit` and `SGD8bit` store them as 8-bit codes and compute the
    whole rule in float32, which makes them the natural partners (2 bytes
    of weights + 2 bytes of Adam state per parameter).

    Keras's own `Adam`/`AdamW` do not train bfloat16 variables at all, with
    or without this wrapper (Keras 3.15): they compute `beta_2 ** t` in the
    variable's dtype, 0.999 is 1.0 in bfloat16, so the bias correction
    `sqrt(1 - beta_2 ** t)` and every update are exactly 0. Use `Adam8bit`
    (or `AdamW8bit`) inside. Keras `SGD` works (its update is computed in
    bfloat16 and then rounded stochastically here).

    Getting 16-bit variables in Keras 3: the `"mixed_bfloat16"` policy
    keeps float32 variables (computation in bfloat16; nothing to round
    here, no memory saved). The `"bfloat16"` policy
    (`keras.mixed_precision.set_global_policy("bfloat16")`) or layers built
    with `dtype="bfloat16"` create bfloat16 variables; that is what this
    wrapper is for. (Checked in `tests/optimizers/test_stochastic_rounding.py`.)

    Args:
        optimizer: the inner `keras.optimizers.Optimizer` (not a wrapper
            without its own `update_step`).
        seed: int in `[0, 2^31)`; `None` draws one from Python's `random`
            (reproducible after `keras.utils.set_random_seed`).
        name: string. Defaults to `"stochastic_rounding"`, numbered like Keras's
            names (`stochastic_rounding_1`, ...).

    Example:

    ```python
    keras.mixed_precision.set_global_policy("bfloat16")
    model = ...  # bfloat16 weights
    model.compile(
        optimizer=tf_lowprec.optimizers.StochasticRounding(
            tf_lowprec.optimizers.Adam8bit(1e-3)),
        loss=...)
    ```

    References:
        - Gupta, Agrawal, Gopalakrishnan, Narayanan, "Deep Learning with
          Limited Numerical Precision", ICML 2015.
        - Zamirai, Zhang, Aberger, De Sa, "Revisiting BFloat16 Training",
          2020 (https://arxiv.org/abs/2010.06192).
    """

    _default_name = "stochastic_rounding"

    def __init__(
        self,
        optimizer: keras.optimizers.Optimizer,
        seed: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        # The inner optimizer's checks and (de)serialization: `WrapperOptimizer`.
        super().__init__(optimizer, name=name, **kwargs)
        self._require_inner_update_step()
        self.seed = self._seed_or_random(seed)

    def build(self, var_list: list[keras.Variable]) -> None:
        if self.built:
            return
        super().build(var_list)
        inner = self.inner_optimizer
        if not inner.built:
            inner.build(var_list)
        rounded = {}
        for variable in var_list:
            fmt = _FORMATS.get(keras.backend.standardize_dtype(variable.dtype))
            if fmt is not None:
                rounded[inner._var_key(variable)] = fmt
        self._refs = Untracked(formats=rounded)
        self._install_hooks()

    @property
    def rounded_variable_count(self) -> int:
        """How many of the variables are 16-bit (stochastically rounded)."""
        return len(self._refs.formats) if self.built else 0

    # ----------------------------------------------------------------- hooks

    def _format(self, variable):
        return self._refs.formats.get(self.inner_optimizer._var_key(variable))

    def _round_into(self, assign, variable, value, stream, sign=0):
        """`variable <- SR(value)` (`sign=0`) or `SR(variable + sign * value)`."""
        inner = self.inner_optimizer
        seed = rounding_seed(
            self.seed, inner.iterations, inner._get_variable_index(variable), stream
        )
        current = variable.value if isinstance(variable, keras.Variable) else variable
        current = tf.convert_to_tensor(current)
        rounded = _rounded_sum(current, value, sign, self._format(variable), seed)
        assign(variable, rounded)

    def _install_hooks(self):
        inner = self.inner_optimizer
        if getattr(inner, "_tf_lowprec_stochastic_rounding_hook", False):
            return
        assign, assign_add, assign_sub = (
            inner.assign,
            inner.assign_add,
            inner.assign_sub,
        )
        apply_weight_decay = inner._apply_weight_decay

        def hooked_assign(variable, value):
            if self._format(variable) is None:
                return assign(variable, value)
            if isinstance(value, tf.IndexedSlices):  # a scatter: keep other rows
                value = tf.tensor_scatter_nd_update(
                    _read32(variable),
                    value.indices[:, None],
                    tf.cast(value.values, tf.float32),
                )
            return self._round_into(assign, variable, value, UPDATE_STREAM)

        def hooked_assign_add(variable, value):
            if self._format(variable) is None:
                return assign_add(variable, value)
            return self._round_into(assign, variable, _dense(value), UPDATE_STREAM, 1)

        def hooked_assign_sub(variable, value):
            if self._format(variable) is None:
                return assign_sub(variable, value)
            return self._round_into(assign, variable, _dense(value), UPDATE_STREAM, -1)

        def hooked_weight_decay(variables):
            plain = [v for v in variables if self._format(v) is None]
            rounded = [v for v in variables if self._format(v) is not None]
            apply_weight_decay(plain)
            if inner.weight_decay is None or not rounded:
                return

            def decay(distribution, variables):
                def decay_one(variable):
                    if inner._use_weight_decay(variable):
                        lr = tf.cast(inner.learning_rate, tf.float32)
                        wd = tf.cast(inner.weight_decay, tf.float32)
                        w = _read32(variable)
                        self._round_into(
                            assign, variable, w * (wd * lr), DECAY_STREAM, -1
                        )

                for variable in variables:
                    if isinstance(variable, keras.Variable):
                        variable = variable.value
                    distribution.extended.update(variable, decay_one, group=False)

            tf.__internal__.distribute.interim.maybe_merge_call(
                decay, inner._distribution_strategy, rounded
            )

        inner.assign = hooked_assign
        inner.assign_add = hooked_assign_add
        inner.assign_sub = hooked_assign_sub
        inner._apply_weight_decay = hooked_weight_decay
        inner._tf_lowprec_stochastic_rounding_hook = True

    # ---------------------------------------------------------------- config

    def _wrapper_config(self):
        return {"seed": self.seed}
