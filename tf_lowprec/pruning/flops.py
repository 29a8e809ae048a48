"""A small FLOPs counter for Conv and Dense layers (per example, inference)."""

from __future__ import annotations

import dataclasses
import math

import keras

from tf_lowprec.models import rewrite


@dataclasses.dataclass(frozen=True)
class FlopsReport:
    """Multiply-accumulates of a model's Conv/Dense layers for one example.

    Attributes:
        layers: `{layer name: MACs}` for every counted layer, in model order
            (a pruning wrapper is listed under the name of the layer it wraps).
        macs: Total multiply-accumulates.
    """

    layers: dict
    macs: int

    @property
    def flops(self) -> int:
        """`2 * macs` (one multiply and one add per MAC)."""
        return 2 * self.macs

    def __str__(self):
        width = max([len("layer")] + [len(name) for name in self.layers])
        lines = [f"{'layer':<{width}}  {'MACs':>14}"]
        lines += [f"{name:<{width}}  {macs:>14,}" for name, macs in self.layers.items()]
        lines.append(f"{'total':<{width}}  {self.macs:>14,}  ({self.flops:,} FLOPs)")
        return "\n".join(lines)


def _inner(layer):
    # Pruning wrappers cost what the layer they wrap costs: masks do not
    # remove multiplications.
    while isinstance(layer, keras.layers.Wrapper) and hasattr(layer, "pruning_schedule"):
        layer = layer.layer
    return layer


def _size(variable):
    return math.prod(int(d) for d in variable.shape)


def layer_macs(layer, output_shape):
    """MACs of one call of `layer` on one example, or `None` if not counted.

    With `S_out` the product of the output's spatial dimensions:

    * Conv1D/2D/3D: `S_out * kernel.size` (`kernel.size = prod(k) * C_in / groups * C_out`);
    * DepthwiseConv1D/2D: `S_out * kernel.size` (`prod(k) * C_in * depth_multiplier`);
    * SeparableConv1D/2D: `S_out * (depthwise_kernel.size + pointwise_kernel.size)`;
    * Conv1D/2D/3DTranspose: `S_in * kernel.size` (each input pixel scatters the kernel);
    * Dense: `prod(output shape) * n_in` (Dense applied to the last axis).

    Bias additions, activations, pooling and normalization are not counted
    (they are O(outputs), small next to the products).

    Args:
        layer: A (built) layer; pruning wrappers count as the layer they wrap.
        output_shape: The layer's output shape, batch dimension included.
    """
    layer = _inner(layer)
    out = [int(d) for d in output_shape[1:]]
    channels_first = getattr(layer, "data_format", "channels_last") == "channels_first"
    out_spatial = math.prod(out[1:] if channels_first else out[:-1])
    layers = keras.layers
    if isinstance(layer, layers.Dense):
        return math.prod(out) * int(layer.kernel.shape[0])
    if isinstance(layer, (layers.Conv1DTranspose, layers.Conv2DTranspose,
                          layers.Conv3DTranspose)):
        shape = [int(d) for d in layer.input.shape[1:]]
        in_spatial = math.prod(shape[1:] if channels_first else shape[:-1])
        return in_spatial * _size(layer.kernel)
    if isinstance(layer, (layers.SeparableConv1D, layers.SeparableConv2D)):
        return out_spatial * (_size(layer.depthwise_kernel) + _size(layer.pointwise_kernel))
    if isinstance(layer, (layers.DepthwiseConv1D, layers.DepthwiseConv2D)):
        return out_spatial * _size(layer.kernel)
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Conv3D)):
        return out_spatial * _size(layer.kernel)
    return None


def count_flops(model: keras.Model) -> FlopsReport:
    """Counts the MACs/FLOPs of a model's Conv and Dense layers per example.

    Uses each layer's output shape from the model graph, so every layer must
    be called exactly once in a Functional or Sequential model (nested models
    included; shared layers are refused rather than undercounted). Pruning
    masks are ignored: a masked model costs what its dense version costs;
    physically removing filters (`remove_pruned_filters`) is what reduces the
    count.

    Args:
        model: A built Functional or Sequential `keras.Model`.

    Returns:
        A `FlopsReport` (`.macs`, `.flops = 2 * macs`, `.layers`).
    """
    layers = {}
    for layer in rewrite.walk(model):
        calls = len(getattr(layer, "_inbound_nodes", ()))
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            calls = 0
        if calls != 1:
            raise ValueError(
                f"`model` layer {layer.name!r} is called {calls} times in the graph; "
                "count_flops needs every layer called exactly once (no shared layers). "
                f"Received: model={model.name!r}"
            )
        macs = layer_macs(layer, shape)
        if macs is not None:
            layers[_inner(layer).name] = int(macs)
    return FlopsReport(layers=layers, macs=sum(layers.values()))
