"""Low-precision number formats: inert, validated, serializable value objects.

A format only says *which* numbers exist; rounding and clamping live in
`tf_lowprec.ops.quantize`. Every format is a frozen dataclass, so it is
hashable, compares by value and has a readable `repr`. Every format has
`get_config`/`from_config` and is registered with
`keras.saving.register_keras_serializable(package="tf_lowprec")`, so a layer
that holds one saves to and loads from `.keras` files.

Formats and their grids (`ulp` = unit in the last place, the grid spacing):

| format | representable values |
|---|---|
| `FixedPoint(wl, fl)` | `k * 2^-fl`, integer `k` in `[-2^(wl-1), 2^(wl-1) - 1]` |
| `BlockFloatingPoint(wl, axis)` | per block: `k * 2^(E + 2 - wl)`, `abs(k) <= 2^(wl-1) - 1`, `E` shared |
| `FloatingPoint(e, m)` | IEEE-754-style binary float with `e` exponent and `m` mantissa bits |
| `IntegerAffine(b, symmetric)` | `scale * (k - zero_point)`, `b`-bit integer `k`, scale from data |

References:
    Zhang, Yang, De Sa, "QPyTorch: A Low-Precision Arithmetic Simulation
    Framework", 2019 (number objects: github.com/Tiiiger/QPyTorch
    `qtorch/number.py`).
    Yang, Zhang, Wang, De Sa, "SWALP: Stochastic Weight Averaging in
    Low-Precision Training", ICML 2019 (github.com/stevenygd/SWALP).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Self, TypeAlias

import keras

from tf_lowprec import validation

__all__ = [
    "NumberFormat",
    "FormatLike",
    "FixedPoint",
    "BlockFloatingPoint",
    "FloatingPoint",
    "IntegerAffine",
    "ScaledInteger",
    "check_format",
    "serialize_format",
    "deserialize_format",
]


@dataclasses.dataclass(frozen=True)
class NumberFormat:
    """Base class of the formats: config round trip, equality, hashing."""

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments as a flat, JSON-friendly dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)


@keras.saving.register_keras_serializable(package="tf_lowprec")
@dataclasses.dataclass(frozen=True)
class FixedPoint(NumberFormat):
    """Signed two's-complement fixed point: `word_length` bits, `2^-fl` steps.

    Representable values are `k * ulp` with `ulp = 2^-fractional_length` and
    the integer `k` in `[-2^(wl-1), 2^(wl-1) - 1]`, i.e. the range

        [-2^(wl - fl - 1),  2^(wl - fl - 1) - 2^-fl]

    Quantizing rounds `x / ulp` to an integer and then clamps it into that
    range (out-of-range values saturate at the ends). This is QPyTorch's
    `FixedPoint(wl, fl, clamp=True, symmetric=False)`.

    Args:
        word_length: total number of bits including the sign, in `[2, 24]`
            (24 keeps every grid value exactly representable in float32).
        fractional_length: number of fractional bits; may be negative (steps
            coarser than 1) or larger than `word_length` (a range below 1).
            Must keep `ulp` and the range within float32's normal numbers:
            `word_length - 128 <= fractional_length <= 126`.

    Example:

    >>> fmt = FixedPoint(8, 4)      # steps of 1/16 in [-8, 7.9375]
    >>> fmt.ulp, fmt.min_value, fmt.max_value
    (0.0625, -8.0, 7.9375)
    """

    word_length: int
    fractional_length: int

    def __post_init__(self) -> None:
        wl = validation.integer(self.word_length, "word_length", 2, 24)
        fl = validation.integer(self.fractional_length, "fractional_length", wl - 128, 126)
        self._set("word_length", wl)
        self._set("fractional_length", fl)

    @property
    def ulp(self) -> float:
        """Grid spacing `2^-fractional_length`."""
        return 2.0 ** -self.fractional_length

    @property
    def min_value(self) -> float:
        """Most negative representable value, `-2^(wl - fl - 1)`."""
        return -(2.0 ** (self.word_length - self.fractional_length - 1))

    @property
    def max_value(self) -> float:
        """Largest representable value, `2^(wl - fl - 1) - 2^-fl`."""
        return -self.min_value - self.ulp


@keras.saving.register_keras_serializable(package="tf_lowprec")
@dataclasses.dataclass(frozen=True)
class BlockFloatingPoint(NumberFormat):
    """Block floating point: one shared exponent per block, `wl`-bit mantissas.

    Every block shares the exponent `E = floor(log2(max|x|))` of its largest
    finite magnitude, and each entry becomes `k * 2^(E + 2 - wl)` with the
    integer `k` in `[-(2^(wl-1) - 1), 2^(wl-1) - 1]`: a `wl`-bit signed
    mantissa whose top non-sign bit is worth `2^E`, with the symmetric range
    (as QPyTorch). The block's largest magnitude keeps `wl - 1` significant
    bits. The symmetric range keeps every result below `2^(E+1)` in
    magnitude, so quantizing again finds the same `E` (idempotence); SWALP's
    two's-complement range also allows `-2^(E+1)`, which moves the block to
    the next exponent when re-quantized.

    Blocks:
        * `axis=None`: one exponent for the whole tensor.
        * `axis=d`: one exponent per index along dimension `d` (the maximum
          runs over all other dimensions), as QPyTorch's `dim=d`. `axis=0` on a
          Dense kernel `(in, out)` gives one exponent per input row; on
          activations `(batch, ...)` one per sample. Negative `d` counts from
          the end.
        * Small tensors: a tensor whose rank is at most `small_block_rank` is
          always one block, whatever `axis` says. This is SWALP's
          `--small-block` rule: `1` ("FC", the default) gives biases one
          shared exponent, `2` ("Conv") does the same for Dense kernels, and
          `0` disables the rule (QPyTorch semantics: a 1-D tensor with
          `axis=0` gets one exponent per element).

    Shared exponents are clamped to `[word_length - 128, 126]` so that every
    scale and grid point is a normal float32 (TensorFlow flushes subnormals
    to zero on CPU). Only blocks whose largest
    magnitude is below `2^(wl - 127)` (about `1.9e-36` for `wl=8`) or at
    least `2^127` are affected; SWALP clamps at `[-128, 127]` and QPyTorch
    not at all.

    Args:
        word_length: mantissa bits including the sign, in `[2, 24]`.
        axis: `None` or the dimension that indexes the blocks. Defaults to
            `0`.
        small_block_rank: tensors of rank `<= small_block_rank` are one block,
            in `[0, 8]`. Defaults to `1`.
    """

    word_length: int
    axis: int | None = 0
    small_block_rank: int = 1

    def __post_init__(self) -> None:
        self._set(
            "word_length", validation.integer(self.word_length, "word_length", 2, 24)
        )
        if self.axis is not None:
            self._set("axis", validation.integer(self.axis, "axis"))
        self._set(
            "small_block_rank",
            validation.integer(self.small_block_rank, "small_block_rank", 0, 8),
        )

    @property
    def min_exponent(self) -> int:
        """Smallest shared exponent `E` (keeps the ulp a normal float32)."""
        return self.word_length - 128

    @property
    def max_exponent(self) -> int:
        """Largest shared exponent `E` (keeps `2^(wl-2-E)` a normal float32)."""
        return 126

    def reduction_axes(self, rank: int) -> list[int] | None:
        """Dimensions that the block maximum runs over, for a rank-`rank` tensor.

        Returns `None` for "all dimensions" (a single block).

        Raises:
            ValueError: if `axis` is out of range for a tensor of this rank.
        """
        if self.axis is None or rank <= self.small_block_rank:
            return None
        if not -rank <= self.axis < rank:
            raise ValueError(
                f"`axis` of BlockFloatingPoint is out of range for a tensor of "
                f"rank {rank}. Received: axis={self.axis}"
            )
        axis = self.axis % rank
        return [d for d in range(rank) if d != axis]


@keras.saving.register_keras_serializable(package="tf_lowprec")
@dataclasses.dataclass(frozen=True)
class FloatingPoint(NumberFormat):
    """IEEE-754-style binary floating point with `e` exponent, `m` mantissa bits.

    With `bias = 2^(e-1) - 1`, the normal numbers are `(1 + f / 2^m) * 2^E`
    for `E` in `[1 - bias, bias]` and the subnormals are `f * 2^(1-bias-m)`
    (gradual underflow). As in IEEE 754 the top exponent code is reserved
    for inf/NaN, so

        max_value = (2 - 2^-m) * 2^bias,  min_normal = 2^(1 - bias),
        min_subnormal = 2^(1 - bias - m).

    `FloatingPoint(8, 7)` is bfloat16, `FloatingPoint(5, 10)` is float16,
    `FloatingPoint(8, 23)` is float32 (quantizing is the identity) and
    `FloatingPoint(5, 2)` / `FloatingPoint(4, 3)` are the IEEE-style 8-bit
    floats (note: the OCP "E4M3FN" type keeps no inf and reaches 448; this
    format stops at 240).

    Finite values that round beyond `max_value` saturate to `+-max_value`
    (they do not become inf); see `tf_lowprec.ops.quantize`.

    Args:
        exponent_bits: in `[2, 8]` (float32 is the carrier type).
        mantissa_bits: stored fraction bits, in `[0, 23]`.
    """

    exponent_bits: int
    mantissa_bits: int

    def __post_init__(self) -> None:
        self._set(
            "exponent_bits",
            validation.integer(self.exponent_bits, "exponent_bits", 2, 8),
        )
        self._set(
            "mantissa_bits",
            validation.integer(self.mantissa_bits, "mantissa_bits", 0, 23),
        )

    @property
    def bias(self) -> int:
        return 2 ** (self.exponent_bits - 1) - 1

    @property
    def max_value(self) -> float:
        return (2.0 - 2.0 ** -self.mantissa_bits) * 2.0**self.bias

    @property
    def min_normal(self) -> float:
        return 2.0 ** (1 - self.bias)

    @property
    def min_subnormal(self) -> float:
        return 2.0 ** (1 - self.bias - self.mantissa_bits)


@keras.saving.register_keras_serializable(package="tf_lowprec")
@dataclasses.dataclass(frozen=True)
class IntegerAffine(NumberFormat):
    """`bits`-bit integers with a scale (and zero point) fitted to the data.

    A value is stored as an integer code `k` and read back as
    `scale * (k - zero_point)`. The scale is recomputed from the tensor it
    quantizes (per tensor, or per index along `per_channel_axis`):

    * `symmetric=True`: `zero_point = 0`, codes in `[-(2^(b-1) - 1),
      2^(b-1) - 1]` (the "narrow" range, as TFLite and Keras use for weights)
      and `scale = max|x| / (2^(b-1) - 1)`.
    * `symmetric=False`: codes in `[-2^(b-1), 2^(b-1) - 1]`; the range
      `[lo, hi] = [min(min x, 0), max(max x, 0)]` (it always contains 0, so 0
      is exact) maps onto it with `scale = (hi - lo) / (2^b - 1)` and
      `zero_point = round(-2^(b-1) - lo / scale)`.

    A channel that is all zero gets `scale = 1` (codes 0): no NaN.

    This is the scheme of post-training weight quantization (8 and 4 bits,
    `tf_lowprec.layers.quantize_weights`); `tf_lowprec.ops.quantize` with it
    is "fake quantization" with a dynamic range.

    Args:
        bits: code width, in `[2, 16]`.
        symmetric: symmetric (zero point 0) or asymmetric range. Defaults to
            `True`.
        per_channel_axis: `None` for one scale per tensor, or the dimension
            with one scale per index (e.g. `-1`, the output channels of Dense
            and Conv2D kernels). Defaults to `None`.
    """

    bits: int
    symmetric: bool = True
    per_channel_axis: int | None = None

    def __post_init__(self) -> None:
        self._set("bits", validation.integer(self.bits, "bits", 2, 16))
        self._set("symmetric", validation.boolean(self.symmetric, "symmetric"))
        if self.per_channel_axis is not None:
            self._set(
                "per_channel_axis",
                validation.integer(self.per_channel_axis, "per_channel_axis"),
            )

    @property
    def code_min(self) -> int:
        """Smallest integer code."""
        return -(2 ** (self.bits - 1)) + (1 if self.symmetric else 0)

    @property
    def code_max(self) -> int:
        """Largest integer code."""
        return 2 ** (self.bits - 1) - 1


@keras.saving.register_keras_serializable(package="tf_lowprec")
@dataclasses.dataclass(frozen=True)
class ScaledInteger(NumberFormat):
    """`bits`-bit two's-complement integers times a scale given at each call.

    Representable values are `k * scale` with the integer `k` in
    `[-2^(bits-1), 2^(bits-1) - 1]`; unlike `FixedPoint` the scale is any
    positive float (or tensor) supplied when quantizing
    (`tf_lowprec.ops.quantize_scaled(x, scale, bits)`), not `2^-fl`. This is
    HALP's offset grid, `scale = delta = ||g~|| / (mu (2^(bits-1) - 1))`
    recomputed at every snapshot (De Sa et al., 2018).

    Args:
        bits: code width, in `[2, 32]` (above 24 bits the values are only
            exact when computed in float64, as HALP does).
    """

    bits: int

    def __post_init__(self) -> None:
        self._set("bits", validation.integer(self.bits, "bits", 2, 32))

    @property
    def code_min(self) -> int:
        """Smallest integer code, `-2^(bits-1)`."""
        return -(2 ** (self.bits - 1))

    @property
    def code_max(self) -> int:
        """Largest integer code, `2^(bits-1) - 1`."""
        return 2 ** (self.bits - 1) - 1


# Formats with a fixed grid, which `tf_lowprec.ops.quantize(x, fmt)` takes
# (a `ScaledInteger` also needs its scale).
QUANTIZE_FORMATS: tuple[type[NumberFormat], ...] = (
    FixedPoint, BlockFloatingPoint, FloatingPoint, IntegerAffine
)

FormatLike: TypeAlias = NumberFormat | dict[str, Any]
"""What an argument that takes a format accepts: a format or its serialized dict."""


def check_format(
    fmt: object, name: str = "fmt", allowed: tuple[type[NumberFormat], ...] = QUANTIZE_FORMATS
) -> None:
    """Raises `ValueError` unless `fmt` is one of the `allowed` format types."""
    if type(fmt) not in allowed:
        names = [cls.__name__ for cls in allowed]
        listed = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
        raise ValueError(
            f"`{name}` must be a {listed} format. Received: {name}={fmt!r}"
        )


def serialize_format(fmt: NumberFormat | None) -> dict[str, Any] | None:
    """The Keras-serialized dict of a format, or `None` for `None`."""
    return None if fmt is None else keras.saving.serialize_keras_object(fmt)


def deserialize_format(
    value: FormatLike | None,
    name: str = "fmt",
    allowed: tuple[type[NumberFormat], ...] = QUANTIZE_FORMATS,
) -> NumberFormat | None:
    """A format from a format object, its serialized dict, or `None`.

    Raises:
        ValueError: naming `name`, for anything else.
    """
    if isinstance(value, dict):
        value = keras.saving.deserialize_keras_object(value)
    if value is not None:
        check_format(value, name, allowed)
    return value
