"""`Int8Concatenate`: concatenation whose inputs and output share one int8 grid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras

from tf_lowprec.layers.int8.activation_quantizer import ActivationQuantizer

if TYPE_CHECKING:
    import tensorflow as tf
    from tensorflow.types.experimental import TensorLike


@keras.saving.register_keras_serializable(package="tf_lowprec")
class Int8Concatenate(keras.layers.Concatenate):
    """`keras.layers.Concatenate` for int8: every input on the output's grid.

    TFLite's int8 CONCATENATION copies bytes, so its inputs and output share
    one scale and zero point. One `ActivationQuantizer` learns the range of
    the concatenated tensor (moving averages of its batch min/max), and each
    input is fake-quantized to that range before concatenating. The layers
    feeding it skip their own output quantization when the concatenation is
    their only reader (`Int8Fused(quantize_output=False)`, as TFMOT does),
    so each kernel writes straight onto the shared grid, which is what the
    converter makes of it: equal input and output scales, no requantization.

    The converter does not requantize a FakeQuant that follows another
    FakeQuant, nor push a grid into max pooling/Flatten/Reshape (their input
    and output grids must match): an input coming straight from such a
    grid-preserving layer, or from a layer with other readers, makes the
    export fail with a "same scale constraint" error.

    Args:
        axis: concatenation axis.
        ema_decay: decay of the range's moving averages.
        **kwargs: base layer arguments.
    """

    def __init__(self, axis: int = -1, ema_decay: float = 0.999, **kwargs: Any) -> None:
        super().__init__(axis=axis, **kwargs)
        self.ema_decay = ema_decay
        self.output_quantizer = ActivationQuantizer(ema_decay, name="output_quantizer")

    def build(self, input_shape: Sequence[tuple[int | None, ...]]) -> None:
        super().build(input_shape)
        self.output_quantizer.build(self.compute_output_shape(input_shape))

    def call(self, inputs: Sequence[TensorLike], training: bool | None = None) -> tf.Tensor:
        if training:
            self.output_quantizer.update(super().call(inputs))
        return super().call([self.output_quantizer.fake_quantize(x) for x in inputs])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ema_decay": self.ema_decay}
