"""`QuantizedDense`: a Dense layer with quantized weights, activations and gradients."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import keras

from tf_lowprec.layers.quantization_options import (
    QuantizationOptions,
    format_alias,
    pop_format_aliases,
)
from tf_lowprec.quantizers import QuantizerLike

if TYPE_CHECKING:
    import tensorflow as tf
    from tensorflow.types.experimental import TensorLike

QUANTIZATION_ARGS_DOC = """
    Quantization points (each a `tf_lowprec.quantizers.Quantizer` or `None`):

        x = Q_input(inputs)
        W, b = G(Q_weight(kernel)), G(Q_weight(bias))   # G acts on dL/dW, dL/db
        y = Q_output(activation(op(x, W) + b))
        dL/dy <- Q_error(dL/dy)                          # backward only

    Forward quantizers (`input_quantizer`, `weight_quantizer`,
    `output_quantizer`) pass gradients straight through; backward ones
    (`error_quantizer` on the error arriving at the output,
    `gradient_quantizer` on the weight gradients) act on gradients. The
    float weights stay the trainable state (quantization-aware training);
    for SWALP-style low-precision weight storage, quantize them in the
    optimizer instead.

    Args (quantization):
        weight_quantizer: quantizer of the kernel and bias in the forward pass.
        input_quantizer: quantizer of the layer input.
        output_quantizer: quantizer of the output (after the activation).
        error_quantizer: quantizer of the back-propagated error at the output.
        gradient_quantizer: quantizer of the kernel and bias gradients.
        rounding: rounding of a bare format given to a forward point,
            `"nearest"` or `"stochastic"`. Defaults to `"nearest"`.
        backward_rounding: rounding of a bare format given to a backward
            point. Defaults to `"stochastic"` (unbiased).
        seed: int or `None`; seeds the layer's `keras.random.SeedGenerator`,
            drawn once per call (its state is saved with the layer).
            Defaults to `None`.
        weight_format, input_format, output_format, error_format,
            gradient_format: deprecated aliases of the quantizer arguments
            (a format, rounded with `rounding` / `backward_rounding`).

    After `model.quantize("int8")` Keras's own int8 path replaces this
    layer's call (deployment of a quantization-aware trained model).
"""

# Quantization points in stream order (see `QuantizationOptions`).
POINTS = ("input", "weight", "output", "error", "gradient")
BACKWARD_POINTS = ("error", "gradient")


def quantized_forward(
    layer: keras.layers.Layer,
    inputs: TensorLike,
    op: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
) -> tf.Tensor:
    """Runs `op(x, kernel)` + bias + activation between the quantizers."""
    seed = layer._draw_seed()
    x = layer._q(inputs, "input", seed)
    kernel = layer._q(layer._q(layer.kernel, "weight", seed), "gradient", seed)
    y = op(x, kernel)
    if layer.bias is not None:
        bias = layer._q(layer._q(layer.bias, "weight", seed), "gradient", seed)
        y = keras.ops.add(y, layer.bias_for_output(bias))
    if layer.activation is not None:
        y = layer.activation(y)
    y = layer._q(y, "output", seed)
    return layer._q(y, "error", seed)


class QuantizedKernelLayer(QuantizationOptions):
    """Mixin of `QuantizedDense` / `QuantizedConv2D`: points, aliases, config."""

    input_format = format_alias("input")
    weight_format = format_alias("weight")
    output_format = format_alias("output")
    error_format = format_alias("error")
    gradient_format = format_alias("gradient")

    def __init__(
        self,
        *args: Any,
        weight_quantizer: QuantizerLike | None = None,
        input_quantizer: QuantizerLike | None = None,
        output_quantizer: QuantizerLike | None = None,
        error_quantizer: QuantizerLike | None = None,
        gradient_quantizer: QuantizerLike | None = None,
        rounding: str = "nearest",
        backward_rounding: str = "stochastic",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        aliases = pop_format_aliases(kwargs, POINTS)
        super().__init__(*args, **kwargs)
        values = dict(input=input_quantizer, weight=weight_quantizer, output=output_quantizer,
                      error=error_quantizer, gradient=gradient_quantizer)  # fmt: skip
        self._init_quantization(
            {point: values[point] for point in POINTS},
            aliases,
            rounding,
            backward_rounding,
            seed,
            backward=BACKWARD_POINTS,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(self._quantization_config())
        return config


@keras.saving.register_keras_serializable(package="tf_lowprec")
class QuantizedDense(QuantizedKernelLayer, keras.layers.Dense):
    """`keras.layers.Dense` with quantization-aware forward and backward passes.

    Takes every `keras.layers.Dense` argument (`units` first), plus the
    keyword-only quantization arguments below; with all quantizers `None`
    it computes exactly what Dense computes.
    {quantization_args}
    Example:

    ```python
    fx8 = tf_lowprec.quantizers.Quantizer(tf_lowprec.formats.FixedPoint(8, 6))
    layer = tf_lowprec.layers.QuantizedDense(
        64, activation="relu", weight_quantizer=fx8, output_quantizer=fx8,
        error_quantizer=tf_lowprec.quantizers.Quantizer(
            tf_lowprec.formats.BlockFloatingPoint(8, axis=None), "stochastic"))
    ```

    References:
        Jacob et al., "Quantization and Training of Neural Networks for
        Efficient Integer-Arithmetic-Only Inference", CVPR 2018 (fake
        quantization with straight-through gradients); Yang et al., "SWALP",
        ICML 2019 (quantized errors and gradients).
    """

    def bias_for_output(self, bias: TensorLike) -> tf.Tensor:
        return bias

    def call(self, inputs: TensorLike, training: bool | None = None) -> tf.Tensor:
        return quantized_forward(self, inputs, keras.ops.matmul)


QuantizedDense.__doc__ = QuantizedDense.__doc__.replace(
    "{quantization_args}", QUANTIZATION_ARGS_DOC
)
