"""SGD8bit: Keras SGD with its momentum stored in block-wise 8 bits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras

from tf_lowprec import validation
from tf_lowprec.optimizers.blockwise_states import BlockwiseStates
from tf_lowprec.optimizers.inner_optimizer import Untracked
from tf_lowprec.optimizers.step_arguments import CurrentLearningRate, Gradient

if TYPE_CHECKING:
    from tf_lowprec.optimizers.learning_rate import LearningRate


@keras.saving.register_keras_serializable(package="tf_lowprec")
class SGD8bit(BlockwiseStates, keras.optimizers.SGD):
    """`keras.optimizers.SGD` whose momentum is stored in 8 bits per entry.

    The update is Keras SGD's, in float32 (`v`: the velocity, `g`: the
    gradient, `eta`: the learning rate, `mu`: the momentum):

    ```
    v = mu * v - eta * g
    w = w + v                        (nesterov: w = w + mu * v - eta * g)
    ```

    with `v` stored as signed block-wise dynamic 8-bit codes and one float32
    scale per `block_size` entries (`tf_lowprec.ops.blockwise`): one byte
    per parameter plus `4 / block_size` (1.016 bytes at 256, float32 SGD
    with momentum: 4). Each step dequantizes `v`, applies the rule and
    requantizes it inside one XLA-compiled kernel per variable
    (`tf_lowprec.optimizers.blockwise_states`). Variables with fewer than
    `min_8bit_size` entries (biases, normalization parameters) keep a
    float32 velocity, as in bitsandbytes. With `momentum=0` (the Keras
    default, kept for drop-in use) there is no state at all and this is
    Keras SGD.

    `learning_rate`, `momentum`, `nesterov` and the base optimizer keyword
    arguments (`weight_decay`, clipping, EMA, `loss_scale_factor`,
    `gradient_accumulation_steps`) are as for `keras.optimizers.SGD`;
    `name` defaults to `"sgd8bit"`, numbered like Keras's names (`sgd8bit_1`, ...).

    Args:
        learning_rate: as for `keras.optimizers.SGD`. Defaults to `0.01`.
        momentum: float in `[0, 1]`, as for `keras.optimizers.SGD`.
            Defaults to `0.0`.
        nesterov: bool, as for `keras.optimizers.SGD`. Defaults to `False`.
        block_size: positive int, entries per float32 scale. Defaults to 256.
        min_8bit_size: int >= 0; variables with fewer entries keep a float32
            state. Defaults to 4096 (bitsandbytes' default).

    Reference:
        Dettmers, Lewis, Shleifer, Zettlemoyer, "8-bit Optimizers via
        Block-wise Quantization", ICLR 2022 (https://arxiv.org/abs/2110.02861).
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        block_size: int = 256,
        min_8bit_size: int = 4096,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate,
            momentum=validation.float_in_range(momentum, "momentum", 0.0, 1.0),
            nesterov=validation.boolean(nesterov, "nesterov"),
            block_size=block_size,
            min_8bit_size=min_8bit_size,
            **kwargs,
        )

    def build(self, variables: list[keras.Variable]) -> None:
        if self.built:
            return
        self._check_variables(variables)
        super(keras.optimizers.SGD, self).build(variables)  # not SGD's slots
        self.momentums = []
        states = []
        if self.momentum != 0:
            states = [self._add_state(v, "momentum", signed=True) for v in variables]
        self._states = Untracked(per_variable=states)

    def update_step(
        self, gradient: Gradient, variable: keras.Variable, learning_rate: CurrentLearningRate
    ) -> None:
        if self.momentum == 0:
            super().update_step(gradient, variable, learning_rate)
            return
        state = self._states.per_variable[self._get_variable_index(variable)]
        self._fused_update(
            variable, gradient, self._rule, [state], [learning_rate, self.momentum]
        )

    def _rule(self, gradient, weight, scalars, states):
        learning_rate, momentum = scalars
        velocity = states[0] * momentum - gradient * learning_rate
        if self.nesterov:
            return velocity * momentum - gradient * learning_rate, [velocity]
        return velocity, [velocity]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._blockwise_config()}
