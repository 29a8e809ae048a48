"""`QuantizedConv2D`: a Conv2D layer with quantized weights, activations and gradients."""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras

from tf_lowprec.layers.quantized_dense import (
    QUANTIZATION_ARGS_DOC,
    QuantizedKernelLayer,
    quantized_forward,
)

if TYPE_CHECKING:
    import tensorflow as tf
    from tensorflow.types.experimental import TensorLike


@keras.saving.register_keras_serializable(package="tf_lowprec")
class QuantizedConv2D(QuantizedKernelLayer, keras.layers.Conv2D):
    """`keras.layers.Conv2D` with quantization-aware forward and backward passes.

    Takes every `keras.layers.Conv2D` argument (`filters`, `kernel_size`
    first), plus the keyword-only quantization arguments below; with all
    quantizers `None` it computes exactly what Conv2D computes. For per-output-channel weight formats use `axis=-1` (kernels
    are `(h, w, in, out)`), e.g. `BlockFloatingPoint(8, axis=-1)`.
    {quantization_args}
    Example:

    ```python
    bfp8 = tf_lowprec.formats.BlockFloatingPoint(8, axis=-1)
    layer = tf_lowprec.layers.QuantizedConv2D(
        32, 3, activation="relu", weight_quantizer=bfp8,
        output_quantizer=tf_lowprec.formats.BlockFloatingPoint(8, axis=None))
    ```
    """

    def bias_for_output(self, bias: TensorLike) -> tf.Tensor:
        if self.data_format == "channels_last":
            shape = (1,) * (self.rank + 1) + (self.filters,)
        else:
            shape = (1, self.filters) + (1,) * self.rank
        return keras.ops.reshape(bias, shape)

    def call(self, inputs: TensorLike, training: bool | None = None) -> tf.Tensor:
        return quantized_forward(self, inputs, self.convolution_op)


QuantizedConv2D.__doc__ = QuantizedConv2D.__doc__.replace(
    "{quantization_args}", QUANTIZATION_ARGS_DOC
)
