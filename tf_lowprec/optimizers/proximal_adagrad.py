"""ProximalAdagrad: FOBOS with Adagrad step sizes, TF1 semantics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
from keras import ops

from tf_lowprec import validation
from tf_lowprec.optimizers.elastic_net_proximal import ElasticNetProximal

if TYPE_CHECKING:
    from tf_lowprec.optimizers.learning_rate import LearningRate


@keras.saving.register_keras_serializable(package="tf_lowprec")
class ProximalAdagrad(ElasticNetProximal):
    """Adagrad followed by the elastic-net proximal map (FOBOS-Adagrad).

    Each coordinate takes an Adagrad step with its own step size
    `eta = lr / sqrt(accumulator)`, then the proximal map of
    `l1 * ||w||_1 + (l2 / 2) * ||w||_2^2` scaled by that same `eta`. The L1
    part sets small weights exactly to zero. This is TensorFlow 1's
    `tf.compat.v1.train.ProximalAdagradOptimizer` (kernel
    `ApplyProximalAdagrad`), rewritten for Keras 3. As in TF1 there is **no
    epsilon**: the accumulator starts at `initial_accumulator_value > 0`, which
    keeps `1 / sqrt(accumulator)` finite. With no regularization it equals
    `keras.optimizers.Adagrad(epsilon=0)` up to float round-off (the order
    of the multiply and divide differs). It matches TF's kernel to float32
    round-off; the kernel's vectorized `rsqrt` is replaced by `lr / sqrt`,
    which is bit-reproducible on every replica.

    Update rule for a variable `w` with gradient `g`:

    ```
    acc = acc + g^2
    eta = lr / sqrt(acc)
    p   = w - eta * g
    w   = sign(p) * max(|p| - eta * l1, 0) / (1 + eta * l2)
    ```

    Notation:

    - `acc` is the per-coordinate accumulator slot, initialised to
      `initial_accumulator_value`,
    - `lr` is the learning rate (evaluated at the current step if it is a
      schedule),
    - `l1` is `l1_regularization_strength`,
    - `l2` is `l2_regularization_strength`.

    Sparse gradients (`tf.IndexedSlices`) first sum the rows of duplicate
    indices, then update only the rows they touch, in both the variable and
    the accumulator (TF1 behaviour).

    Under `tf.distribute` strategies, `clipnorm` / `global_clipnorm` /
    `clipvalue` clip the all-reduced gradient, as on one device
    (`AggregatedClippingMixin`; plain Keras clips per replica).

    Keras's base optimizer keyword arguments (`weight_decay`, `clipnorm`,
    `use_ema`, `name`, ...) are forwarded to `keras.optimizers.Optimizer`.

    Args:
        learning_rate: A float, a
            `keras.optimizers.schedules.LearningRateSchedule` instance, or
            a callable that takes no arguments and returns the actual value to
            use. Must be positive. Defaults to `0.001`.
        initial_accumulator_value: A float > 0, the starting value of the
            accumulator. Defaults to `0.1`.
        l1_regularization_strength: A float >= 0, the L1 penalty strength.
            Defaults to `0.0`.
        l2_regularization_strength: A float >= 0, the L2 penalty strength
            (the penalty is `(l2 / 2) * ||w||^2`). Defaults to `0.0`.

    Example:

    A sparse embedding, where the per-row step sizes and the row-wise
    updates of sparse gradients matter most:

    ```python
    tokens = keras.Input((20,), dtype="int32")
    embedded = keras.layers.Embedding(50_000, 32)(tokens)
    pooled = keras.layers.GlobalAveragePooling1D()(embedded)
    model = keras.Model(tokens, keras.layers.Dense(1)(pooled))
    model.compile(optimizer=ProximalAdagrad(0.1, l1_regularization_strength=1e-3), loss="mse")
    model.fit(token_ids, y, epochs=2)
    ```

    References:

    - [Duchi & Singer, 2009](
        https://jmlr.org/papers/v10/duchi09a.html), "Efficient online and
        batch learning using forward backward splitting" (FOBOS).
    - [Duchi, Hazan & Singer, 2011](
        https://jmlr.org/papers/v12/duchi11a.html), "Adaptive subgradient
        methods for online learning and stochastic optimization" (Adagrad).
    - [TensorFlow 1 implementation](
        https://github.com/tensorflow/tensorflow/blob/master/tensorflow/python/training/proximal_adagrad.py)
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        initial_accumulator_value: float = 0.1,
        l1_regularization_strength: float = 0.0,
        l2_regularization_strength: float = 0.0,
        **kwargs: Any,
    ) -> None:
        # > 0: there is no epsilon in the denominator.
        initial_accumulator_value = validation.positive_float(
            initial_accumulator_value, "initial_accumulator_value"
        )
        super().__init__(
            learning_rate, l1_regularization_strength, l2_regularization_strength, **kwargs
        )
        self.initial_accumulator_value = initial_accumulator_value

    def build(self, var_list: list[keras.Variable]) -> None:
        """Creates one `accumulator` slot per variable.

        Args:
            var_list: list of model variables to build slots for.
        """
        if self.built:
            return
        super().build(var_list)
        self._accumulators = self.add_optimizer_variables(
            var_list,
            "accumulator",
            initializer=self._fill_initial_accumulator,
        )

    def _fill_initial_accumulator(self, shape, dtype=None):
        # `ops.full` converts the value straight to `dtype`; the built-in
        # `Constant` initializer would round it through float32 first.
        return ops.full(shape, self.initial_accumulator_value, dtype=dtype)

    def _slots(self, variable):
        return [self._accumulators[self._get_variable_index(variable)]]

    def _step_size(self, lr, g, values):
        """Adagrad: `acc + g^2` (the new accumulator) and `eta = lr / sqrt(acc)`."""
        acc = ops.add(values[0], ops.square(g))
        # lr / sqrt(acc), not TF's lr * rsqrt(acc): sqrt and divide are
        # correctly rounded, while Eigen's vectorized rsqrt is not and its
        # scalar tail differs, so MirroredStrategy replicas drifted apart.
        return ops.divide(lr, ops.sqrt(acc)), [acc]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["initial_accumulator_value"] = self.initial_accumulator_value
        return config
