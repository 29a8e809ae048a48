"""Fixed-point quantization kernel (float32 in, float32 out, no gradient).

For `FixedPoint(wl, fl)` with `ulp = 2^-fl`:

    k = R(x / ulp)                                  # R = nearest or stochastic
    k = clamp(k, -2^(wl-1), 2^(wl-1) - 1)           # two's complement range
    Q(x) = k * ulp

Clamp convention: round first, then clamp to the two's-complement range, so
everything above `max_value - ulp/2` becomes `max_value` and everything below
`min_value` becomes `min_value`. This is QPyTorch's
`fixed_point_quantize(..., clamp=True, symmetric=False)` and HALP's `Q`.
Differences from QPyTorch: its CUDA kernel rounds ties away from zero (its
CPU kernel, like us, to even); its stochastic rounding is
`nearbyint(v + r - 0.5)`, equal to ours except when `v + r - 0.5` is exactly
a tie.

Non-finite inputs (NaN, +-inf) are returned unchanged. Use
`tf_lowprec.ops.quantize`, which adds dtype handling, XLA compilation and the
straight-through gradient.
"""

import tensorflow as tf

from tf_lowprec.ops import rounding


def quantize_fixed_point(x, fmt, rounding_mode, seed):
    """Quantizes float32 `x` to `fmt` (a `FixedPoint`)."""
    k = rounding.round_to_integer(x * (2.0**fmt.fractional_length), rounding_mode, seed)
    low = -(2.0 ** (fmt.word_length - 1))
    k = tf.clip_by_value(k, low, -low - 1.0)
    q = k * (2.0**-fmt.fractional_length)
    return tf.where(tf.math.is_finite(x), q, x)
