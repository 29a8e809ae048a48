"""`QuantizedConv2D`: a Conv2D layer with quantized weights, activations and gradients."""

import keras

from tf_lowprec.layers.quantization_options import QuantizationOptions
from tf_lowprec.layers.quantized_dense import QUANTIZATION_ARGS_DOC
from tf_lowprec.layers.quantized_dense import quantized_forward

_FORMAT_NAMES = (
    "input_format",
    "weight_format",
    "output_format",
    "error_format",
    "gradient_format",
)
_BACKWARD = ("error_format", "gradient_format")


@keras.saving.register_keras_serializable(package="tf_lowprec")
class QuantizedConv2D(QuantizationOptions, keras.layers.Conv2D):
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
        32, 3, activation="relu", weight_format=bfp8,
        output_format=tf_lowprec.formats.BlockFloatingPoint(8, axis=None))
    ```
    """

    def __init__(
        self,
        filters,
        kernel_size,
        *,
        weight_format=None,
        input_format=None,
        output_format=None,
        error_format=None,
        gradient_format=None,
        rounding="nearest",
        backward_rounding="stochastic",
        seed=None,
        **kwargs,
    ):
        super().__init__(filters, kernel_size, **kwargs)
        values = dict(
            input_format=input_format,
            weight_format=weight_format,
            output_format=output_format,
            error_format=error_format,
            gradient_format=gradient_format,
        )
        self._init_quantization(
            {name: values[name] for name in _FORMAT_NAMES},
            rounding,
            backward_rounding,
            seed,
            backward=_BACKWARD,
        )

    def bias_for_output(self, bias):
        if self.data_format == "channels_last":
            shape = (1,) * (self.rank + 1) + (self.filters,)
        else:
            shape = (1, self.filters) + (1,) * self.rank
        return keras.ops.reshape(bias, shape)

    def call(self, inputs, training=None):
        return quantized_forward(self, inputs, self.convolution_op)

    def get_config(self):
        config = super().get_config()
        config.update(self._quantization_config())
        return config


QuantizedConv2D.__doc__ = QuantizedConv2D.__doc__.replace(
    "{quantization_args}", QUANTIZATION_ARGS_DOC
)
