"""`Quantize`: quantize activations forward and errors backward (SWALP's Q_A/Q_E)."""

from __future__ import annotations

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

_POINTS = ("forward", "backward")


@keras.saving.register_keras_serializable(package="tf_lowprec")
class Quantize(QuantizationOptions, keras.layers.Layer):
    """Rounds activations on the way forward and errors on the way back.

        forward:   y = Q_forward(x)
        backward:  dL/dx = Q_backward(dL/dy)

    Placed after a layer's activation, this is the quantizer of SWALP and
    QPyTorch's `Quantizer(forward_number, backward_number, ...)`: with
    `BlockFloatingPoint(8)` for both formats it simulates 8-bit activations
    and 8-bit back-propagated errors. Either format may be `None` (that pass
    is the identity). The forward gradient is otherwise straight through.

    Quantization applies in training and inference alike.

    Args:
        forward_quantizer: quantizer of the activations (a
            `tf_lowprec.quantizers.Quantizer`, or a format, rounded with
            `rounding`), or `None`.
        backward_quantizer: quantizer of the incoming gradient (or a format,
            rounded with `backward_rounding`), or `None`. Defaults to `None`.
        rounding: rounding of a bare forward format, `"nearest"` or
            `"stochastic"`. Defaults to `"nearest"`.
        backward_rounding: rounding of a bare backward format. Defaults to
            `"stochastic"` (unbiased, as SWALP).
        seed: int or `None`, seeds the layer's `keras.random.SeedGenerator`
            (a new draw every call; its state is saved with the layer).
            Defaults to `None`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...),
            and the deprecated aliases `forward_format` / `backward_format`
            of the quantizer arguments (a format, rounded as above).

    Example:

    ```python
    bfp8 = tf_lowprec.formats.BlockFloatingPoint(8, axis=None)
    model = keras.Sequential([
        keras.layers.Dense(128, activation="relu"),
        tf_lowprec.layers.Quantize(bfp8, bfp8),
        keras.layers.Dense(10),
    ])
    ```

    References:
        Yang et al., "SWALP", ICML 2019 (github.com/stevenygd/SWALP,
        `models/quantizer.py` `BlockQuantizer`); QPyTorch `quantizer()`.
    """

    def __init__(
        self,
        forward_quantizer: QuantizerLike | None = None,
        backward_quantizer: QuantizerLike | None = None,
        rounding: str = "nearest",
        backward_rounding: str = "stochastic",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        aliases = pop_format_aliases(kwargs, _POINTS)
        super().__init__(**kwargs)
        self._init_quantization(
            {"forward": forward_quantizer, "backward": backward_quantizer},
            aliases,
            rounding,
            backward_rounding,
            seed,
            backward=("backward",),
        )
        self.supports_masking = True
        self.built = True

    forward_format = format_alias("forward")
    backward_format = format_alias("backward")

    def call(self, inputs: TensorLike, training: bool | None = None) -> tf.Tensor:
        seed = self._draw_seed()
        x = self._q(inputs, "forward", seed)
        return self._q(x, "backward", seed)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(self._quantization_config())
        return config
