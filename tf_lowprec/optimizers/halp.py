"""HALP: bit-centered low-precision SVRG with an integer offset."""

from __future__ import annotations

import functools
import numbers
import random
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tf_lowprec import validation
from tf_lowprec.formats import ScaledInteger
from tf_lowprec.ops.rounding import check_rounding
from tf_lowprec.ops.scaled_integer import scaled_integer_codes
from tf_lowprec.optimizers.learning_rate import LearningRate
from tf_lowprec.optimizers.step_arguments import CurrentLearningRate, Gradient
from tf_lowprec.optimizers.svrg import SVRG
from tf_lowprec.quantizers import Quantizer, QuantizerLike, as_quantizer

_DECAY_ON = ("weights", "offset")


def offset_dtype(bits):
    """Integer dtype that stores a `bits`-bit offset: int8, int16 or int32."""
    if bits <= 8:
        return "int8"
    if bits <= 16:
        return "int16"
    return "int32"


def scale_for(full_gradient_norm, mu, bits):
    """HALP's grid spacing `delta = ||g~|| / (mu * (2^(bits-1) - 1))`."""
    return full_gradient_norm / (mu * (2.0 ** (bits - 1) - 1.0))


@functools.lru_cache(maxsize=None)
def _fused_step(bits, rounding, decay, dtype, code_dtype):
    """The elementwise part of a HALP step as one XLA-fused function.

    Returns `f(codes, center, w, correction, full, delta, lr, wd, seed) ->
    (new_codes, new_w)` for one tensor, with
    `d = correction + full (+ wd * w or wd * z)`, `z = delta * codes` and
    `new_codes = Q((z - lr * d) / delta)`, `new_w = center + new_codes * delta`.
    About thirty elementwise operations (most of them the counter-based
    random numbers) become a single pass over the tensor. XLA may contract
    `center + new * delta` into a fused multiply-add, i.e. round once
    instead of twice: the weights are then the float nearest to the exact
    `w~ + delta * k`.
    """
    dtype = tf.as_dtype(dtype)

    @tf.function(jit_compile=True, autograph=False, reduce_retracing=True)
    def step(codes, center, w, correction, full, delta, lr, wd, seed):
        out_dtype = w.dtype
        delta = tf.cast(delta, dtype)
        z = tf.cast(codes, dtype) * delta
        direction = tf.cast(correction, dtype) + tf.cast(full, dtype)
        if decay == "weights":
            direction = direction + wd * tf.cast(w, dtype)
        elif decay == "offset":
            direction = direction + wd * z
        new = scaled_integer_codes(z - lr * direction, delta, bits, rounding, seed)
        weights = tf.cast(tf.cast(center, dtype) + new * delta, out_dtype)
        return tf.cast(new, code_dtype), weights

    return step


@keras.saving.register_keras_serializable(package="tf_lowprec")
class HALP(SVRG):
    """High-accuracy low-precision training (HALP): bit-centered SVRG.

    HALP runs SVRG, but between snapshots it stores the weights as a full-
    precision center `w~` plus a low-precision offset `z = delta * k`, with
    `k` a `bits`-bit two's-complement integer per weight and `delta` one
    float scale per tensor. At each snapshot the center moves to the current
    weights, the offset restarts at zero, and the scale shrinks with the full
    gradient ("bit centering"), so the fixed number of levels covers a
    smaller and smaller neighbourhood of the optimum and the iterates still
    converge linearly, like full-precision SVRG.

    ```
    every T steps:  w~ = w~ + z ;  g~ = (1/N) sum_j grad f_j(w~)
                    delta_i = ||g~_i|| / (mu * (2^(bits-1) - 1))   per tensor i
                    k = 0
    every step:     w  = w~ + delta * k                       (model weights)
                    d  = grad f_B(w) - grad f_B(w~) + g~ + wd * w
                    k  = clamp(R((delta * k - lr * d) / delta),
                               -2^(bits-1), 2^(bits-1) - 1)
                    w  = w~ + delta * k
    ```

    Notation:
        `R` is stochastic rounding (default) or round-to-nearest, `mu` the
        HALP hyperparameter (larger `mu`: finer grid, smaller range), `i`
        indexes the model's weight tensors; the rest as in `SVRG`.

    Storage: `k` is a real integer variable (`int8` for `bits <= 8`, `int16`
    up to 16, `int32` up to 32), `delta` a scalar per tensor (float32, or float64 where the update is
    computed in float64), `w~`
    and `g~` full precision. The Keras model variable always holds the
    exposed weights `w~ + delta * k`, so evaluation, checkpoints and
    `model.predict` see the HALP iterate.

    Differences from HazyResearch/torchhalp `HALP`, all deliberate:
        * A tensor whose full gradient is zero gets `delta = 0`: its offset
          stays 0 (the grid is one point) until the next snapshot. torchhalp
          divides by zero and produces NaN.
        * `weight_decay` acts on the model weights `w = w~ + z` (the L2
          penalty the user asks for). torchhalp hands `z` to torch's SGD, so
          its decay pulls `z` (not `w`) towards zero, a much weaker
          regulariser; `decay_on="offset"` reproduces that.
        * Stochastic rounding uses `floor(v + u)` with `u` from a counter-
          based hash of (`seed`, step, tensor index) (`stream_seed`): reproducible,
          identical on every replica under `tf.distribute`, and unchanged by
          a checkpoint/resume. `rounding="nearest"` is round-half-to-even
          (torchhalp's `biased=True` rounds halves up; ties have probability
          zero for real data).
        * The full gradient and the snapshot pass are as in `SVRG` (exact
          sample mean; the snapshot pass shares dropout masks and leaves
          batch-norm statistics alone).

    Only the stored offset is low precision: gradients and the update are
    computed in float32 (float64 for float64 models or `bits > 24`), as in
    the reference simulation. Variable constraints are not preserved: the
    weights are recomputed from `w~` and `k` at every step.

    Args:
        learning_rate: A positive float, a
            `keras.optimizers.schedules.LearningRateSchedule`, or a callable
            returning the learning rate. Defaults to `0.01`.
        T: Steps between snapshots (an integer, or a string such as
            `"0.5epoch"`), as in `SVRG`. Defaults to `"1epoch"`.
        mu: Positive scale parameter. The offset can move
            `(2^(bits-1) - 1) * delta = ||g~|| / mu` from the center in each
            direction. In the paper `mu` is the strong-convexity constant of
            the objective, for which `||w~ - w*|| <= ||g~|| / mu`: the
            optimum is then always within range. A larger `mu` gives a finer
            grid but clamps the offset when the optimum is farther away
            (convergence slows to about `1 - lambda_min / mu` per snapshot);
            a smaller one a coarser grid. torchhalp uses 20 on CIFAR-10 and
            4 on linear regression. Defaults to `20.0`.
        bits: Width of the offset codes, an integer in `[2, 32]`.
            Defaults to `8`.
        rounding: `"stochastic"` (unbiased, the paper's choice) or
            `"nearest"`. Defaults to `"stochastic"`.
        seed: Integer seed of the stochastic rounding; `None` draws one from
            Python's `random` (seeded by `keras.utils.set_random_seed`) and
            stores it in the config. Defaults to `None`.
        decay_on: `"weights"` (the model weights `w`) or `"offset"` (the
            offset `z`, torchhalp's behaviour). Defaults to `"weights"`.
        offset_quantizer: Optional `tf_lowprec.quantizers.Quantizer` over a
            `tf_lowprec.formats.ScaledInteger(bits)` format (or the bare
            format, rounded stochastically): the offset grid in one object,
            instead of `bits`/`rounding` (and `seed`, if it has one). The
            scale is HALP's `delta`. Defaults to `None`.

    Base optimizer arguments (keyword arguments of `keras.optimizers.Optimizer`):
        weight_decay: Optional float >= 0: adds `wd * w` (or `wd * z`) to
            the direction. Respects `exclude_from_weight_decay`. Defaults to
            `None`.
        loss_scale_factor: As in Keras (static loss scaling).
        clipnorm, clipvalue, global_clipnorm, gradient_accumulation_steps,
            use_ema: Not supported (`ValueError`).
        name: String, name of the optimizer.

    Stochastic rounding draws from the package's seed-stream rule,
    `tf_lowprec.quantizers.stream_seed(seed, iterations, tensor index, 0)`.

    Example:

    ```python
    model = tf_lowprec.training.VarianceReduced(tf_lowprec.models.cnn())
    model.compile(
        optimizer=tf_lowprec.optimizers.HALP(
            learning_rate=0.05, T="0.5epoch", mu=20, bits=8),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(train_ds, epochs=10, validation_data=test_ds)
    ```

    References:
        - [De Sa, Leszczynski, Zhang, Marzoev, Aberger, Olukotun and Ré,
          "High-Accuracy Low-Precision Training", 2018](
          https://arxiv.org/abs/1803.03383), Algorithm 2.
        - Authors' code: [HazyResearch/torchhalp](
          https://github.com/HazyResearch/torchhalp) (`torchhalp/optim/
          halp.py`, `torchhalp/quantize.py`; numpy reference in
          `test/test_halp.py`).
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        T: int | str = "1epoch",
        mu: float = 20.0,
        bits: int = 8,
        rounding: str = "stochastic",
        seed: int | None = None,
        decay_on: str = "weights",
        offset_quantizer: QuantizerLike | None = None,
        **kwargs: Any,
    ) -> None:
        mu = validation.positive_float(mu, "mu")
        if (
            isinstance(bits, bool)
            or not isinstance(bits, numbers.Integral)
            or not 2 <= bits <= 32
        ):
            raise ValueError(
                "Argument `bits` must be an integer in [2, 32] (HALP needs at "
                f"least one bit besides the sign). Received: bits={bits!r}"
            )
        check_rounding(rounding, "rounding")
        if decay_on not in _DECAY_ON:
            raise ValueError(
                f"Argument `decay_on` must be one of {_DECAY_ON}. "
                f"Received: decay_on={decay_on!r}"
            )
        seed = validation.seed(seed)
        offset_quantizer = as_quantizer(
            offset_quantizer, "offset_quantizer", "stochastic", allowed=(ScaledInteger,)
        )
        if offset_quantizer is not None:
            own = (offset_quantizer.format.bits, offset_quantizer.rounding)
            if (bits, rounding) not in ((8, "stochastic"), own):
                raise ValueError(
                    "Pass the offset grid as `offset_quantizer` or as `bits`/`rounding`, "
                    f"not both. Received: offset_quantizer={offset_quantizer!r}, "
                    f"bits={bits!r}, rounding={rounding!r}"
                )
            bits, rounding = offset_quantizer.format.bits, offset_quantizer.rounding
            if offset_quantizer.seed is not None:
                seed = offset_quantizer.seed
        if seed is None:
            seed = random.randrange(validation.SEED_LIMIT)
        if kwargs.pop("use_ema", False):
            raise ValueError(
                "Argument `use_ema` is not supported by HALP: the weights are "
                "recomputed from the center and the integer offset at every "
                "step. Received: use_ema=True"
            )
        super().__init__(learning_rate=learning_rate, T=T, **kwargs)
        self.mu = float(mu)
        self.offset_quantizer = Quantizer(ScaledInteger(int(bits)), rounding, int(seed))
        self.decay_on = decay_on

    @property
    def bits(self) -> int:
        """Width of the offset codes (`offset_quantizer.format.bits`)."""
        return self.offset_quantizer.format.bits

    @property
    def rounding(self) -> str:
        """Rounding of the offset (`offset_quantizer.rounding`)."""
        return self.offset_quantizer.rounding

    @property
    def seed(self) -> int | None:
        """Stochastic-rounding seed (`offset_quantizer.seed`)."""
        return self.offset_quantizer.seed

    def build(self, var_list: list[keras.Variable]) -> None:
        """Adds one integer offset and one float32 scale per variable.

        The SVRG `snapshot` slots hold the center `w~`.
        """
        if self.built:
            return
        super().build(var_list)
        self._offsets = [
            self.add_variable(
                shape=variable.shape,
                dtype=offset_dtype(self.bits),
                initializer="zeros",
                name=self._slot_name(variable, "offset"),
            )
            for variable in var_list
        ]
        self._scales = [
            self.add_variable(
                shape=(),
                dtype=self._compute_dtype(variable).name,
                initializer="zeros",
                name=self._slot_name(variable, "scale"),
            )
            for variable in var_list
        ]

    @staticmethod
    def _slot_name(variable, prefix):
        path = getattr(variable, "path", variable.name)
        return f"{prefix}_{path.replace('/', '_')}"

    def center(self, variable: keras.Variable) -> keras.Variable:
        """The full-precision center `w~` matching `variable`."""
        return self.snapshot_point(variable)

    def offset(self, variable: keras.Variable) -> keras.Variable:
        """The integer offset codes `k` matching `variable`."""
        return self._offsets[self._get_variable_index(variable)]

    def scale(self, variable: keras.Variable) -> keras.Variable:
        """The per-tensor scale `delta` matching `variable`."""
        return self._scales[self._get_variable_index(variable)]

    def take_snapshot(self, full_gradients: Sequence[tf.Tensor | None]) -> None:
        """Re-centers: `w~ = w`, `g~ = full_gradients`, new `delta`, `k = 0`."""
        super().take_snapshot(full_gradients)
        for full, offset, scale in zip(
            self._full_gradients, self._offsets, self._scales
        ):
            if full is None:
                continue  # `overwrite_with_gradient`: no SVRG state
            norm = tf.norm(tf.cast(tf.convert_to_tensor(full), tf.float64))
            scale.assign(tf.cast(scale_for(norm, self.mu, self.bits), scale.dtype))
            offset.assign(tf.zeros(offset.shape, offset.dtype))

    def _apply_weight_decay(self, variables):
        # Decay enters the direction inside `update_step`, so that the
        # weights stay `w~ + delta * k`.
        return

    def _compute_dtype(self, variable):
        """float64 for float64 variables or codes wider than 24 bits."""
        if tf.as_dtype(variable.dtype) == tf.float64 or self.bits > 24:
            return tf.float64
        return tf.float32

    def update_step(
        self, gradient: Gradient, variable: keras.Variable, learning_rate: CurrentLearningRate
    ) -> None:
        """One bit-centered step: update and re-quantize the offset."""
        index = self._get_variable_index(variable)
        offset = self._offsets[index]
        dtype = self._compute_dtype(variable)
        decay = None
        if self.weight_decay is not None and self._use_weight_decay(variable):
            decay = self.decay_on
        if isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)
        seed = self.offset_quantizer.draw_seed(step=self.iterations, index=index)
        if seed is None:  # nearest rounding: the kernel ignores its seed
            seed = tf.zeros([2], tf.uint32)
        step = _fused_step(self.bits, self.rounding, decay, dtype, offset.dtype)
        codes, weights = step(
            tf.convert_to_tensor(offset),
            tf.convert_to_tensor(self._snapshots[index]),
            tf.convert_to_tensor(variable),
            tf.convert_to_tensor(gradient),
            tf.convert_to_tensor(self._full_gradients[index]),
            tf.convert_to_tensor(self._scales[index]),
            tf.cast(learning_rate, dtype),
            tf.cast(self.weight_decay or 0.0, dtype),
            seed,
        )
        self.assign(offset, codes)
        self.assign(variable, weights)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "mu": self.mu,
                "bits": self.bits,
                "rounding": self.rounding,
                "seed": self.seed,
                "decay_on": self.decay_on,
            }
        )
        return config
