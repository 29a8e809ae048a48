"""`IntegerDense` / `IntegerConv2D`: layers whose kernels are stored as integers.

The kernel of these layers is not a float variable but

    kernel_codes       int8, one code per byte (bits > 4), or two 4-bit codes
                       per byte (bits <= 4, see `tf_lowprec.ops.packing`)
    kernel_scale       float32, one per channel (or one per tensor)
    kernel_zero_point  int8, same shape as the scale

and `layer.kernel` dequantizes on the fly:
`kernel = kernel_scale * (codes - kernel_zero_point)`, so Dense's and
Conv2D's own `call` run unchanged. The bias stays float32 (as in TFLite and
Keras's int8 mode). The integer variables are non-trainable; the layers are
meant for inference and for measuring the accuracy and size of post-training
quantization (`tf_lowprec.layers.quantize_weights`). They save to and load
from `.keras` files with their integer storage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from tf_lowprec.formats import (
    FormatLike,
    IntegerAffine,
    deserialize_format,
    serialize_format,
)
from tf_lowprec.ops import affine_codes
from tf_lowprec.ops.packing import pack_int4, unpack_int4

if TYPE_CHECKING:
    from tensorflow.types.experimental import TensorLike


def check_storage_format(fmt: FormatLike) -> IntegerAffine:
    fmt = deserialize_format(fmt, "weight_format")
    if not isinstance(fmt, IntegerAffine) or fmt.bits > 8:
        raise ValueError(
            "`weight_format` must be an IntegerAffine format with at most 8 "
            f"bits (stored in int8). Received: weight_format={fmt!r}"
        )
    return fmt


class IntegerKernel:
    """Mixin: integer kernel storage, dequantized by the `kernel` property."""

    def _build_integer_kernel(self, kernel_shape):
        fmt = self.weight_format
        self._kernel_shape = tuple(int(d) for d in kernel_shape)
        size = int(np.prod(self._kernel_shape))
        packed = fmt.bits <= 4
        self.kernel_codes = self.add_weight(
            name="kernel_codes",
            shape=((size + 1) // 2,) if packed else self._kernel_shape,
            dtype="int8",
            initializer="zeros",
            trainable=False,
        )
        param_shape = [1] * len(kernel_shape)
        if fmt.per_channel_axis is not None:
            axis = fmt.per_channel_axis % len(kernel_shape)
            param_shape[axis] = kernel_shape[axis]
        self.kernel_scale = self.add_weight(
            name="kernel_scale",
            shape=tuple(param_shape),
            initializer="ones",
            trainable=False,
        )
        self.kernel_zero_point = self.add_weight(
            name="kernel_zero_point",
            shape=tuple(param_shape),
            dtype="int8",
            initializer="zeros",
            trainable=False,
        )

    @property
    def kernel(self) -> tf.Tensor:
        codes = self.kernel_codes.value
        if self.weight_format.bits <= 4:
            codes = unpack_int4(codes, self._kernel_shape)
        codes = tf.cast(codes, "float32")
        zero_point = tf.cast(self.kernel_zero_point.value, "float32")
        kernel = (codes - zero_point) * self.kernel_scale.value
        return tf.cast(kernel, self.compute_dtype)

    def set_float_kernel(self, kernel: TensorLike) -> None:
        """Quantizes a float kernel into this layer's integer storage."""
        codes, scale, zero_point = affine_codes(kernel, self.weight_format)
        if self.weight_format.bits <= 4:
            codes = pack_int4(codes)
        self.kernel_codes.assign(tf.cast(codes, "int8"))
        self.kernel_scale.assign(scale)
        self.kernel_zero_point.assign(tf.cast(zero_point, "int8"))

    # Dense and Conv2D save only `kernel` and `bias`; save every variable.
    def save_own_variables(self, store: dict[str, Any]) -> None:
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store: dict[str, Any]) -> None:
        keras.layers.Layer.load_own_variables(self, store)

    def _build_bias(self, units):
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )


@keras.saving.register_keras_serializable(package="tf_lowprec")
class IntegerDense(IntegerKernel, keras.layers.Dense):
    """`keras.layers.Dense` with an integer (int8 or packed int4) kernel.

    Args:
        units: as `keras.layers.Dense`.
        weight_format: an `IntegerAffine` format with `bits <= 8`, e.g.
            `IntegerAffine(8, per_channel_axis=-1)`.
        **kwargs: the other `keras.layers.Dense` arguments.
    """

    def __init__(self, units: int, *, weight_format: FormatLike, **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        self.weight_format = check_storage_format(weight_format)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        input_dim = int(input_shape[-1])
        self._build_integer_kernel((input_dim, self.units))
        self._build_bias(self.units)
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: input_dim})
        self.built = True

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["weight_format"] = serialize_format(self.weight_format)
        return config


@keras.saving.register_keras_serializable(package="tf_lowprec")
class IntegerConv2D(IntegerKernel, keras.layers.Conv2D):
    """`keras.layers.Conv2D` with an integer (int8 or packed int4) kernel.

    Args:
        filters: as `keras.layers.Conv2D`.
        kernel_size: as `keras.layers.Conv2D`.
        weight_format: an `IntegerAffine` format with `bits <= 8`, e.g.
            `IntegerAffine(4, per_channel_axis=-1)` (kernels are
            `(h, w, in, out)`).
        **kwargs: the other `keras.layers.Conv2D` arguments.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        *,
        weight_format: FormatLike,
        **kwargs: Any,
    ) -> None:
        super().__init__(filters, kernel_size, **kwargs)
        self.weight_format = check_storage_format(weight_format)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channel_axis = -1 if self.data_format == "channels_last" else 1
        input_channels = int(input_shape[channel_axis])
        kernel_shape = self.kernel_size + (
            input_channels // self.groups,
            self.filters,
        )
        self._build_integer_kernel(kernel_shape)
        self._build_bias(self.filters)
        self.input_spec = keras.layers.InputSpec(
            min_ndim=self.rank + 2, axes={channel_axis: input_channels}
        )
        self.built = True

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["weight_format"] = serialize_format(self.weight_format)
        return config
