"""Integer-affine (scale / zero point) quantization: codes, parameters, kernel.

For `IntegerAffine(b, symmetric, per_channel_axis)` and one channel `c`
(the whole tensor when `per_channel_axis` is None):

    symmetric:   scale = max|x_c| / (2^(b-1) - 1),  zero_point = 0,
                 codes in [-(2^(b-1) - 1), 2^(b-1) - 1]
    asymmetric:  lo = min(min x_c, 0), hi = max(max x_c, 0),
                 scale = (hi - lo) / (2^b - 1),
                 zero_point = clamp(round(-2^(b-1) - lo / scale), code range),
                 codes in [-2^(b-1), 2^(b-1) - 1]
    code = clamp(R(x / scale) + zero_point, code_min, code_max)
    dequantized = scale * (code - zero_point)

`R` is nearest (half to even) or stochastic rounding. The divisions by
`2^(b-1) - 1` and `2^b - 1` are computed as products with the float32
reciprocal (XLA rewrites them that way; doing it everywhere keeps eager,
graph and XLA results identical). A channel with
`scale = 0` (all zeros) uses `scale = 1`, so its codes are 0 and nothing is
NaN. Non-finite entries are left out of the ranges; the fake-quantization
kernel returns them unchanged.

This is the scheme of TFLite / Keras post-training weight quantization
(symmetric, narrow range, per channel for kernels) and of TFLite's int8
activations (asymmetric).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tensorflow as tf

from tf_lowprec import formats
from tf_lowprec.ops import ranges
from tf_lowprec.ops.kernel_runner import as_float_tensor
from tf_lowprec.ops.rounding import SeedLike, check_rounding, round_to_integer

if TYPE_CHECKING:
    from tensorflow.types.experimental import TensorLike


def _reduction_axes(x, axis):
    rank = x.shape.rank
    if axis is None:
        return None
    if rank is None or not -rank <= axis < rank:
        raise ValueError(
            "`per_channel_axis` of IntegerAffine is out of range for a tensor "
            f"of shape {x.shape}. Received: per_channel_axis={axis}"
        )
    axis %= rank
    return [d for d in range(rank) if d != axis]


def _reciprocal(n):
    """float32(1 / n). XLA rewrites division by a constant into this product,
    so eager, graph and XLA use the product to agree bit for bit."""
    return tf.constant(1.0 / n, tf.float32)


def _parameters(x, fmt):
    """Scale and zero point of float32 `x` for `fmt`, broadcastable to `x`.

    Returns:
        `(scale, zero_point)`, both float32; `zero_point` holds integers.
    """
    axes = _reduction_axes(x, fmt.per_channel_axis)
    if fmt.symmetric:
        amax = ranges.finite_abs_max(x, axes)
        scale = amax * _reciprocal(fmt.code_max)
        scale = tf.where(scale > 0.0, scale, 1.0)
        return scale, tf.zeros_like(scale)
    low, high = ranges.finite_range(x, axes)
    low = tf.minimum(low, 0.0)
    high = tf.maximum(high, 0.0)
    width = high - low  # overflows to inf only when the range spans > float32 max
    scale = tf.where(
        tf.math.is_finite(width),
        width * _reciprocal(2**fmt.bits - 1),
        high * _reciprocal(2**fmt.bits - 1) - low * _reciprocal(2**fmt.bits - 1),
    )
    scale = tf.where(scale > 0.0, scale, 1.0)
    zero_point = tf.clip_by_value(
        tf.round(float(fmt.code_min) - low / scale),
        float(fmt.code_min),
        float(fmt.code_max),
    )
    return scale, zero_point


def _codes(x, fmt, rounding_mode="nearest", seed=None):
    """Integer codes of float32 `x` (as float32 integers) with their parameters.

    Returns:
        `(codes, scale, zero_point)`; `x ~= scale * (codes - zero_point)`.
    """
    scale, zero_point = _parameters(x, fmt)
    k = round_to_integer(x / scale, rounding_mode, seed)
    codes = tf.clip_by_value(
        k + zero_point, float(fmt.code_min), float(fmt.code_max)
    )
    return codes, scale, zero_point


def quantize_integer_affine(x, fmt, rounding_mode, seed):
    """Fake-quantizes float32 `x` to `fmt` (an `IntegerAffine`)."""
    codes, scale, zero_point = _codes(x, fmt, rounding_mode, seed)
    q = (codes - zero_point) * scale
    return tf.where(tf.math.is_finite(x), q, x)


def _check(x, fmt):
    if not isinstance(fmt, formats.IntegerAffine):
        raise ValueError(
            f"`fmt` must be an IntegerAffine format. Received: fmt={fmt!r}"
        )
    return tf.cast(as_float_tensor(x), tf.float32)


def affine_parameters(x: TensorLike, fmt: formats.IntegerAffine) -> tuple[tf.Tensor, tf.Tensor]:
    """Scale and zero point of `x` for the `IntegerAffine` format `fmt`.

    Returns:
        `(scale, zero_point)`: float32 and int32 tensors of the reduced shape
        (size 1 on every axis except `per_channel_axis`), broadcastable to `x`.
    """
    x = _check(x, fmt)
    scale, zero_point = _parameters(x, fmt)
    return scale, tf.cast(zero_point, tf.int32)


def affine_codes(
    x: TensorLike, fmt: formats.IntegerAffine, rounding: str = "nearest", seed: SeedLike = None
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Integer codes of `x` in the `IntegerAffine` format `fmt`.

    `x ~= scale * (codes - zero_point)`, with codes in
    `[fmt.code_min, fmt.code_max]`. This is the storage side of
    post-training quantization (`tf_lowprec.layers.quantize_weights`).

    Args:
        x: a float tensor.
        fmt: an `IntegerAffine` format.
        rounding: `"nearest"` (half to even) or `"stochastic"`.
        seed: for stochastic rounding, see `tf_lowprec.ops.rounding`.

    Returns:
        `(codes, scale, zero_point)`: int32 codes shaped like `x`, float32
        scale and int32 zero point broadcastable to `x`.
    """
    check_rounding(rounding)
    x = _check(x, fmt)
    codes, scale, zero_point = _codes(x, fmt, rounding, seed)
    return (
        tf.cast(codes, tf.int32),
        scale,
        tf.cast(zero_point, tf.int32),
    )
