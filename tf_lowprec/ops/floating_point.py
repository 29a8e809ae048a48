"""Low-precision floating point quantization kernel, bit-exact (float32).

For `FloatingPoint(e, m)` (bias `b = 2^(e-1) - 1`), on the float32 bits of
`|x|`, with `s = 23 - m` dropped mantissa bits:

    nearest:     bits' = (bits + 2^(s-1) - 1 + bit_s(bits)) & ~(2^s - 1)
    stochastic:  bits' = (bits + r) & ~(2^s - 1),   r uniform in [0, 2^s)

The first is round-half-to-even of the mantissa (the tie increment is the
kept LSB), the second rounds up with probability exactly
`dropped / 2^s` (unbiased). A carry out of the mantissa moves to the next
binade, which is the correct next value. Then:

* Subnormals (`|x| < 2^(1-b)`, only distinct from float32's own for `e < 8`):
  the grid is the fixed step `2^(1-b-m)`; `|x|` is rounded there by scaling
  with powers of two (exact). For `e = 8` the float32 subnormal encoding is
  already that grid, and the bit formula handles it.
* Overflow: results above `max_value = (2 - 2^-m) 2^b` saturate to it (also
  for `e = 8`, where the bit formula would carry into inf).
* The sign is put back (`-0.0` stays `-0.0`), NaN and +-inf pass through.

So `FloatingPoint(8, 7)` equals `tf.cast(x, tf.bfloat16)` and
`FloatingPoint(5, 10)` equals `tf.cast(x, tf.float16)` bit for bit, except
that finite values the casts overflow to inf (`|x| >= 65520` for float16,
above bfloat16's max for bfloat16) saturate here. Integer bit arithmetic
is used because TensorFlow flushes float32 subnormals to zero on CPU.

Differences from QPyTorch `float_quantize`: its nearest mode adds half an
ulp and truncates, so mantissa ties go away from zero (ours: to even, as the
casts do); before v0.3 it had no subnormals, and some of its kernel versions
keep the top exponent code as a finite binade instead of reserving it for
inf/NaN (ours is IEEE: the top code is reserved).
"""

import tensorflow as tf

from tf_lowprec.ops import rounding

_SIGN_MASK = 0x7FFFFFFF
_EXPONENT_ALL_ONES = 0x7F800000


def quantize_floating_point(x, fmt, rounding_mode, seed):
    """Quantizes float32 `x` to `fmt` (a `FloatingPoint`)."""
    e, m = fmt.exponent_bits, fmt.mantissa_bits
    if e == 8 and m == 23:
        return x
    drop = 23 - m
    bits = tf.bitcast(x, tf.int32)
    magnitude = tf.bitwise.bitwise_and(bits, _SIGN_MASK)
    sign = tf.bitwise.bitwise_xor(bits, magnitude)
    noise_bits = None
    if rounding_mode == "stochastic":
        noise_bits = tf.bitcast(rounding.random_bits(tf.shape(x), seed), tf.int32)
    if drop == 0:  # 23 mantissa bits: only the exponent range can change x
        rounded = magnitude
    else:
        if rounding_mode == "nearest":
            kept_lsb = tf.bitwise.bitwise_and(
                tf.bitwise.right_shift(magnitude, drop), 1
            )
            increment = (2 ** (drop - 1) - 1) + kept_lsb
        else:
            increment = tf.bitwise.bitwise_and(noise_bits, 2**drop - 1)
        rounded = tf.bitwise.bitwise_and(magnitude + increment, ~(2**drop - 1))
    max_bits = ((fmt.bias + 127) << 23) | (((1 << m) - 1) << drop)
    rounded = tf.minimum(rounded, max_bits)
    if e < 8:
        rounded = _subnormals(magnitude, rounded, fmt, rounding_mode, noise_bits)
    result = tf.bitwise.bitwise_or(rounded, sign)
    result = tf.where(magnitude >= _EXPONENT_ALL_ONES, bits, result)
    return tf.bitcast(result, tf.float32)


def _subnormals(magnitude, rounded, fmt, rounding_mode, noise_bits):
    """Rounds the entries below the normal range onto the subnormal grid."""
    min_exponent = 1 - fmt.bias
    steps = 2.0 ** (fmt.mantissa_bits - min_exponent)
    v = tf.bitcast(magnitude, tf.float32) * steps
    noise = None
    if rounding_mode == "stochastic":
        noise = rounding.bits_to_uniform(tf.bitcast(noise_bits, tf.uint32))
    k = rounding.round_to_integer(v, rounding_mode, noise=noise)
    subnormal = tf.bitcast(k * (1.0 / steps), tf.int32)
    min_normal_bits = (min_exponent + 127) << 23
    return tf.where(magnitude < min_normal_bits, subnormal, rounded)
