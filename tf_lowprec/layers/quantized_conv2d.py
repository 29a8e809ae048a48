"""`QuantizedConv2D`: a Conv2D layer with quantized weights, activations and gradients."""

import keras

from tf_lowprec.layers.quantization_options import pop_format_aliases
from tf_lowprec.layers.quantized_dense import POINTS
from tf_lowprec.layers.quantized_dense import QUANTIZATION_ARGS_DOC
from tf_lowprec.layers.quantized_dense import QuantizedKernelLayer
from tf_lowprec.layers.quantized_dense import quantized_forward


@keras.saving.register_keras_serializable(package="tf_lowprec")
class QuantizedConv2D(QuantizedKernelLayer, keras.layers.Conv2D):
    """`keras.layers.Conv2D` with quantization-aware forward and backward passes.

    Takes every `keras.layers.Conv2D` argument, plus the quantization
    arguments below; with all formats `None` it computes exactly what Conv2D
    computes. For per-output-channel weight formats use `axis=-1` (kernels
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

    def __init__(
        self,
        filters,
        kernel_size,
        *,
        weight_quantizer=None,
        input_quantizer=None,
        output_quantizer=None,
        error_quantizer=None,
        gradient_quantizer=None,
        rounding="nearest",
        backward_rounding="stochastic",
        seed=None,
        **kwargs,
    ):
        aliases = pop_format_aliases(kwargs, POINTS)
        super().__init__(filters, kernel_size, **kwargs)
        values = dict(input=input_quantizer, weight=weight_quantizer, output=output_quantizer,
                      error=error_quantizer, gradient=gradient_quantizer)  # fmt: skip
        self._init_points(values, aliases, rounding, backward_rounding, seed)

    def bias_for_output(self, bias):
        if self.data_format == "channels_last":
            shape = (1,) * (self.rank + 1) + (self.filters,)
        else:
            shape = (1, self.filters) + (1,) * self.rank
        return keras.ops.reshape(bias, shape)

    def call(self, inputs, training=None):
        return quantized_forward(self, inputs, self.convolution_op)


QuantizedConv2D.__doc__ = QuantizedConv2D.__doc__.replace(
    "{quantization_args}", QUANTIZATION_ARGS_DOC
)
