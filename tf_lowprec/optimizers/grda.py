"""gRDA: generalized regularized dual averaging (directional pruning)."""

from __future__ import annotations

import warnings
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from tf_lowprec import validation
from tf_lowprec.ops.prox import soft_threshold
from tf_lowprec.optimizers.aggregated_clipping import AggregatedClippingMixin
from tf_lowprec.optimizers.learning_rate import LearningRate
from tf_lowprec.optimizers.slots import add_copy_slots
from tf_lowprec.optimizers.step_arguments import CurrentLearningRate, Gradient


@tf.function(jit_compile=True, autograph=False)
def _dual_average_and_threshold(accumulator, variable, gradient, lr, threshold):
    """`acc -= lr * g; w = S_thr(acc)`, fused by XLA into one in-place pass.

    Takes resource handles, which under `tf.distribute` resolve to the local
    replica's component inside `Strategy.extended.update`.
    """
    acc = tf.raw_ops.ReadVariableOp(resource=accumulator, dtype=gradient.dtype)
    acc = acc - lr * gradient
    tf.raw_ops.AssignVariableOp(resource=accumulator, value=acc)
    tf.raw_ops.AssignVariableOp(
        resource=variable, value=soft_threshold(acc, threshold)
    )


@tf.function(jit_compile=True, autograph=False)
def _threshold(accumulator, variable, threshold, dtype):
    """`w = S_thr(acc)` in one pass (the dense half of a sparse update)."""
    acc = tf.raw_ops.ReadVariableOp(resource=accumulator, dtype=dtype)
    tf.raw_ops.AssignVariableOp(
        resource=variable, value=soft_threshold(acc, threshold)
    )


def _to_preimage(accumulator, average, threshold):
    value = tf.convert_to_tensor(average)
    thr = tf.cast(threshold, value.dtype)
    return accumulator.assign(value + thr * tf.sign(value))


def _handle(variable):
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle


@keras.saving.register_keras_serializable(package="tf_lowprec")
class GRDA(AggregatedClippingMixin, keras.optimizers.Optimizer):
    """Generalized regularized dual averaging (gRDA) with directional pruning.

    gRDA runs SGD on a dual accumulator that starts at the initial weights,
    and exposes as model weights the soft-thresholded accumulator. The
    threshold grows slowly with the step count, so weights whose accumulated
    gradient signal stays small are set to exactly zero: training itself
    prunes the network, in the direction the paper calls "directional
    pruning", with no separate pruning or retraining phase.

    Update rule for step `n = 1, 2, ...` (with `acc_0 = w_0`, `thr_0 = 0`):

    ```
    acc_n = acc_{n-1} - lr_n * g_n
    thr_n = thr_{n-1} + c * lr_n^(mu + 1/2) * (n^mu - (n - 1)^mu)
    w_n   = sign(acc_n) * max(|acc_n| - thr_n, 0)
    ```

    For a constant learning rate the threshold telescopes to the paper's
    `c * lr^(1/2) * (n * lr)^mu`; accumulating the increments with the
    learning rate in force at each step (the authors' PyTorch/TF1 form) makes
    learning-rate schedules and callables meaningful: after a drop the
    threshold keeps its value and grows more slowly. The threshold is one
    scalar per optimizer step, shared by every variable. With `c = 0`, gRDA
    is plain SGD without momentum.

    Notation:
        `g_n` is the (aggregated, clipped) gradient at `w_{n-1}`, `lr_n` the
        learning rate of step `n`, `acc` the dual accumulator (one slot per
        variable, initialised to the variable's value when the optimizer is
        built), `thr` the shared soft threshold.

    Implementation notes:
        * The dense update runs as one XLA-fused pass per variable; `acc -
          lr * g` is then evaluated with a fused multiply-add (a single
          rounding), so `GRDA(c=0)` matches `keras.optimizers.SGD` to within
          one float32 ulp per step rather than bit for bit (bit for bit
          under `jit_compile=True`, where XLA fuses SGD the same way).
        * Sparse gradients (`tf.IndexedSlices`, e.g. from `Embedding`) are
          scattered into the accumulator (duplicate indices add up), and the
          threshold is then applied to the whole variable. This is exactly the
          dense algorithm: rows absent from the batch have a zero gradient,
          their accumulator is unchanged, but the grown threshold still
          applies to them. The update therefore costs O(variable size).
        * Variables that receive no gradient in a step are left untouched that
          step; the shared threshold still advances.
        * The step counter is converted to float32 for `n^mu`, exact up to
          2^24 steps, like the reference implementations.

    Args:
        learning_rate: A positive float, a
            `keras.optimizers.schedules.LearningRateSchedule`, or a callable
            that takes no arguments and returns the learning rate. Use the
            learning rate that works for plain SGD without momentum. Defaults
            to `0.01`.
        c: Non-negative scale of the soft threshold; `0` gives plain SGD. The
            authors recommend `0 < c <= 0.005`: fix `mu`, then take the
            largest `c` that keeps accuracy over the first epochs. Defaults
            to `0.0`.
        mu: Positive growth exponent of the threshold; the paper's theory
            needs `0.5 < mu < 1` (a warning is issued outside that range).
            Larger `mu` prunes more. Defaults to `0.7`.

    Base optimizer arguments (keyword arguments of `keras.optimizers.Optimizer`):
        weight_decay: Not supported: gRDA recomputes the weights from the
            accumulator every step, so decoupled weight decay would have no
            effect. The soft threshold is gRDA's regulariser. Must be `None`.
        clipnorm, clipvalue, global_clipnorm: Supported; clip the gradient
            before it enters the accumulator. Under `tf.distribute` the
            all-reduced gradient is clipped, as on one device
            (`AggregatedClippingMixin`).
        use_ema, ema_momentum, ema_overwrite_frequency: Supported, but the
            moving average of sparse iterates is not sparse. An overwrite
            with the average also moves the accumulator to a point that
            thresholds to it, so training continues from the average.
        overwrite_with_gradient: Variables flagged so (float8 scales and
            amax histories after `model.quantize("float8")`) get no
            accumulator and are overwritten with their gradient, as in Keras.
        loss_scale_factor: Supported; also works inside
            `keras.optimizers.LossScaleOptimizer` for mixed precision.
        gradient_accumulation_steps: Supported; `n` counts real updates.
        name: String, name of the optimizer; `None` gives the snake-case
            class name, numbered from the second instance on (`grda`,
            `grda_1`), as Keras names its own optimizers.

    Example:

    ```python
    model.compile(
        optimizer=tf_lowprec.optimizers.GRDA(learning_rate=0.1, c=0.005, mu=0.55),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, epochs=5, callbacks=[tf_lowprec.pruning.SparsityLogger()])
    ```

    References:
        - [Chao, Wang, Xing and Cheng, "Directional Pruning of Deep Neural
          Networks", NeurIPS 2020](https://arxiv.org/abs/2006.09358).
        - [Chao and Cheng, "A generalization of regularized dual averaging
          and its dynamics", 2019](https://arxiv.org/abs/1909.10072).
        - [Authors' implementations](https://github.com/donlan2710/gRDA-Optimizer)
          (`grda_pytorch.py`, `grda_tensorflow.py`).
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        c: float = 0.0,
        mu: float = 0.7,
        **kwargs: Any,
    ) -> None:
        learning_rate = validation.learning_rate(learning_rate)
        c = validation.non_negative_float(c, "c")
        mu = validation.positive_float(mu, "mu")
        weight_decay = kwargs.pop("weight_decay", None)
        validation.optimizer_common_args(**kwargs)
        if not 0.5 < mu < 1:
            warnings.warn(
                f"GRDA: mu={mu} is outside the range 0.5 < mu < 1 for which "
                "the gRDA paper proves directional pruning; the authors use "
                "mu in {0.501, 0.51, 0.55, 0.6, 0.7}.",
                stacklevel=2,
            )
        if weight_decay is not None:
            raise ValueError(
                "GRDA does not support `weight_decay`: the weights are "
                "recomputed from the dual accumulator every step, so decay "
                "would have no effect (use `c` and `mu` to regularise). "
                f"Received: weight_decay={weight_decay}"
            )
        super().__init__(learning_rate=learning_rate, weight_decay=None, **kwargs)
        self.c = float(c)
        self.mu = float(mu)

    def build(self, var_list: list[keras.Variable]) -> None:
        """Creates the shared threshold and one accumulator per variable."""
        if self.built:
            return
        super().build(var_list)
        # Updated once per step, in replica context, like `iterations`.
        self._threshold = self.add_variable(
            shape=(),
            dtype="float32",
            initializer="zeros",
            aggregation="only_first_replica",
            name="threshold",
        )
        # The accumulator starts at the weights, also when `build` runs in
        # the traced train function of a model built there (`slots`).
        self._accumulators = add_copy_slots(self, var_list, "accumulator")

    def _overwrite_model_variables_with_average_value(self, trainable_variables):
        """EMA overwrite (`ema_overwrite_frequency`, end of `fit`) that lasts.

        gRDA recomputes the weights from the accumulator at every step, so an
        overwrite of the weights alone would be undone by the next step. The
        accumulator is moved to the preimage of the average nearest to it,
        `acc = avg + thr * sign(avg)`, for which `S_thr(acc) = avg`; training
        then continues from the averaged weights.
        """
        super()._overwrite_model_variables_with_average_value(trainable_variables)
        for variable, average in zip(
            trainable_variables, self._model_variables_moving_average
        ):
            if average is None:
                continue
            accumulator = self._accumulators[self._get_variable_index(variable)]
            self._distribution_strategy.extended.update(
                accumulator.value, _to_preimage, args=(average.value, self._threshold.value)
            )

    @property
    def threshold(self) -> keras.Variable:
        """The current soft threshold `thr_n` (a float32 scalar variable)."""
        return self._threshold

    def _threshold_increment(self, learning_rate):
        """`c * lr^(mu + 1/2) * (n^mu - (n - 1)^mu)` for the coming step."""
        n = ops.cast(self.iterations + 1, "float32")
        lr = ops.cast(learning_rate, "float32")
        growth = ops.power(n, self.mu) - ops.power(n - 1.0, self.mu)
        return self.c * ops.power(lr, self.mu + 0.5) * growth

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # Runs once per real update (after clipping and loss-scale checks,
        # inside the gradient-accumulation branch), before the per-variable
        # updates, so `update_step` reads `thr_n`.
        self._threshold.assign_add(self._threshold_increment(learning_rate))
        super()._backend_update_step(grads, trainable_variables, learning_rate)

    def update_step(
        self, gradient: Gradient, variable: keras.Variable, learning_rate: CurrentLearningRate
    ) -> None:
        """Accumulates `-lr * g` and soft-thresholds into `variable`."""
        accumulator = self._accumulators[self._get_variable_index(variable)]
        lr = ops.cast(learning_rate, variable.dtype)
        threshold = ops.cast(self._threshold, variable.dtype)
        if isinstance(gradient, tf.IndexedSlices):
            self.assign_sub(accumulator, ops.multiply(gradient, lr))
            _threshold(
                _handle(accumulator), _handle(variable), threshold, variable.dtype
            )
        else:
            _dual_average_and_threshold(
                _handle(accumulator),
                _handle(variable),
                ops.cast(gradient, variable.dtype),
                lr,
                threshold,
            )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"c": self.c, "mu": self.mu})
        return config

