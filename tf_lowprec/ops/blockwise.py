"""Block-wise 8-bit quantization of optimizer states (Dettmers et al., 2022).

A float32 tensor `x` with `n` entries is flattened, cut into blocks of
`block_size` consecutive entries (the last block is shorter when
`block_size` does not divide `n`; it is padded with zeros, which never
change a block maximum) and stored as

    s_b   = max_{i in b} |x_i|                      one float32 scale per block
    c_i   = argmin_k |T[k] - x_i / s_b|             an 8-bit code per entry
    x'_i  = T[c_i] * s_b                            dequantized value

with `T` a fixed, sorted table of 256 values in `[-1, 1]` (signed) or
`[0, 1]` (unsigned). `argmin` is exact nearest rounding: the code is the
number of decision thresholds `t_k = (T[k] + T[k+1]) / 2` (rounded to
float32) at or below `x_i / s_b` (a tie goes to the larger value),
computed without a search from the float32 bit pattern of `|x_i / s_b|`:
its top bits select one of 3457 buckets, a table gives the number of
thresholds below the bucket and the one threshold inside it, and one
integer comparison settles that one (`_nearest_index`). Decoding reads
`T` at the code.

The table is the *dynamic tree* code of the paper (their Fig. 2 / Sec. 2):
a sign bit, then `e` zero bits, a 1 (the indicator), and the remaining
`f` bits a linear fraction; the value is `sign * 10^-e * q_j` with `q_j`
the midpoints of `2^f` equal intervals of `[0.1, 1]`. With 8 bits and a
sign, `e` zero bits leave `f = 6 - e` fraction bits; the unsigned variant
(for Adam's second moment, which is never negative) spends the sign bit on
one more fraction bit (`f = 7 - e`, `e = 0..6`: the paper's "dynamic
quantization"), plus `0` and `1`: `(2 + 4 + ... + 128) + 2 = 256` entries.

The signed table is symmetric: `0`, `+-1` and `+-10^-e q_j` for
`e = 0..5`, `2 * (1 + 64 + 32 + ... + 2) + 1 = 255` entries, stored as
`int8` codes `-127..127` (0 is the code of 0; -128 is unused).
bitsandbytes' signed table instead has `+1` but no `-1` and one more
decade (`+-0.55e-6`); without `-1` a block whose largest entry is negative
comes back `0.7%` smaller, and requantizing an unchanged state shrinks it
again at every step. With `+-1` every block maximum is reproduced exactly,
so requantizing a dequantized state is a fixed point (same codes, same
scales); the price is that entries below `1.6e-6` of their block maximum
(half the smallest magnitude `3.25e-6`) become 0.

Consequences (checked in `tests/ops/test_blockwise.py` against a numpy
argmin over the table):

* `|x_i - x'_i| <= s_b * g / 2` where `g` is the widest gap of the table
  next to `x_i / s_b`: at most `0.9 / 64 / 2 = 0.00703` (signed) or
  `0.9 / 128 / 2 = 0.00352` (unsigned) of the block maximum. Relative to
  `|x_i|`, in the decade `|x_i| / s_b in [10^-(e+1), 10^-e)` the error is
  at most `4.5 / 2^f`: 7% / 3.5% (signed / unsigned) for `|x_i| >= 0.1 s_b`
  (0.7% / 0.35% near the maximum), doubling with each decade below; the
  smallest nonzero magnitudes are `3.25e-6 s_b` and `0.325e-6 s_b`.
* An all-zero block has `s_b = 0` and dequantizes to exact zeros; an
  exact zero anywhere dequantizes to an exact zero.
* An outlier only coarsens its own block (every other scale is unchanged).
* Requantizing a dequantized tensor gives the same codes and scales.

Codes are stored as `int8` for the signed table (`c - 127`) and `uint8`
for the unsigned one, in `x`'s own shape, so a state costs one byte per
entry plus `4 / block_size` bytes for its scales.

Non-finite inputs are not supported (a NaN or inf in a block makes its
scale non-finite); optimizer states are finite whenever the gradients are.

Reference:
    Tim Dettmers, Mike Lewis, Sam Shleifer, Luke Zettlemoyer, "8-bit
    Optimizers via Block-wise Quantization", ICLR 2022
    (https://arxiv.org/abs/2110.02861).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

if TYPE_CHECKING:
    from tensorflow.types.experimental import TensorLike

__all__ = [
    "SUPPORTED_BITS",
    "as_blocks",
    "check_block_size",
    "dequantize_blocks",
    "dequantize_blockwise",
    "dynamic_code",
    "from_blocks",
    "number_of_blocks",
    "quantize_blocks",
    "quantize_blockwise",
]

SUPPORTED_BITS = (8,)
_EXPONENTS = 7  # e = 0 .. 6: values down to ~1e-7 of the block maximum
_ZERO_INDEX = 127  # position of 0 in the signed table = -(smallest int8 code)


def check_bits(bits: int) -> None:
    """Raises `ValueError` unless `bits` is supported (only 8 for now)."""
    if isinstance(bits, bool) or bits not in SUPPORTED_BITS:
        raise ValueError(
            f"`bits` must be one of {SUPPORTED_BITS}. Received: bits={bits!r}"
        )


def check_block_size(block_size: int, name: str = "block_size") -> None:
    """Raises `ValueError` unless `block_size` is a positive int."""
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, numbers.Integral)
        or block_size <= 0
    ):
        raise ValueError(
            f"`{name}` must be a positive int. Received: {name}={block_size!r}"
        )


@functools.cache
def dynamic_code(signed: bool, bits: int = 8) -> np.ndarray:
    """The sorted dynamic tree table (255 signed / 256 unsigned entries), float32.

    Args:
        signed: `True` for the signed table (first moments, momentum),
            `False` for the unsigned one (second moments).
        bits: code width; only 8 is supported.
    """
    check_bits(bits)
    magnitudes = [0.0, 1.0]
    for e in range(_EXPONENTS - 1 if signed else _EXPONENTS):
        fraction_bits = bits - 2 - e + (0 if signed else 1)
        edges = np.linspace(0.1, 1.0, 2**fraction_bits + 1)
        magnitudes.extend(10.0**-e * (edges[:-1] + edges[1:]) / 2)
    values = np.array(magnitudes)
    if signed:
        values = np.concatenate([values, -values[1:]])
    table = np.sort(values).astype(np.float32)
    assert table.size == 2**bits - signed and np.unique(table).size == table.size
    return table


@functools.cache
def _thresholds(signed):
    table = dynamic_code(signed).astype(np.float64)
    middle = ((table[:-1] + table[1:]) / 2).astype(np.float32)
    pad = np.full(256 - middle.size, np.inf, np.float32)  # never <= v
    return np.concatenate([middle, pad])


# Buckets of `_nearest_index`: the float32 bit patterns of magnitudes, cut
# after `_BUCKET_MANTISSA_BITS` mantissa bits, from 2^(_LOWEST_EXPONENT - 127)
# (below every positive threshold) to 1.0.
_BUCKET_MANTISSA_BITS = 7
_LOWEST_EXPONENT = 100
_LOW_BITS = 23 - _BUCKET_MANTISSA_BITS
_COUNT_SHIFT = _LOW_BITS + 1  # room for the "no threshold" offset 2^_LOW_BITS


@functools.cache
def _bucket_table(signed):
    """int32 per bucket: `count << _COUNT_SHIFT | offset`.

    `count` is the number of positive thresholds below the bucket's first
    bit pattern; `offset` is the low bits of the one threshold inside the
    bucket, or `2^_LOW_BITS` (above every low part) if there is none.
    """
    thresholds = _thresholds(signed)
    thresholds = thresholds[np.isfinite(thresholds) & (thresholds > 0)]
    bits = thresholds.view(np.int32).astype(np.int64)
    first = (_LOWEST_EXPONENT << 23) >> _LOW_BITS
    last = int(np.float32(1.0).view(np.int32)) >> _LOW_BITS
    buckets = (bits >> _LOW_BITS) - first
    # Exactness needs at most one threshold per bucket and none below the first.
    assert buckets.min() > 0 and np.all(np.diff(buckets) > 0)
    starts = (np.arange(last - first + 1) + first) << _LOW_BITS
    count = np.searchsorted(bits, starts, side="left")
    offset = np.full(starts.size, 1 << _LOW_BITS, np.int64)
    offset[buckets] = bits - starts[buckets]
    return ((count << _COUNT_SHIFT) | offset).astype(np.int32)


def _nearest_index(v, signed, bits):
    """Position in the sorted table of the entry nearest to `v` (in [-1, 1]).

    Equals `#{k : t_k <= v}` (the float32 thresholds `t_k` between
    neighbours; a tie goes to the larger entry), computed exactly with one
    table read per entry and integer operations only. Positive float32
    numbers order like their bit patterns, so with `u` the bit pattern of
    `|v|`, a threshold is at or below `|v|` iff its pattern is `<= u`. The
    patterns are cut into buckets by their top bits (exponent and the top
    `_BUCKET_MANTISSA_BITS = 7` mantissa bits: 128 buckets per binade, so
    relative width at most 2^-7 = 0.78%, narrower than the closest two
    thresholds of the table, 0.9 / 128 = 0.70% of 1, apart); the table
    gives per bucket the number of thresholds below it and the low bits of
    the (at most one) threshold inside it, and one integer comparison of
    `u`'s low bits decides that one. Negative `v` count thresholds by the
    symmetry of the signed table, strictly (`-t <= v` iff `t >= |v|`).
    Magnitudes below `2^-27` (under every positive threshold, about
    `1.6e-7`) fall into the first bucket, which has none.
    """
    del bits  # 8 (checked by the callers)
    table = _bucket_table(signed)
    magnitude = tf.bitwise.bitwise_and(tf.bitcast(v, tf.int32), 0x7FFFFFFF)
    bucket = tf.clip_by_value(
        tf.bitwise.right_shift(magnitude, _LOW_BITS)
        - ((_LOWEST_EXPONENT << 23) >> _LOW_BITS),
        0,
        table.size - 1,
    )
    entry = tf.gather(tf.constant(table), bucket)
    count = tf.bitwise.right_shift(entry, _COUNT_SHIFT)
    offset = tf.bitwise.bitwise_and(entry, (1 << _COUNT_SHIFT) - 1)
    low = tf.bitwise.bitwise_and(magnitude, (1 << _LOW_BITS) - 1)
    if not signed:  # v >= 0 here (quantize_blocks clamps)
        return count + tf.cast(low >= offset, tf.int32)
    negative = tf.cast(v < 0, tf.int32)  # -0.0 (not < 0) has count 0 either way
    magnitude_index = count + tf.cast(low >= offset + negative, tf.int32)
    return _ZERO_INDEX + magnitude_index * (1 - 2 * negative)


def number_of_blocks(size: int, block_size: int) -> int:
    """`ceil(size / block_size)`: the length of the scale vector."""
    return max(1, math.ceil(int(size) / int(block_size)))


def as_blocks(x: TensorLike, block_size: int) -> tf.Tensor:
    """`x` flattened, zero-padded to whole blocks, `[n_blocks, block_size]`.

    A tensor of at most `block_size` entries is one block of its own size,
    `[1, size]`: the same block (its zero padding would change no maximum)
    without a padded copy.
    """
    flat = tf.reshape(x, [-1])
    size = flat.shape[0]
    block_size = min(block_size, max(size, 1))
    pad = number_of_blocks(size, block_size) * block_size - size
    if pad:
        flat = tf.pad(flat, [[0, pad]])
    return tf.reshape(flat, [-1, block_size])


def from_blocks(blocks: TensorLike, shape: Sequence[int] | tf.TensorShape) -> tf.Tensor:
    """Inverse of `as_blocks`: drops the padding, restores `shape`."""
    shape = tf.TensorShape(shape)
    flat = tf.reshape(blocks, [-1])
    if flat.shape[0] != shape.num_elements():
        flat = flat[: shape.num_elements()]
    return tf.reshape(flat, shape)


def quantize_blocks(
    blocks: TensorLike, signed: bool = True, bits: int = 8
) -> tuple[tf.Tensor, tf.Tensor]:
    """Codes and scales of float32 `blocks` (`[n, block_size]`, one scale per row).

    The block-level kernel of `quantize_blockwise` (no argument checks).
    """
    if not signed:
        blocks = tf.maximum(blocks, 0.0)
    scales = tf.reduce_max(tf.abs(blocks), axis=1)
    normalized = tf.math.divide_no_nan(blocks, scales[:, None])
    index = _nearest_index(normalized, signed, bits)
    if signed:
        return tf.cast(index - _ZERO_INDEX, tf.int8), scales
    return tf.cast(index, tf.uint8), scales


def dequantize_blocks(codes: tf.Tensor, scales: TensorLike) -> tf.Tensor:
    """float32 `[n, block_size]` values of `codes` (`int8` signed / `uint8`)."""
    signed = codes.dtype == tf.int8
    index = tf.cast(codes, tf.int32) + (_ZERO_INDEX if signed else 0)
    values = tf.gather(tf.constant(dynamic_code(signed)), index)
    return values * tf.cast(scales, tf.float32)[:, None]


def quantize_blockwise(
    x: TensorLike, block_size: int = 256, signed: bool = True, bits: int = 8
) -> tuple[tf.Tensor, tf.Tensor]:
    """Block-wise dynamic 8-bit codes and per-block scales of `x`.

    Args:
        x: a float tensor with a fully known shape (cast to float32).
        block_size: positive int, entries per scale. Defaults to 256.
        signed: the signed (`int8` codes) or unsigned (`uint8` codes, for
            non-negative `x`; negative entries clamp to 0) table.
            Defaults to `True`.
        bits: only 8 is supported. Defaults to 8.

    Returns:
        `(codes, scales)`: `codes` with `x`'s shape (`int8` or `uint8`),
        `scales` float32 of shape `[ceil(size / block_size)]`.
    """
    check_bits(bits)
    check_block_size(block_size)
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise ValueError(
            f"`x` must have a floating-point dtype. Received: x with dtype={x.dtype.name}"
        )
    if not x.shape.is_fully_defined():
        raise ValueError(
            f"`x` must have a fully known shape. Received: shape={x.shape}"
        )
    codes, scales = quantize_blocks(
        as_blocks(tf.cast(x, tf.float32), block_size), signed, bits
    )
    return from_blocks(codes, x.shape), scales


def dequantize_blockwise(codes: tf.Tensor, scales: TensorLike, block_size: int = 256) -> tf.Tensor:
    """float32 values `T[c] * s` from `quantize_blockwise`'s output.

    The table (signed or unsigned) is read from the codes' dtype
    (`int8` or `uint8`).
    """
    check_block_size(block_size)
    codes = tf.convert_to_tensor(codes)
    if codes.dtype not in (tf.int8, tf.uint8):
        raise ValueError(
            "`codes` must be int8 (signed table) or uint8 (unsigned). "
            f"Received: codes with dtype={codes.dtype.name}"
        )
    return from_blocks(
        dequantize_blocks(as_blocks(codes, block_size), scales), codes.shape
    )
