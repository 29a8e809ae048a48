"""Shared plumbing of the quantize layers: format arguments, seeds, config.

Not a layer itself: a small mixin used by `Quantize`, `QuantizedDense` and
`QuantizedConv2D` so that each of those files holds only its own math.
"""

import keras

from tf_lowprec.formats import deserialize_format
from tf_lowprec.formats import serialize_format
from tf_lowprec.ops import rounding as rounding_lib
from tf_lowprec.ops.quantize import quantize
from tf_lowprec.ops.quantize import quantize_gradient
from tf_lowprec.ops.rounding import check_rounding


class QuantizationOptions:
    """Mixin: named formats, forward/backward rounding and a seed generator.

    Subclasses call `_init_quantization(formats, rounding, backward_rounding,
    seed, backward=(...))` from `__init__`, where `formats` maps argument
    names to formats and `backward` lists the names applied to gradients.
    """

    def _init_quantization(
        self, formats, rounding, backward_rounding, seed, backward=()
    ):
        check_rounding(rounding, "rounding")
        check_rounding(backward_rounding, "backward_rounding")
        self._format_names = list(formats)
        self._backward_names = set(backward)
        for name, value in formats.items():
            setattr(self, name, deserialize_format(value, name))
        self.rounding = rounding
        self.backward_rounding = backward_rounding
        self.seed = seed
        self._stream_index = {name: i for i, name in enumerate(formats)}
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _quantization_config(self):
        config = {name: serialize_format(getattr(self, name)) for name in self._format_names}
        config.update(
            rounding=self.rounding,
            backward_rounding=self.backward_rounding,
            seed=self.seed,
        )
        return config

    def _uses_randomness(self):
        for name in self._format_names:
            if getattr(self, name) is None:
                continue
            mode = self.backward_rounding if name in self._backward_names else self.rounding
            if mode == "stochastic":
                return True
        return False

    def _draw_seed(self):
        """One draw per call; each quantizer folds in its own index."""
        if not self._uses_randomness():
            return None
        return self.seed_generator.next()

    def _q(self, x, name, seed):
        """Applies the format `name` forward (or backward, if it is one)."""
        fmt = getattr(self, name)
        if fmt is None:
            return x
        stream = None
        if seed is not None:
            stream = rounding_lib.fold_in(seed, self._stream_index[name])
        if name in self._backward_names:
            return quantize_gradient(x, fmt, self.backward_rounding, stream)
        return quantize(x, fmt, self.rounding, stream)
