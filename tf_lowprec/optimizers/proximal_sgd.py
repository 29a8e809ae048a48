"""ProximalSGD: forward-backward splitting (FOBOS), TF1 semantics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras

from tf_lowprec.optimizers.elastic_net_proximal import ElasticNetProximal

if TYPE_CHECKING:
    from tf_lowprec.optimizers.learning_rate import LearningRate


@keras.saving.register_keras_serializable(package="tf_lowprec")
class ProximalSGD(ElasticNetProximal):
    """Proximal gradient descent with L1 and L2 penalties (FOBOS).

    A plain gradient step followed by the proximal map of the elastic-net
    penalty `l1 * ||w||_1 + (l2 / 2) * ||w||_2^2`. The L1 part sets small
    weights exactly to zero, so it trains sparse models; unlike adding the
    penalty to the loss, zeros stay zero instead of oscillating around it.
    This is TensorFlow 1's `tf.compat.v1.train.ProximalGradientDescentOptimizer`
    (kernel `ApplyProximalGradientDescent`), rewritten for Keras 3. With
    `l1_regularization_strength=l2_regularization_strength=0` it is exactly
    `keras.optimizers.SGD()` without momentum.

    Update rule for a variable `w` with gradient `g`:

    ```
    p = w - lr * g
    w = sign(p) * max(|p| - lr * l1, 0) / (1 + lr * l2)
    ```

    Notation:

    - `lr` is the learning rate (evaluated at the current step if it is a
      schedule),
    - `l1` is `l1_regularization_strength`,
    - `l2` is `l2_regularization_strength`.

    Sparse gradients (`tf.IndexedSlices`) first sum the rows of duplicate
    indices, then update only the rows they touch; other rows are not
    thresholded (TF1 behaviour).

    Under `tf.distribute` strategies, `clipnorm` / `global_clipnorm` /
    `clipvalue` clip the all-reduced gradient, as on one device
    (`AggregatedClippingMixin`; plain Keras clips per replica).

    Keras's base optimizer keyword arguments (`weight_decay`, `clipnorm`,
    `use_ema`, `name`, ...) are forwarded to `keras.optimizers.Optimizer`.

    Args:
        learning_rate: A float, a
            `keras.optimizers.schedules.LearningRateSchedule` instance, or
            a callable that takes no arguments and returns the actual value to
            use. Must be positive. Defaults to `0.01`.
        l1_regularization_strength: A float >= 0, the L1 penalty strength.
            Defaults to `0.0`.
        l2_regularization_strength: A float >= 0, the L2 penalty strength
            (the penalty is `(l2 / 2) * ||w||^2`). Defaults to `0.0`.

    Example:

    ```python
    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile(optimizer=ProximalSGD(0.1, l1_regularization_strength=1e-3), loss="mse")
    model.fit(x, y, epochs=2)  # small weights end exactly at zero
    ```

    References:

    - [Duchi & Singer, 2009](
        https://jmlr.org/papers/v10/duchi09a.html), "Efficient online and
        batch learning using forward backward splitting" (FOBOS).
    - [TensorFlow 1 implementation](
        https://github.com/tensorflow/tensorflow/blob/master/tensorflow/python/training/proximal_gradient_descent.py)
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        l1_regularization_strength: float = 0.0,
        l2_regularization_strength: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate, l1_regularization_strength, l2_regularization_strength, **kwargs
        )
