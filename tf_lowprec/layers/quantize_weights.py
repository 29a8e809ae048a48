"""`quantize_weights(model, fmt)`: post-training integer quantization of kernels."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable

import keras
import numpy as np

from tf_lowprec import validation
from tf_lowprec.formats import FormatLike
from tf_lowprec.layers.integer_weights import IntegerConv2D, IntegerDense, check_storage_format
from tf_lowprec.models import rewrite

_INTEGER_VERSIONS = {"Dense": IntegerDense, "Conv2D": IntegerConv2D}


@dataclasses.dataclass
class WeightQuantizationReport:
    """Storage of a model's weights before and after `quantize_weights`.

    Attributes:
        bytes_before: bytes of all weights of the original model.
        bytes_after: bytes of all weights of the quantized model (integer
            codes, scales, zero points and the weights left as they were).
        layers: one dict per layer with weights: `name`, `type`,
            `parameters`, `bytes_before`, `bytes_after`, `quantized`.
    """

    bytes_before: int
    bytes_after: int
    layers: list

    @property
    def compression(self) -> float:
        """`bytes_before / bytes_after`."""
        return self.bytes_before / max(self.bytes_after, 1)

    def __str__(self):
        lines = [f"{'layer':<24}{'type':<16}{'params':>10}{'bytes':>12}{'-> bytes':>12}"]
        for row in self.layers:
            lines.append(
                f"{row['name']:<24}{row['type']:<16}{row['parameters']:>10}"
                f"{row['bytes_before']:>12}{row['bytes_after']:>12}"
            )
        lines.append(
            f"{'total':<56}{self.bytes_before:>12}{self.bytes_after:>12}"
            f"  ({self.compression:.2f}x smaller)"
        )
        return "\n".join(lines)


def _nbytes(variables):
    return int(sum(np.prod(v.shape, dtype=np.int64) * np.dtype(v.dtype).itemsize for v in variables))


def quantize_weights(
    model: keras.Model,
    weight_format: FormatLike,
    layer_names: Iterable[str] | None = None,
) -> tuple[keras.Model, WeightQuantizationReport]:
    """Post-training quantization of Dense and Conv2D kernels to integers.

    Every `Dense` and `Conv2D` layer (or only those in `layer_names`) is
    rebuilt as `IntegerDense` / `IntegerConv2D`: its kernel is stored as
    integer codes of `weight_format` (int8, or two 4-bit codes per byte for
    `bits <= 4`) with float32 scales and int8 zero points, and dequantized on
    the fly at inference. Biases and all other layers keep their float
    weights. Codes use nearest rounding (`tf_lowprec.ops.affine_codes`).

    Args:
        model: a built Sequential or functional model.
        weight_format: `IntegerAffine` with `bits <= 8`; per-output-channel
            scales (`per_channel_axis=-1`) are the usual choice.
        layer_names: optional iterable of layer names to quantize; defaults
            to every Dense and Conv2D layer.

    Returns:
        `(quantized_model, report)`: a new uncompiled model and a
        `WeightQuantizationReport` with bytes before and after.

    Example:

    ```python
    int4 = tf_lowprec.formats.IntegerAffine(4, per_channel_axis=-1)
    qmodel, report = tf_lowprec.layers.quantize_weights(model, int4)
    print(report)                      # per-layer bytes, total compression
    qmodel.compile(metrics=["accuracy"], loss=...)
    qmodel.evaluate(test_data)
    ```
    """
    weight_format = check_storage_format(weight_format)
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(
            "`model` must be a built keras.Model (give it an Input, or call "
            "`model.build(input_shape)` or the model on data first): an unbuilt "
            f"model has no weights to quantize. Received: model={model!r}"
        )
    names = None if layer_names is None else validation.names(layer_names, "layer_names")
    chosen = set()

    def replace(layer):
        target = _INTEGER_VERSIONS.get(type(layer).__name__)
        if target is None or (names is not None and layer.name not in names):
            return None
        chosen.add(layer.name)
        config = layer.get_config()
        for key in ("lora_rank", "lora_alpha", "quantization_config"):
            config.pop(key, None)
        config["weight_format"] = weight_format
        return target.from_config(config)

    def copy_weights(old, new):
        if old.name in chosen:
            new.set_float_kernel(old.kernel)
            if old.bias is not None:
                new.bias.assign(old.bias)
        else:
            new.set_weights(old.get_weights())

    def wanted(layer):
        return type(layer).__name__ in _INTEGER_VERSIONS and (names is None or layer.name in names)

    new_model = rewrite.rebuild(
        model, replace, copy_weights, what="quantize_weights", unreachable=wanted
    )
    if names is not None and names - chosen:
        warnings.warn(
            f"quantize_weights: {sorted(names - chosen)} are not Dense/Conv2D "
            "layers of the model; left unchanged.",
            stacklevel=2,
        )
    rows = []
    for old, new in zip(rewrite.walk(model), rewrite.walk(new_model)):
        if not old.weights:
            continue
        rows.append(
            {
                "name": old.name,
                "type": type(old).__name__,
                "parameters": int(sum(np.prod(v.shape) for v in old.weights)),
                "bytes_before": _nbytes(old.weights),
                "bytes_after": _nbytes(new.weights),
                "quantized": old.name in chosen,
            }
        )
    report = WeightQuantizationReport(
        bytes_before=_nbytes(model.weights),
        bytes_after=_nbytes(new_model.weights),
        layers=rows,
    )
    return new_model, report
