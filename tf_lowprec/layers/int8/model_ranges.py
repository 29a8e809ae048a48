"""Finding the int8 activation quantizers of a model and whether they were learned."""

from __future__ import annotations

import keras

from tf_lowprec.layers.int8.activation_quantizer import ActivationQuantizer


def activation_quantizers(model: keras.layers.Layer) -> list[ActivationQuantizer]:
    """Every `ActivationQuantizer` in `model`, nested layers included, in order."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, ActivationQuantizer)
    ]


def untrained_quantizers(model: keras.layers.Layer) -> list[str]:
    """Paths of the activation quantizers whose range was never learned."""
    return [
        q.range_min.path.rsplit("/", 1)[0]
        for q in activation_quantizers(model)
        if float(keras.ops.convert_to_numpy(q.updates)) == 0.0
    ]
