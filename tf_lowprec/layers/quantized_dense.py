"""`QuantizedDense`: a Dense layer with quantized weights, activations and gradients."""

import keras

from tf_lowprec.layers.quantization_options import QuantizationOptions

QUANTIZATION_ARGS_DOC = """
    Quantization points (each a `tf_lowprec.formats` format or `None`):

        x = Q_input(inputs)
        W, b = G(Q_weight(kernel)), G(Q_weight(bias))   # G acts on dL/dW, dL/db
        y = Q_output(activation(op(x, W) + b))
        dL/dy <- Q_error(dL/dy)                          # backward only

    Forward quantizers (`input_format`, `weight_format`, `output_format`)
    round with `rounding` and pass gradients straight through; backward ones
    (`error_format` on the error arriving at the output, `gradient_format` on
    the weight gradients) round with `backward_rounding`. The float weights
    stay the trainable state (quantization-aware training); for SWALP-style
    low-precision weight storage, quantize them in the optimizer instead.

    Args (quantization):
        weight_format: format of the kernel and bias in the forward pass.
        input_format: format of the layer input.
        output_format: format of the output (after the activation).
        error_format: format of the back-propagated error at the output.
        gradient_format: format of the kernel and bias gradients.
        rounding: forward rounding, `"nearest"` or `"stochastic"`.
            Defaults to `"nearest"`.
        backward_rounding: rounding of errors and gradients. Defaults to
            `"stochastic"` (unbiased).
        seed: int or `None`; seeds the layer's `keras.random.SeedGenerator`,
            drawn once per call. Defaults to `None`.

    After `model.quantize("int8")` Keras's own int8 path replaces this
    layer's call (deployment of a quantization-aware trained model).
"""

_FORMAT_NAMES = (
    "input_format",
    "weight_format",
    "output_format",
    "error_format",
    "gradient_format",
)
_BACKWARD = ("error_format", "gradient_format")


def quantized_forward(layer, inputs, op):
    """Runs `op(x, kernel)` + bias + activation between the quantizers."""
    seed = layer._draw_seed()
    x = layer._q(inputs, "input_format", seed)
    kernel = layer._q(layer._q(layer.kernel, "weight_format", seed), "gradient_format", seed)
    y = op(x, kernel)
    if layer.bias is not None:
        bias = layer._q(layer._q(layer.bias, "weight_format", seed), "gradient_format", seed)
        y = keras.ops.add(y, layer.bias_for_output(bias))
    if layer.activation is not None:
        y = layer.activation(y)
    y = layer._q(y, "output_format", seed)
    return layer._q(y, "error_format", seed)


@keras.saving.register_keras_serializable(package="tf_lowprec")
class QuantizedDense(QuantizationOptions, keras.layers.Dense):
    """`keras.layers.Dense` with quantization-aware forward and backward passes.

    Takes every `keras.layers.Dense` argument, plus the quantization
    arguments below; with all formats `None` it computes exactly what Dense
    computes.
    {quantization_args}
    Example:

    ```python
    fx8 = tf_lowprec.formats.FixedPoint(8, 6)
    layer = tf_lowprec.layers.QuantizedDense(
        64, activation="relu", weight_format=fx8, output_format=fx8,
        error_format=tf_lowprec.formats.BlockFloatingPoint(8, axis=None))
    ```

    References:
        Jacob et al., "Quantization and Training of Neural Networks for
        Efficient Integer-Arithmetic-Only Inference", CVPR 2018 (fake
        quantization with straight-through gradients); Yang et al., "SWALP",
        ICML 2019 (quantized errors and gradients).
    """

    def __init__(
        self,
        units,
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
        super().__init__(units, **kwargs)
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
        return bias

    def call(self, inputs, training=None):
        return quantized_forward(self, inputs, keras.ops.matmul)

    def get_config(self):
        config = super().get_config()
        config.update(self._quantization_config())
        return config


QuantizedDense.__doc__ = QuantizedDense.__doc__.replace(
    "{quantization_args}", QUANTIZATION_ARGS_DOC
)
