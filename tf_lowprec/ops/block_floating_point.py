"""Block floating point quantization kernel (float32, no gradient).

For `BlockFloatingPoint(wl, axis)`, per block `B` (see the format's
docstring for what a block is):

    M = max_{i in B, x_i finite} |x_i|
    E = clamp(floor(log2 M), wl - 128, 126)         # exact, from M's bits
    ulp = 2^(E + 2 - wl)
    k_i = clamp(R(x_i / ulp), -(2^(wl-1) - 1), 2^(wl-1) - 1)
    Q(x_i) = k_i * ulp

`x_i / ulp` lies in `(-2^(wl-1), 2^(wl-1))`, so the clamp only acts when
rounding reaches `+-2^(wl-1)` (an entry within half an ulp of `+-2^(E+1)`,
or stochastic rounding near the block maximum). The symmetric clamp keeps
`|Q(x)| < 2^(E+1)`, so `Q(Q(x)) = Q(x)`.

Compared with the references (see `tests/reference/quant_numpy.py`):

* SWALP `block_quantize`: same rounding (`torch.round` is half-to-even) and
  blocks, but a two's-complement clamp: entries that round to
  `-2^(wl-1) ulp = -2^(E+1)` stay there (we give `-(2^(wl-1) - 1) ulp`), and
  re-quantizing such a block changes its exponent. SWALP computes
  `floor(log2(M))` in float32, which is one too large when `M` is within
  about `2^-24` (relative) below a power of two; we read the exponent from
  the bits, exactly. SWALP clamps `E` to `[-128, 127]` and returns NaN for an
  all-zero row; we return 0.
* QPyTorch `block_quantize`: same symmetric clamp. Its nearest mode adds
  half an ulp to the bits of `x + 6 * 2^E` (which float32 has already
  rounded to `2^(E-21)`), so ties go up (`+0.5 ulp -> +1`, `-0.5 ulp -> 0`)
  where ours go to even, and values within `2^(wl-23)` ulp of a tie can be
  rounded twice; no exponent clamp. Its stochastic rounding adds `23 - wl`
  random low bits (a coarser `u`).

An all-zero block (or one with only non-finite entries) quantizes to 0.
Non-finite entries are excluded from `M` and returned unchanged.
"""

import tensorflow as tf

from tf_lowprec.ops import ranges, rounding


def _pow2(exponent):
    """`2.0 ** exponent` for int32 exponents in the normal range, via bits."""
    return tf.bitcast(tf.bitwise.left_shift(exponent + 127, 23), tf.float32)


def _axes(x, fmt):
    rank = x.shape.rank
    if rank is None:
        raise ValueError(
            "BlockFloatingPoint needs a tensor of known rank. Received: "
            f"x with shape={x.shape}"
        )
    return fmt.reduction_axes(rank)


def shared_exponent(x, fmt):
    """The clamped shared exponent `E` (int32) per block, broadcastable to `x`."""
    block_max = ranges.finite_abs_max(x, _axes(x, fmt))
    exponent = tf.bitwise.right_shift(tf.bitcast(block_max, tf.int32), 23) - 127
    return tf.clip_by_value(exponent, fmt.min_exponent, fmt.max_exponent)


def quantize_block_floating_point(x, fmt, rounding_mode, seed):
    """Quantizes float32 `x` to `fmt` (a `BlockFloatingPoint`)."""
    exponent = shared_exponent(x, fmt)
    shift = fmt.word_length - 2
    k = rounding.round_to_integer(x * _pow2(shift - exponent), rounding_mode, seed)
    top = 2.0 ** (fmt.word_length - 1) - 1.0
    k = tf.clip_by_value(k, -top, top)
    q = k * _pow2(exponent - shift)
    return tf.where(tf.math.is_finite(x), q, x)
