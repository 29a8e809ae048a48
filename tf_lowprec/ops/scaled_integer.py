"""`quantize_scaled(x, scale, bits)`: integers times a runtime scale (HALP's Q).

    Q(x) = clamp(R(x / scale), -2^(bits-1), 2^(bits-1) - 1) * scale

with `R` nearest (half to even) or stochastic rounding. It is `FixedPoint`
with an arbitrary, possibly tensor-valued scale instead of `2^-fl`: HALP
(De Sa et al. 2018) quantizes its offset `z` with `scale = delta =
||g|| / (mu (2^(bits-1) - 1))`, recomputed every outer epoch. Entries whose
scale is `<= 0` (e.g. a zero gradient norm) quantize to 0 instead of NaN;
NaN and +-inf pass through. The gradient with respect to `x` is straight
through; `scale` gets none.

Example (HALP test vector, `delta = 0.01`, `bits = 4`):

>>> quantize_scaled([0.013, -0.013, 0.5, -0.5, 0.0049], 0.01, 4).numpy()
array([ 0.01, -0.01,  0.07, -0.08,  0.  ], dtype=float32)

Reference:
    De Sa, Leszczynski, Zhang, Marzoev, Aberger, Olukotun, Ré,
    "High-Accuracy Low-Precision Training", 2018; torchhalp `quantize_`.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import tensorflow as tf

from tf_lowprec.ops.kernel_runner import per_shape, quantize_forward
from tf_lowprec.ops.rounding import SeedLike, check_rounding, round_to_integer

if TYPE_CHECKING:
    from tensorflow.types.experimental import TensorLike

__all__ = ["quantize_scaled", "scaled_integer_codes"]


def _safe_scale(scale):
    """`(scale > 0, scale where positive else 1)`."""
    positive = scale > 0
    return positive, tf.where(positive, scale, tf.ones_like(scale))


def scaled_integer_codes(
    x: TensorLike,
    scale: float | TensorLike,
    bits: int,
    rounding: str = "nearest",
    seed: SeedLike = None,
) -> tf.Tensor:
    """Integer codes `k = clamp(R(x / scale), -2^(bits-1), 2^(bits-1) - 1)`.

    The pure kernel of `quantize_scaled` (no compilation, no gradient, any
    float dtype: HALP runs it in float64 for wide codes). Where
    `scale <= 0` the code is 0 (the grid is the single point 0), never NaN.

    Args:
        x: float tensor.
        scale: float scalar or tensor broadcastable to `x`, same dtype.
        bits: code width (a Python int).
        rounding: `"nearest"` or `"stochastic"`.
        seed: for stochastic rounding, see `tf_lowprec.ops.rounding`.

    Returns:
        The codes as a float tensor of integers, shaped like `x`.
    """
    positive, safe_scale = _safe_scale(scale)
    k = round_to_integer(x / safe_scale, rounding, seed)
    low = -(2.0 ** (bits - 1))
    k = tf.clip_by_value(k, low, -low - 1.0)
    return tf.where(positive, k, tf.zeros_like(k))


def _kernel(bits, rounding):
    def body(x, seed, scale):
        _, safe_scale = _safe_scale(scale)
        q = scaled_integer_codes(x, scale, bits, rounding, seed) * safe_scale
        return tf.where(tf.math.is_finite(x), q, x)

    return body


def quantize_scaled(
    x: TensorLike,
    scale: float | TensorLike,
    bits: int,
    rounding: str = "nearest",
    seed: SeedLike = None,
) -> tf.Tensor:
    """Quantizes `x` to `bits`-bit two's-complement integers times `scale`.

    Args:
        x: a float tensor.
        scale: positive float scalar or tensor broadcastable to `x`.
        bits: integer width in `[2, 24]`.
        rounding: `"nearest"` or `"stochastic"`. Defaults to `"nearest"`.
        seed: as for `tf_lowprec.ops.quantize`.
    """
    check_rounding(rounding)
    if (
        not isinstance(bits, numbers.Integral)
        or isinstance(bits, bool)
        or not 2 <= bits <= 24
    ):
        raise ValueError(
            f"`bits` must be an integer in [2, 24]. Received: bits={bits!r}"
        )
    scale = tf.cast(tf.convert_to_tensor(scale), tf.float32)
    run = per_shape(("scaled", int(bits), rounding), _kernel(int(bits), rounding))
    return quantize_forward(run, x, rounding, seed, scale)
