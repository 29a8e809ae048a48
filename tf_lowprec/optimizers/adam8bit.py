"""Adam8bit and AdamW8bit: Keras Adam/AdamW with block-wise 8-bit moments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from tf_lowprec import validation
from tf_lowprec.optimizers.blockwise_states import BlockwiseStates
from tf_lowprec.optimizers.inner_optimizer import Untracked
from tf_lowprec.optimizers.step_arguments import CurrentLearningRate, Gradient

if TYPE_CHECKING:
    from tf_lowprec.optimizers.learning_rate import LearningRate


@keras.saving.register_keras_serializable(package="tf_lowprec")
class Adam8bit(BlockwiseStates, keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose moments are stored in 8 bits per entry.

    The update is Keras Adam's, in float32 (`t` the step from 1, `eta` the
    learning rate):

    ```
    m = m + (1 - beta_1) * (g - m)
    v = v + (1 - beta_2) * (g^2 - v)
    (amsgrad: v_hat = max(v_hat, v); v = v_hat)
    w = w - eta * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)
    ```

    with `m` stored as signed and `v` (and `v_hat`) as unsigned block-wise
    dynamic 8-bit codes (the unsigned table spends the sign bit on one more
    fraction bit), one float32 scale per `block_size` entries each
    (`tf_lowprec.ops.blockwise`): 2 bytes per parameter plus
    `8 / block_size` (2.03 at 256; float32 Adam: 8). Each step dequantizes
    the moments, applies the rule and requantizes them inside one
    XLA-compiled kernel per variable
    (`tf_lowprec.optimizers.blockwise_states`). Variables with fewer than
    `min_8bit_size` entries (biases, normalization parameters) keep float32
    moments, as in bitsandbytes.

    Accuracy: the stored moments carry at most 0.7% (`m`) / 0.35% (`v`) of
    their block maximum in error per step (relative error bounds per
    magnitude in `tf_lowprec.ops.blockwise`); the paper reports parity with
    32-bit Adam across language and vision benchmarks, and
    `examples/low_precision_memory` measures it here.

    The base optimizer keyword arguments (`weight_decay`, clipping, EMA,
    `loss_scale_factor`, `gradient_accumulation_steps`) are as for
    `keras.optimizers.Adam`; `name` defaults to `"adam8bit"`, numbered like
    Keras's names (`adam8bit_1`, ...).

    Args:
        learning_rate: as for `keras.optimizers.Adam`. Defaults to `0.001`.
        beta_1: float in `[0, 1)`. Defaults to `0.9`.
        beta_2: float in `[0, 1)`. Defaults to `0.999`.
        epsilon: positive float. Defaults to `1e-7`.
        amsgrad: bool. Defaults to `False`.
        block_size: positive int, entries per float32 scale. Defaults to 256.
        min_8bit_size: int >= 0; variables with fewer entries keep float32
            moments. Defaults to 4096 (bitsandbytes' default).

    Reference:
        Dettmers, Lewis, Shleifer, Zettlemoyer, "8-bit Optimizers via
        Block-wise Quantization", ICLR 2022 (https://arxiv.org/abs/2110.02861).
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        block_size: int = 256,
        min_8bit_size: int = 4096,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate,
            beta_1=validation.float_in_range(beta_1, "beta_1", 0.0, 1.0, high_open=True),
            beta_2=validation.float_in_range(beta_2, "beta_2", 0.0, 1.0, high_open=True),
            epsilon=validation.positive_float(epsilon, "epsilon"),
            amsgrad=validation.boolean(amsgrad, "amsgrad"),
            block_size=block_size,
            min_8bit_size=min_8bit_size,
            **kwargs,
        )

    def build(self, var_list: list[keras.Variable]) -> None:
        if self.built:
            return
        self._check_variables(var_list)
        super(keras.optimizers.Adam, self).build(var_list)  # not Adam's slots
        states = []
        for variable in var_list:
            slots = [
                self._add_state(variable, "momentum", signed=True),
                self._add_state(variable, "velocity", signed=False),
            ]
            if self.amsgrad:
                slots.append(self._add_state(variable, "velocity_hat", signed=False))
            states.append(slots)
        self._states = Untracked(per_variable=states)

    def update_step(
        self, gradient: Gradient, variable: keras.Variable, learning_rate: CurrentLearningRate
    ) -> None:
        states = self._states.per_variable[self._get_variable_index(variable)]
        scalars = [
            learning_rate,
            tf.cast(self.iterations + 1, tf.float32),
            self.beta_1,
            self.beta_2,
            self.epsilon,
        ]
        self._fused_update(variable, gradient, self._rule, states, scalars)

    def _rule(self, gradient, weight, scalars, states):
        learning_rate, step, beta_1, beta_2, epsilon = scalars
        alpha = (
            learning_rate
            * tf.sqrt(1 - tf.pow(beta_2, step))
            / (1 - tf.pow(beta_1, step))
        )
        m = states[0] + (gradient - states[0]) * (1 - beta_1)
        v = states[1] + (tf.square(gradient) - states[1]) * (1 - beta_2)
        new_states = [m, v]
        if self.amsgrad:
            v = tf.maximum(states[2], v)
            new_states.append(v)
        return -(m * alpha) / (tf.sqrt(v) + epsilon), new_states

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._blockwise_config()}


@keras.saving.register_keras_serializable(package="tf_lowprec")
class AdamW8bit(Adam8bit):
    """`keras.optimizers.AdamW` with 8-bit moments (see `Adam8bit`).

    Decoupled weight decay, as Keras applies it before the Adam step:
    `w = w - eta * weight_decay * w` (on the variable; it touches no state).

    Every other argument (`beta_1`, ..., `block_size`, `min_8bit_size`, the
    base optimizer keyword arguments) is as for `Adam8bit`; `name` defaults
    to `"adam_w8bit"` (numbered: `adam_w8bit_1`, ...).

    Args:
        learning_rate: as for `keras.optimizers.AdamW`. Defaults to `0.001`.
        weight_decay: float, defaults to 0.004 (Keras AdamW's default).
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        weight_decay: float = 0.004,
        **kwargs: Any,
    ) -> None:
        if weight_decay is None:
            raise ValueError(
                "Argument `weight_decay` must be a float. Received: weight_decay=None"
            )
        # beta_1, beta_2, epsilon, amsgrad, block_size, min_8bit_size and the
        # base arguments: `Adam8bit`'s.
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)
