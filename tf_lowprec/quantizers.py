"""`Quantizer(format, rounding, seed)`: the one notion of "quantizer" every API takes.

A `Quantizer` is a small, immutable value object: a number format from
`tf_lowprec.formats`, a rounding mode and an optional seed. Calling it
quantizes a tensor:

    q = Quantizer(FixedPoint(8, 4), "stochastic", seed=3)
    q(x)                           == ops.quantize(x, FixedPoint(8, 4), "stochastic", 3)
    q(x, step=t, index=i, stream=s) == ops.quantize(x, ..., stream_seed(3, t, i, s))
    q.gradient(x)                  == ops.quantize_gradient(x, FixedPoint(8, 4), "stochastic", 3)

With a `ScaledInteger(bits)` format the scale is given per call
(`q(x, scale=delta)` == `ops.quantize_scaled(x, delta, bits, rounding, seed)`):
HALP's offset grid.

Every quantizing API takes one the same way (layers' `*_quantizer=`,
`LowPrecision(*_quantizer=)`, `HALP(offset_quantizer=)`, the SWALP recipe);
`as_quantizer` turns what the user passed into one: a `Quantizer`, its
serialized config, a bare format (then rounded with that API's documented
default rounding) or `None`; anything else is a `ValueError` naming the
argument.

Seed streams (`stream_seed`): every stochastic rounding in tf_lowprec draws
from one rule,

    stream_seed(seed, step, index, stream) = fold_in([seed, step], index * 64 + stream)

with `fold_in` of `tf_lowprec.ops.rounding`: `seed` the user's integer
seed, `step` a counter that advances once per use (an optimizer's
`iterations`, a layer's call count), `index` the variable's position in an
optimizer's variable list (0 in layers) and `stream` which quantity of that
variable it is (gradient, weight, momentum, ...; a layer's k-th quantization
point). Stateless in `(seed, step, index, stream)`: replicas under
`tf.distribute` draw the same numbers, and a run resumed from a `.keras`
file (which saves the step) continues the same sequence.

References:
    Zhang, Yang, De Sa, "QPyTorch: A Low-Precision Arithmetic Simulation
    Framework", 2019 (`qtorch.quant.Quantizer`: format + rounding as one
    object).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self, TypeAlias

import keras
import tensorflow as tf

from tf_lowprec import formats, validation
from tf_lowprec.ops import rounding as rounding_lib
from tf_lowprec.ops.quantize import quantize, quantize_gradient
from tf_lowprec.ops.scaled_integer import quantize_scaled

if TYPE_CHECKING:
    from tensorflow.types.experimental import TensorLike

__all__ = ["Quantizer", "QuantizerLike", "as_quantizer", "stream_seed", "STREAMS_PER_INDEX"]

STREAMS_PER_INDEX = 64

_ALL_FORMATS = formats.QUANTIZE_FORMATS + (formats.ScaledInteger,)


def stream_seed(
    seed: int | TensorLike, step: int | TensorLike, index: int = 0, stream: int = 0
) -> tf.Tensor:
    """The `uint32[2]` seed of one draw: `fold_in([seed, step], index * 64 + stream)`.

    Args:
        seed: int (or integer scalar tensor), the user's seed.
        step: int or integer scalar tensor, advances once per use.
        index: Python int in `[0, 2^26)`, e.g. a variable's position.
            Defaults to `0`.
        stream: Python int in `[0, 64)`, the quantity drawn for. Defaults
            to `0`.

    Returns:
        A `tf.uint32` tensor of shape `[2]` (see `tf_lowprec.ops.rounding`).
    """
    if not 0 <= stream < STREAMS_PER_INDEX:
        raise ValueError(
            f"`stream` must be in [0, {STREAMS_PER_INDEX}). Received: stream={stream!r}"
        )
    base = tf.stack(
        [
            tf.cast(tf.convert_to_tensor(seed), tf.int64),
            tf.cast(tf.convert_to_tensor(step), tf.int64),
        ]
    )
    return rounding_lib.fold_in(base, index * STREAMS_PER_INDEX + stream)


@keras.saving.register_keras_serializable(package="tf_lowprec")
class Quantizer:
    """A number format, a rounding mode and a seed: `q(x)` quantizes `x`.

    Args:
        format: a `tf_lowprec.formats` format (`FixedPoint`,
            `BlockFloatingPoint`, `FloatingPoint`, `IntegerAffine` or
            `ScaledInteger`) or its serialized dict.
        rounding: `"nearest"` (half to even) or `"stochastic"` (unbiased).
            Defaults to `"nearest"`.
        seed: `None` or an int in `[0, 2^31)`: the stochastic-rounding seed.
            `None` means fresh randomness on each call, unless the API using
            the quantizer supplies its own seed (an optimizer's or a layer's
            `seed`). Defaults to `None`.

    Quantizers compare by value, hash, and have a readable `repr`. For
    code written against the former `(format, rounding)` pairs, a quantizer
    also unpacks (`fmt, rounding = q`), indexes (`q[0]`, `q[1]`) and
    compares equal to the pair `(format, rounding)` (deprecated).

    Example:

    >>> q = Quantizer(FixedPoint(8, 4))
    >>> q([0.3, -1.26, 100.0]).numpy()
    array([ 0.3125, -1.25  ,  7.9375], dtype=float32)
    """

    __slots__ = ("_format", "_rounding", "_seed")

    def __init__(
        self,
        format: formats.FormatLike,  # noqa: A002
        rounding: str = "nearest",
        seed: int | None = None,
    ) -> None:
        self._format = formats.deserialize_format(format, "format", _ALL_FORMATS)
        if self._format is None:
            raise ValueError("`format` of a Quantizer must be a number format. Received: format=None")
        rounding_lib.check_rounding(rounding)
        self._rounding = rounding
        self._seed = validation.seed(seed)

    @property
    def format(self) -> formats.NumberFormat:
        return self._format

    @property
    def rounding(self) -> str:
        return self._rounding

    @property
    def seed(self) -> int | None:
        return self._seed

    @property
    def stochastic(self) -> bool:
        """Whether this quantizer draws random numbers."""
        return self._rounding == "stochastic"

    def draw_seed(
        self,
        step: int | TensorLike | None = None,
        index: int = 0,
        stream: int = 0,
        seed: int | TensorLike | None = None,
    ) -> int | tf.Tensor | None:
        """The seed handed to the kernel (`None` for nearest rounding).

        `seed` is used when the quantizer has none of its own. Without
        `step` the seed is used as is (an int: one fixed stream); with
        `step`, `stream_seed(seed, step, index, stream)`.
        """
        if not self.stochastic:
            return None
        base = self._seed if self._seed is not None else seed
        if step is None:
            return base
        if base is None:
            raise ValueError(
                "A seed stream (`step=`) needs a seed: give the Quantizer or "
                f"the call a `seed`. Received: {self!r}"
            )
        return stream_seed(base, step, index, stream)

    def __call__(
        self,
        x: TensorLike,
        *,
        step: int | TensorLike | None = None,
        index: int = 0,
        stream: int = 0,
        seed: int | TensorLike | None = None,
        scale: float | TensorLike | None = None,
    ) -> tf.Tensor:
        """Quantizes `x` (straight-through gradient).

        Args:
            x: a float tensor.
            step, index, stream: select the seed stream (see `draw_seed`).
            seed: the seed to use if the quantizer has none.
            scale: the grid spacing, required for (and only for) a
                `ScaledInteger` format.
        """
        drawn = self.draw_seed(step, index, stream, seed)
        if isinstance(self._format, formats.ScaledInteger):
            if scale is None:
                raise ValueError(
                    f"A ScaledInteger quantizer needs `scale`. Received: scale=None for {self!r}"
                )
            return quantize_scaled(x, scale, self._format.bits, self._rounding, drawn)
        if scale is not None:
            raise ValueError(
                f"`scale` is only for ScaledInteger formats. Received: scale={scale!r} "
                f"for {self!r}"
            )
        return quantize(x, self._format, self._rounding, drawn)

    def gradient(
        self,
        x: TensorLike,
        *,
        step: int | TensorLike | None = None,
        index: int = 0,
        stream: int = 0,
        seed: int | TensorLike | None = None,
    ) -> tf.Tensor:
        """Identity forward, quantizes the incoming gradient of `x`."""
        self._check_fixed_grid()
        drawn = self.draw_seed(step, index, stream, seed)
        return quantize_gradient(x, self._format, self._rounding, drawn)

    def _check_fixed_grid(self):
        formats.check_format(self._format, "format")

    # Value object.

    def _key(self):
        return (self._format, self._rounding, self._seed)

    def __eq__(self, other):
        if isinstance(other, Quantizer):
            return self._key() == other._key()
        if isinstance(other, tuple) and len(other) == 2:
            return (self._format, self._rounding) == other
        return NotImplemented

    def __hash__(self):
        return hash(self._key())

    def __iter__(self):
        return iter((self._format, self._rounding))

    def __getitem__(self, item):
        return (self._format, self._rounding)[item]

    def __len__(self):
        return 2

    def __repr__(self):
        seed = "" if self._seed is None else f", seed={self._seed}"
        return f"Quantizer({self._format!r}, {self._rounding!r}{seed})"

    def get_config(self) -> dict[str, Any]:
        return {
            "format": formats.serialize_format(self._format),
            "rounding": self._rounding,
            "seed": self._seed,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)


QuantizerLike: TypeAlias = Quantizer | formats.FormatLike
"""What an argument that takes a quantizer accepts (besides `None`): a
`Quantizer`, a bare format, or the serialized dict of either (`as_quantizer`)."""


def as_quantizer(
    value: QuantizerLike | None,
    name: str,
    default_rounding: str = "nearest",
    allowed: tuple[type[formats.NumberFormat], ...] = _ALL_FORMATS,
) -> Quantizer | None:
    """A `Quantizer` from what an API argument received, or `None`.

    Accepts a `Quantizer`, a bare format (becomes `Quantizer(value,
    default_rounding)`, the API's documented default), a serialized
    `Quantizer` or format, or `None`.

    Raises:
        ValueError: naming `name` and the value, for anything else.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        if "class_name" in value:
            value = keras.saving.deserialize_keras_object(value)
        elif "format" in value:
            value = Quantizer.from_config(value)
    if isinstance(value, Quantizer):
        quantizer = value
    elif isinstance(value, formats.NumberFormat):
        quantizer = Quantizer(value, default_rounding)
    else:
        raise ValueError(
            f"`{name}` must be a tf_lowprec.quantizers.Quantizer, a number format "
            f"or None. Received: {name}={value!r}"
        )
    if type(quantizer.format) not in allowed:
        formats.check_format(quantizer.format, name, allowed)
    return quantizer
