"""Shared plumbing of the quantize layers: quantization points, seeds, config.

Not a layer itself: a small mixin used by `Quantize`, `QuantizedDense` and
`QuantizedConv2D` so that each of those files holds only its own math.

A layer has named quantization points (`"weight"`, `"output"`, ...), each
a `tf_lowprec.quantizers.Quantizer` or `None`, given as `<point>_quantizer=`.
A bare format there becomes `Quantizer(format, rounding)` for a forward
point and `Quantizer(format, backward_rounding)` for a backward one (the
layer's `rounding` / `backward_rounding` are these defaults). The former
`<point>_format=` keywords still work (deprecated for one release).

Randomness: one `keras.random.SeedGenerator(seed)` per layer is advanced once
per call; its state `[seed, calls]` feeds the package's one seed-stream rule,
`stream_seed(seed, calls, 0, k)` for the layer's `k`-th point (a quantizer
with its own seed uses it instead of the layer's). The generator's state is
saved with the layer (`.keras` files), so a resumed run draws what the
uninterrupted one would have drawn.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras

from tf_lowprec import formats, validation
from tf_lowprec.ops.rounding import check_rounding
from tf_lowprec.quantizers import as_quantizer

_SEED_STATE_KEY = "quantization_seed_state"


def pop_format_aliases(kwargs, points):
    """Removes the deprecated `<point>_format` keywords from `kwargs`."""
    aliases = {}
    for point in points:
        key = f"{point}_format"
        if key in kwargs:
            aliases[point] = kwargs.pop(key)
            if aliases[point] is not None:
                warnings.warn(
                    f"`{key}=` is deprecated; pass `{point}_quantizer=` (a "
                    "tf_lowprec.quantizers.Quantizer or a format).",
                    DeprecationWarning,
                    stacklevel=3,
                )
    return aliases


def format_alias(point):
    """A read-only `<point>_format` property: the format of `<point>_quantizer`."""

    def get(self: Any) -> formats.NumberFormat | None:
        quantizer = getattr(self, f"{point}_quantizer")
        return None if quantizer is None else quantizer.format

    return property(get, doc=f"Format of `{point}_quantizer` (or None); deprecated alias.")


class QuantizationOptions:
    """Mixin: named quantizers, default roundings and a saved seed generator.

    Subclasses pop the deprecated aliases from `**kwargs` with
    `pop_format_aliases` before calling the Keras layer's `__init__`, then
    call `_init_quantization(quantizers, aliases, rounding,
    backward_rounding, seed, backward=(...))`, where `quantizers` maps the
    point names, in their fixed stream order, to the `<point>_quantizer`
    arguments and `backward` lists the points applied to gradients.
    """

    def _init_quantization(
        self, quantizers, aliases, rounding, backward_rounding, seed, backward=()
    ):
        check_rounding(rounding, "rounding")
        check_rounding(backward_rounding, "backward_rounding")
        self._points = list(quantizers)
        self._backward_points = set(backward)
        for point, value in quantizers.items():
            default = backward_rounding if point in self._backward_points else rounding
            alias = aliases.get(point)
            if alias is not None:
                if value is not None:
                    raise ValueError(
                        f"Pass `{point}_quantizer` or the deprecated `{point}_format`, "
                        f"not both. Received: {point}_quantizer={value!r}, "
                        f"{point}_format={alias!r}"
                    )
                value = formats.deserialize_format(alias, f"{point}_format")
            quantizer = as_quantizer(
                value, f"{point}_quantizer", default, allowed=formats.QUANTIZE_FORMATS
            )
            setattr(self, f"{point}_quantizer", quantizer)
        self.rounding = rounding
        self.backward_rounding = backward_rounding
        self.seed = validation.seed(seed)
        self._stream_index = {point: i for i, point in enumerate(quantizers)}
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _quantizer(self, point):
        return getattr(self, f"{point}_quantizer")

    def _quantization_config(self):
        config = {}
        for point in self._points:
            quantizer = self._quantizer(point)
            config[f"{point}_quantizer"] = None if quantizer is None else quantizer.get_config()
        config.update(
            rounding=self.rounding,
            backward_rounding=self.backward_rounding,
            seed=self.seed,
        )
        return config

    def _uses_randomness(self):
        return any(
            q is not None and q.stochastic for q in map(self._quantizer, self._points)
        )

    def _draw_seed(self):
        """One draw per call: the generator state `[seed, calls]`, or None."""
        if not self._uses_randomness():
            return None
        return self.seed_generator.next()

    def _q(self, x, point, state):
        """Applies the quantizer of `point` forward (or backward, if it is one)."""
        quantizer = self._quantizer(point)
        if quantizer is None:
            return x
        stream = {}
        if state is not None:
            stream = dict(step=state[1], stream=self._stream_index[point], seed=state[0])
        if point in self._backward_points:
            return quantizer.gradient(x, **stream)
        return quantizer(x, **stream)

    # The seed generator's state is not among Keras's saved layer variables.

    def save_own_variables(self, store: dict[str, Any]) -> None:
        super().save_own_variables(store)
        store[_SEED_STATE_KEY] = self.seed_generator.state

    def load_own_variables(self, store: dict[str, Any]) -> None:
        keys = list(store.keys())
        if _SEED_STATE_KEY not in keys:  # saved before the state was kept
            super().load_own_variables(store)
            return
        super().load_own_variables({k: store[k] for k in keys if k != _SEED_STATE_KEY})
        self.seed_generator.state.assign(store[_SEED_STATE_KEY])
