"""`quantize_model(model, config)`: swap Dense/Conv2D for their quantized versions."""

from __future__ import annotations

import warnings
from typing import Any

import keras

from tf_lowprec.formats import QUANTIZE_FORMATS, deserialize_format
from tf_lowprec.layers.int8.scheme import quantize_model_int8
from tf_lowprec.layers.quantized_conv2d import QuantizedConv2D
from tf_lowprec.layers.quantized_dense import QuantizedDense
from tf_lowprec.models import rewrite
from tf_lowprec.ops.rounding import check_rounding
from tf_lowprec.quantizers import as_quantizer

# Layer class name -> quantized replacement class.
QUANTIZED_VERSIONS = {
    "Dense": QuantizedDense,
    "QuantizedDense": QuantizedDense,
    "Conv2D": QuantizedConv2D,
    "QuantizedConv2D": QuantizedConv2D,
}

_POINTS = ("weight", "input", "output", "error", "gradient")
SPEC_KEYS = (
    *(f"{point}_quantizer" for point in _POINTS),
    *(f"{point}_format" for point in _POINTS),  # older spelling
    "rounding",
    "backward_rounding",
    "seed",
)


def _check_spec(key, spec):
    if not isinstance(spec, dict):
        raise ValueError(
            f"`config[{key!r}]` must be a dict of quantization arguments. "
            f"Received: config[{key!r}]={spec!r}"
        )
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(
            f"`config[{key!r}]` has unknown keys {unknown}; allowed keys are "
            f"{list(SPEC_KEYS)}. Received: config[{key!r}]={spec!r}"
        )
    for name, value in spec.items():
        if name.endswith("_format"):
            deserialize_format(value, name)
        elif name.endswith("_quantizer"):
            as_quantizer(value, name, allowed=QUANTIZE_FORMATS)
        elif name.endswith("rounding"):
            check_rounding(value, name)


def _merge(layer_config, spec):
    """`layer_config` updated with `spec`; a point set in `spec` (by either
    keyword) replaces what the layer had for it."""
    merged = dict(layer_config)
    merged.update(spec)
    for point in _POINTS:
        if f"{point}_format" in spec:  # a bare format: the layer's default rounding
            merged[f"{point}_quantizer"] = merged.pop(f"{point}_format")
    return merged


def quantize_model(
    model: keras.Model,
    config: dict[str, dict[str, Any]] | None = None,
    scheme: str | None = None,
) -> keras.Model:
    """Returns a copy of `model` with Dense/Conv2D layers made quantization-aware.

    `config` maps a layer name or a layer class name to a *spec*: a dict of
    `QuantizedDense`/`QuantizedConv2D` quantization arguments
    (`weight_quantizer`, `input_quantizer`, `output_quantizer`,
    `error_quantizer`, `gradient_quantizer`, `rounding`,
    `backward_rounding`, `seed`; `<point>_format: fmt` is the older
    spelling of `<point>_quantizer: fmt`). A layer
    named in `config` uses that spec; otherwise a spec for its class name
    (`"Dense"`, `"Conv2D"`) applies. The layer is rebuilt as the quantized
    class from its own config plus the spec, and receives the original
    weights, so the new model starts from the trained one. Layers that are
    not mentioned are copied unchanged (with their weights).

    A config entry that names a layer with no quantized version (e.g. a
    `BatchNormalization`), or that matches nothing in the model, leaves the
    model alone there and emits a `UserWarning`.

    Works on Sequential and functional models (nested ones included;
    `tf_lowprec.models.rewrite.rebuild`); subclassed models are rejected.
    Matching layers it cannot reach, because they sit inside another layer
    (a subclassed layer, `Bidirectional`, `MultiHeadAttention`, ...), are
    named once in a `UserWarning`.

    With `scheme="int8"` (and no `config`) the model is instead rewritten
    for int8 quantization-aware training that exports to a full-integer
    TFLite model (`tf_lowprec.layers.int8.quantize_model_int8`, then
    `tf_lowprec.export.to_tflite`).

    Args:
        model: a built `keras.Sequential` or functional `keras.Model`.
        config: dict, layer name or class name -> spec dict.
        scheme: None, or `"int8"` for the TFLite int8 scheme.

    Returns:
        A new, uncompiled model with the same weights.

    Example:

    ```python
    bfp8 = tf_lowprec.quantizers.Quantizer(tf_lowprec.formats.BlockFloatingPoint(8, axis=None))
    qmodel = tf_lowprec.layers.quantize_model(model, {
        "Conv2D": {"weight_quantizer": bfp8, "output_quantizer": bfp8},
        "Dense": {"weight_quantizer": bfp8},
        "logits": {},          # the last layer by name: weights stay float
    })
    ```
    """
    if scheme is not None:
        if scheme != "int8" or config is not None:
            raise ValueError(
                "`scheme` must be 'int8' (and then `config` must be None): int8 "
                "quantization-aware training for full-integer TFLite export, see "
                f"`tf_lowprec.layers.int8`. Received: scheme={scheme!r}, config={config!r}"
            )
        return quantize_model_int8(model)
    if not isinstance(config, dict):
        raise ValueError(
            f"`config` must be a dict of layer name or class name -> spec. "
            f"Received: config={config!r}"
        )
    for key, spec in config.items():
        _check_spec(key, spec)
    used = set()

    def replace(layer):
        cls_name = type(layer).__name__
        key = layer.name if layer.name in config else cls_name
        if key not in config:
            return None
        used.add(key)
        target = QUANTIZED_VERSIONS.get(cls_name)
        if target is None:
            warnings.warn(
                f"quantize_model: layer {layer.name!r} ({cls_name}) has no "
                f"quantized version; it is left unchanged (config key {key!r}).",
                stacklevel=4,
            )
            return None
        return target.from_config(_merge(layer.get_config(), config[key]))

    def wanted(layer):
        cls_name = type(layer).__name__
        return cls_name in QUANTIZED_VERSIONS and (layer.name in config or cls_name in config)

    new_model = rewrite.rebuild(model, replace, what="quantize_model", unreachable=wanted)
    for key in config:
        if key not in used:
            warnings.warn(
                f"quantize_model: config key {key!r} matched no layer name or "
                "class in the model; nothing was changed for it.",
                stacklevel=2,
            )
    return new_model
