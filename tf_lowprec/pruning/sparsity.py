"""Sparsity of a model's weights: a report and a `fit` callback that logs it."""

from __future__ import annotations

import dataclasses
from typing import Any, Self

import keras
import numpy as np


@dataclasses.dataclass(frozen=True)
class LayerSparsity:
    """Exact zeros among one layer's weights."""

    zeros: int
    total: int

    @property
    def sparsity(self) -> float:
        """Fraction of weights that are exactly zero, in [0, 1]."""
        return self.zeros / self.total if self.total else 0.0


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    """Global and per-layer sparsity (fraction of exactly-zero weights).

    Attributes:
        zeros: Number of exactly-zero weights counted.
        total: Number of weights counted.
        layers: `{layer path: LayerSparsity}` in model order; the layer path
            is the variable path without its last component (e.g. `"conv2d"`
            or `"resnet/block1/conv"` for nested models).
    """

    zeros: int
    total: int
    layers: dict

    @property
    def sparsity(self) -> float:
        """Global fraction of exactly-zero weights, in [0, 1]."""
        return self.zeros / self.total if self.total else 0.0

    @property
    def density(self) -> float:
        """`1 - sparsity`: the fraction of nonzero weights."""
        return 1.0 - self.sparsity

    def __str__(self):
        width = max([len("layer")] + [len(name) for name in self.layers])
        lines = [f"{'layer':<{width}}  {'nonzero':>12}  {'total':>12}  sparsity"]
        for name, layer in self.layers.items():
            lines.append(
                f"{name:<{width}}  {layer.total - layer.zeros:>12,}  "
                f"{layer.total:>12,}  {layer.sparsity:8.2%}"
            )
        lines.append(
            f"{'global':<{width}}  {self.total - self.zeros:>12,}  "
            f"{self.total:>12,}  {self.sparsity:8.2%}"
        )
        return "\n".join(lines)


def _counted_variables(model, kernels_only):
    variables = model.trainable_variables
    if kernels_only:
        # Multi-dimensional weights: Dense/Conv kernels, embeddings; skips
        # biases and normalisation scales/offsets.
        variables = [v for v in variables if len(v.shape) >= 2]
    return variables


def sparsity(model: keras.layers.Layer, kernels_only: bool = False) -> SparsityReport:
    """Measures the fraction of exactly-zero trainable weights.

    gRDA and the proximal optimizers produce exact zeros, so sparsity here is
    `#(w == 0) / #w`, with no tolerance. By default every trainable weight
    counts (biases and BatchNorm parameters included), which is what gRDA
    thresholds and what the gRDA paper reports.

    Args:
        model: A built `keras.Model` (or any object with
            `trainable_variables`).
        kernels_only: Count only weights with two or more dimensions (kernels
            and embeddings), as magnitude-pruning libraries usually do.
            Defaults to `False`.

    Returns:
        A `SparsityReport`; `report.sparsity` is the global fraction and
        `report.layers` the per-layer breakdown. `print(report)` shows a table.
    """
    layers = {}
    for variable in _counted_variables(model, kernels_only):
        path = getattr(variable, "path", variable.name)
        layer = path.rsplit("/", 1)[0] if "/" in path else path
        values = keras.ops.convert_to_numpy(variable)
        zeros = int(values.size - np.count_nonzero(values))
        previous = layers.get(layer, LayerSparsity(0, 0))
        layers[layer] = LayerSparsity(previous.zeros + zeros, previous.total + values.size)
    return SparsityReport(
        zeros=sum(layer.zeros for layer in layers.values()),
        total=sum(layer.total for layer in layers.values()),
        layers=layers,
    )


@keras.saving.register_keras_serializable(package="tf_lowprec")
class SparsityLogger(keras.callbacks.Callback):
    """Adds the model's sparsity to the epoch logs (`History`, TensorBoard, CSV).

    At the end of every epoch it writes `logs["sparsity"]` (global fraction of
    exact zeros) and, with `per_layer=True`, `logs["sparsity/<layer>"]`.
    Keras passes one `logs` dict through the callback list in order, so put
    `SparsityLogger` *before* `keras.callbacks.TensorBoard` or `CSVLogger` for
    them to record it (`model.fit` adds its own `History` last, so `History`
    always sees it).

    Args:
        per_layer: Also log each layer's sparsity. Defaults to `False`.
        kernels_only: Count only kernels/embeddings (see `sparsity`).
            Defaults to `False`.

    Example:

    ```python
    model.fit(x, y, epochs=5, callbacks=[
        SparsityLogger(per_layer=True),
        keras.callbacks.TensorBoard("logs"),
    ])
    history.history["sparsity"]
    ```
    """

    def __init__(self, per_layer: bool = False, kernels_only: bool = False) -> None:
        super().__init__()
        self.per_layer = bool(per_layer)
        self.kernels_only = bool(kernels_only)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        report = sparsity(self.model, kernels_only=self.kernels_only)
        logs["sparsity"] = report.sparsity
        if self.per_layer:
            for name, layer in report.layers.items():
                logs[f"sparsity/{name}"] = layer.sparsity

    def get_config(self) -> dict[str, Any]:
        return {"per_layer": self.per_layer, "kernels_only": self.kernels_only}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)
