"""Rounding to integers: nearest (half to even) and stochastic, with seeds.

Nearest rounding is round-half-to-even (`tf.round`): `2.5 -> 2`, `3.5 -> 4`,
`-0.5 -> -0`. It is the IEEE-754 default, what `torch.round`, `np.round` and
QPyTorch's CPU fixed-point kernel (`nearbyint`) do.

Stochastic rounding of `v` is `floor(v + u)` with `u ~ U[0, 1)`, so that
`E[round(v)] = v` (unbiased). It is computed as

    floor(v) + ((1 - u) <= v - floor(v))

which is `floor(v + u)` exactly, without ever rounding the sum `v + u` in
floating point (that sum is inexact when `|v|` is large, which biases a
naive implementation). `v - floor(v)` and `1 - u` are exact, so the only
approximation is the 24-bit resolution of `u`: the probability of rounding
up is within `2^-24` of `frac(v)`.

Random numbers come from a counter-based generator: element `i` of a tensor
gets `mix((i * 0x9E3779B9 + k1) xor k0)`, where the keys `k0, k1` are hashed
from a two-word seed and `mix` is Wellons's "lowbias32" integer mixer
(xor-shift / multiply, a bijection with low avalanche bias): a Weyl sequence
through a strong mixer, the construction of SplitMix. It is stateless and
elementwise, so XLA fuses it into the quantizer's loop (far faster on CPU
than `tf.random.stateless_uniform` with Philox or ThreeFry under XLA, see
`benchmarks/quantizer_throughput.py`), the same seed gives the same bits in
eager, graph and XLA mode, and replicas that share a seed (e.g. a
`keras.random.SeedGenerator` mirrored by `tf.distribute`) round identically.
Streams restart after `2^32` elements of one tensor. The statistical checks
are in `tests/ops/test_rounding.py` (moments, chi-square, lag correlation,
low bits, seed independence).

Seeds (the `seed` argument of every stochastic function):
    * `None`: a fresh seed is drawn by a stateful TF op each time the op runs
      (not reproducible).
    * an `int`: always the same random stream (stateless, like JAX keys):
      calling twice with the same seed rounds the same way.
    * a `keras.random.SeedGenerator`: `next()` is drawn, so each call gets new
      randomness and the sequence is reproducible from the generator's seed.
    * an integer tensor of shape `[2]`: used as is.

References:
    Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
    SC 2011 (counter-based generators).
    C. Wellons, "Prospecting for hash functions", 2018 (lowbias32 constants,
    nullprogram.com/blog/2018/07/31/).
    Gupta, Agrawal, Gopalakrishnan, Narayanan, "Deep Learning with Limited
    Numerical Precision", ICML 2015 (stochastic rounding).
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, TypeAlias

import keras
import tensorflow as tf

from tf_lowprec import validation

if TYPE_CHECKING:
    from tensorflow.types.experimental import TensorLike

__all__ = [
    "ROUNDING_MODES",
    "SeedLike",
    "check_rounding",
    "round_to_integer",
    "canonical_seed",
    "fold_in",
    "random_bits",
    "uniform",
    "round_nearest",
    "round_stochastic",
]

_GOLDEN = 0x9E3779B9

ROUNDING_MODES = ("nearest", "stochastic")

SeedLike: TypeAlias = (
    int | keras.random.SeedGenerator | tf.types.experimental.TensorLike | None
)
"""A seed as every stochastic rounding takes it (`canonical_seed`): `None` (fresh
randomness), a Python int, a `keras.random.SeedGenerator`, or an integer tensor of
shape `[2]`."""


def check_rounding(rounding: str, name: str = "rounding") -> None:
    """Raises `ValueError` unless `rounding` is "nearest" or "stochastic"."""
    validation.choice(rounding, name, ROUNDING_MODES)


def _u32(value):
    return tf.constant(value & 0xFFFFFFFF, tf.uint32)


def _mix32(h):
    """Wellons's lowbias32 mixer: a bijection of uint32 with good avalanche."""
    rshift = tf.bitwise.right_shift
    h = h ^ rshift(h, _u32(16))
    h = h * _u32(0x21F0AAAD)
    h = h ^ rshift(h, _u32(15))
    h = h * _u32(0x735A2D97)
    return h ^ rshift(h, _u32(15))


def canonical_seed(seed: SeedLike) -> tf.Tensor:
    """Turns any accepted seed into a `uint32` tensor of shape `[2]`.

    Args:
        seed: `None`, a Python int, a `keras.random.SeedGenerator`, or an
            integer tensor/array of shape `[2]` (see the module docstring).

    Returns:
        A `tf.uint32` tensor of shape `[2]`.

    Raises:
        ValueError: for any other kind of seed.
    """
    if seed is None:
        drawn = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int32)
        return tf.bitcast(drawn, tf.uint32)
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        seed = int(seed)
        return tf.constant(
            [seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF], tf.uint32
        )
    if isinstance(seed, keras.random.SeedGenerator):
        seed = seed.next()
    if isinstance(seed, (bool, str, float)):
        raise ValueError(
            "`seed` must be None, an int, a keras.random.SeedGenerator or an "
            f"integer tensor of shape [2]. Received: seed={seed!r}"
        )
    try:
        seed = tf.convert_to_tensor(seed)
    except (TypeError, ValueError):
        raise ValueError(
            "`seed` must be None, an int, a keras.random.SeedGenerator or an "
            f"integer tensor of shape [2]. Received: seed={seed!r}"
        ) from None
    if not seed.dtype.is_integer or seed.shape.rank != 1 or (
        seed.shape[0] is not None and seed.shape[0] != 2
    ):
        raise ValueError(
            "`seed` tensors must be integer with shape [2]. Received: "
            f"seed with dtype={seed.dtype.name}, shape={seed.shape}"
        )
    if seed.dtype.size == 8:
        mask = tf.constant(0xFFFFFFFF, seed.dtype)
        return tf.cast(tf.bitwise.bitwise_and(seed, mask), tf.uint32)
    if seed.dtype.size == 4:
        return tf.bitcast(seed, tf.uint32)
    return tf.cast(seed, tf.uint32)


def fold_in(seed: SeedLike, data: int) -> tf.Tensor:
    """Derives an independent seed from `seed` and a Python int `data`.

    Used to give each quantizer inside a layer its own stream from one draw.
    """
    seed = canonical_seed(seed)
    first = _mix32(seed[0] ^ _mix32(_u32(data) + _u32(_GOLDEN)))
    return tf.stack([first, seed[1]])


def random_bits(shape: TensorLike, seed: SeedLike) -> tf.Tensor:
    """Uniformly distributed `uint32` bits of the given shape.

    Element `i` (row-major position) is `mix((i * 0x9E3779B9 + k1) ^ k0)`
    with keys `k0, k1` hashed from the seed. Deterministic in
    `(seed, shape)`.

    Args:
        shape: a 1-D integer tensor or list.
        seed: see `canonical_seed`.
    """
    seed = canonical_seed(seed)
    k0 = _mix32(seed[0] ^ _u32(0x85EBCA6B))
    k1 = _mix32(seed[1] ^ _u32(0xC2B2AE35) ^ k0)
    size = tf.reduce_prod(tf.cast(shape, tf.int64))
    static_size = tf.get_static_value(size)
    if static_size is not None and static_size < 2**31:
        # int32 iota vectorizes better than int64; same values.
        index = tf.bitcast(tf.range(tf.cast(size, tf.int32)), tf.uint32)
    else:
        index = tf.cast(tf.range(size) & 0xFFFFFFFF, tf.uint32)
    h = _mix32((index * _u32(_GOLDEN) + k1) ^ k0)
    return tf.reshape(h, shape)


def uniform(shape: TensorLike, seed: SeedLike) -> tf.Tensor:
    """Float32 samples of `U[0, 1)` on the grid `j * 2^-24` (from `random_bits`)."""
    bits = random_bits(shape, seed)
    return bits_to_uniform(bits)


def bits_to_uniform(bits):
    """Maps `uint32` random bits to float32 in `[0, 1)` (top 24 bits)."""
    top = tf.bitwise.right_shift(bits, _u32(8))
    return tf.cast(tf.cast(top, tf.int32), tf.float32) * (2.0**-24)


def round_nearest(x: TensorLike) -> tf.Tensor:
    """Rounds to the nearest integer, ties to even (`tf.round`)."""
    return tf.round(x)


def round_stochastic(
    x: TensorLike, seed: SeedLike = None, noise: TensorLike | None = None
) -> tf.Tensor:
    """Unbiased stochastic rounding: `floor(x + u)`, computed exactly.

    Args:
        x: float tensor.
        seed: see `canonical_seed`; ignored if `noise` is given.
        noise: optional float tensor of `U[0, 1)` samples shaped like `x`.

    Returns:
        A tensor like `x` holding integers, `E[result] = x`.
    """
    x = tf.convert_to_tensor(x)
    if noise is None:
        noise = tf.cast(uniform(tf.shape(x), seed), x.dtype)
    down = tf.floor(x)
    return down + tf.cast(1.0 - noise <= x - down, x.dtype)


def round_to_integer(
    x: TensorLike, rounding: str, seed: SeedLike = None, noise: TensorLike | None = None
) -> tf.Tensor:
    """`round_nearest(x)` or `round_stochastic(x, seed, noise)`, by `rounding`.

    The one place where a rounding mode picks its rounding function: every
    quantization kernel calls this.

    Args:
        x: float tensor.
        rounding: `"nearest"` or `"stochastic"`.
        seed: for `"stochastic"`, see `canonical_seed`.
        noise: for `"stochastic"`, optional `U[0, 1)` samples shaped like `x`.
    """
    if rounding == "nearest":
        return round_nearest(x)
    return round_stochastic(x, seed, noise)
