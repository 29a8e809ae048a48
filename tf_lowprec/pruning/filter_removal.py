"""`remove_pruned_filters`: turn a filter-pruned model into a smaller dense model."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from tf_lowprec.models import rewrite
from tf_lowprec.pruning.filters import PruneFilters
from tf_lowprec.pruning.flops import count_flops
from tf_lowprec.pruning.wrapper import PruningWrapper

# Layers without weights that act on each channel separately (or only on the
# spatial axes) and so carry the kept-channel set through unchanged, provided
# they map 0 to 0 (checked numerically for activations).
_CHANNELWISE = (
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
    keras.layers.Activation,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.Identity,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.Cropping1D,
    keras.layers.Cropping2D,
    keras.layers.UpSampling1D,
    keras.layers.UpSampling2D,
)


@dataclasses.dataclass
class FilterRemoval:
    """The smaller model and what removing the pruned filters saved.

    Attributes:
        model: The new dense Keras model (plain layers, no masks).
        params_before: Parameters of the pruned model without its masks
            (= `strip_pruning(pruned).count_params()`).
        params_after: `model.count_params()`.
        macs_before: MACs per example of the original-size model.
        macs_after: MACs per example of `model`.
        units: `{layer name: (kept, total)}` for every layer whose output
            units were removed.
    """

    model: keras.Model
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    units: dict

    @property
    def flops_before(self) -> int:
        return 2 * self.macs_before

    @property
    def flops_after(self) -> int:
        return 2 * self.macs_after

    def __str__(self):
        lines = ["layer                 units kept"]
        lines += [f"{name:<20}  {kept:>5} / {total}" for name, (kept, total) in self.units.items()]
        for label, before, after, fraction in (
            ("parameters", self.params_before, self.params_after,
             self.params_after / max(self.params_before, 1)),
            ("FLOPs", self.flops_before, self.flops_after,
             self.macs_after / max(self.macs_before, 1)),
        ):
            lines.append(f"{label:<10}  {before:>12,} -> {after:>12,}  ({fraction:.1%})")
        return "\n".join(lines)


def _maps_zero_to_zero(layer, shape):
    probe = np.zeros((1,) + tuple(int(d) for d in shape[1:]), np.float32)
    out = keras.ops.convert_to_numpy(layer(probe, training=False))
    return not np.any(out)


def _fail(layer, why):
    raise ValueError(
        f"Cannot remove pruned filters through layer {layer.name!r} "
        f"({type(layer).__name__}): {why}. Received: model with that layer."
    )


def _unwrap(layer):
    return layer.layer if isinstance(layer, PruningWrapper) else layer


def _weights(layer):
    if isinstance(layer, PruningWrapper):
        return layer.masked_weights()
    return [keras.ops.convert_to_numpy(w) for w in layer.weights]


def _plan(model):
    """Kept output channels, new configs and weights for every layer."""
    writers = rewrite.producers(model)
    keep = {}  # layer name -> kept indices along the last axis (None: all)
    configs, weights, units = {}, {}, {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            if any(isinstance(inner, PruningWrapper) for inner in rewrite.walk(layer)):
                _fail(layer, "nested models with pruned layers are not supported")
            keep[layer.name] = None
            continue
        if isinstance(layer, keras.layers.InputLayer):
            keep[layer.name] = None
            continue
        sources = writers.get(layer.name, [])
        inputs = [keep.get(name) for name in sources]
        pruned_inputs = [k for k in inputs if k is not None]
        inner = _unwrap(layer)
        in_keep = inputs[0] if len(inputs) == 1 else None
        if len(inputs) > 1 and pruned_inputs:
            _fail(layer, "it merges several tensors and one of them has removed channels")

        is_leader = isinstance(layer, PruneFilters) and layer.follow is None
        is_follower = isinstance(layer, PruneFilters) and layer.follow is not None
        if isinstance(inner, (keras.layers.Conv2D, keras.layers.Dense)):
            if getattr(inner, "groups", 1) != 1 and (in_keep is not None or is_leader):
                _fail(layer, "grouped convolutions cannot lose channels")
            kernel, *rest = _weights(layer)
            bias = rest[0] if rest else None
            if in_keep is not None:
                kernel = np.take(kernel, in_keep, axis=-2)
            out_keep = None
            if is_leader:
                mask = keras.ops.convert_to_numpy(layer.unit_mask)
                out_keep = np.flatnonzero(mask)
                kernel = np.take(kernel, out_keep, axis=-1)
                bias = None if bias is None else bias[out_keep]
                units[inner.name] = (len(out_keep), len(mask))
                config = inner.get_config()
                config["filters" if "filters" in config else "units"] = len(out_keep)
                configs[layer.name] = config
            elif isinstance(layer, PruningWrapper) or in_keep is not None:
                configs[layer.name] = inner.get_config()
            weights[layer.name] = [kernel] + ([] if bias is None else [bias])
            keep[layer.name] = out_keep
            continue
        if isinstance(inner, keras.layers.BatchNormalization):
            values = _weights(layer)
            if is_follower:
                mask = keras.ops.convert_to_numpy(layer.unit_mask)
                expected = np.flatnonzero(mask)
                if in_keep is None or not np.array_equal(in_keep, expected):
                    _fail(layer, "its mask does not match the channels kept by its input")
            if in_keep is not None:
                values = [v[in_keep] for v in values]
            if in_keep is not None or isinstance(layer, PruningWrapper):
                configs[layer.name] = inner.get_config()
                weights[layer.name] = values
            keep[layer.name] = in_keep
            continue
        if isinstance(layer, PruningWrapper):
            if in_keep is not None:
                _fail(layer, "only Conv2D, Dense and BatchNormalization can follow removed filters")
            configs[layer.name] = inner.get_config()
            weights[layer.name] = _weights(layer)
            keep[layer.name] = None
            continue
        if in_keep is None:
            keep[layer.name] = None
            continue
        if isinstance(layer, _CHANNELWISE):
            if isinstance(layer, (keras.layers.Activation, keras.layers.ELU)) and (
                not _maps_zero_to_zero(layer, layer.input.shape)
            ):
                _fail(layer, "its activation does not map 0 to 0")
            if isinstance(layer, keras.layers.PReLU):
                _fail(layer, "PReLU has per-channel weights")
            keep[layer.name] = in_keep
            continue
        if isinstance(layer, keras.layers.Flatten):
            shape = [int(d) for d in layer.input.shape[1:]]
            channels = shape[-1]
            positions = int(np.prod(shape[:-1]))
            keep[layer.name] = (
                np.arange(positions)[:, None] * channels + np.asarray(in_keep)[None, :]
            ).ravel()
            continue
        _fail(layer, "it is not known to act channel by channel")
    return keep, configs, weights, units


def remove_pruned_filters(model: keras.Model) -> FilterRemoval:
    """Physically removes the units that `PruneFilters` masked.

    Walks the model graph once, tracking which channels of each tensor are
    kept: a pruned Conv2D/Dense loses its masked output units (kernel slices
    and biases), every following channel-wise layer (activations, pooling,
    dropout, padding) keeps the same channels, a BatchNormalization keeps the
    same entries of `gamma`, `beta`, `moving_mean` and `moving_variance`,
    `Flatten` maps channel `c` at position `p` to feature `p * C + c`, and
    the next Conv2D/Dense loses the matching input rows of its kernel.
    `PruneLowMagnitude` wrappers are stripped (masks baked in). Because
    removed units output exactly 0 in the masked model, the new model gives
    the same predictions up to float summation order.

    Supported: Functional/Sequential models, channels last, no merge layer
    (Add, Concatenate, ...) reached by removed channels, no pruned layers
    inside nested models.

    Args:
        model: A model returned by `prune_filters` (trained or not).

    Returns:
        A `FilterRemoval` with the new `model` (plain Keras layers with the
        wrapped layers' names; compiled with a fresh optimizer from `model`'s
        compile config if `model` was compiled, as `clone_model` does), parameter counts and MACs
        before/after, and the kept units per layer.

    Raises:
        ValueError: for a layer that removed channels cannot pass through.
    """
    from tf_lowprec.pruning.strip import strip_pruning

    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={model!r}")
    keep, configs, weights, units = _plan(model)
    for name in rewrite.output_layers(model):
        if keep.get(name) is not None:
            raise ValueError(
                f"Layer {name!r} produces a model output but has removed units; "
                "the output shape would change. Do not prune output layers. "
                f"Received: model={model.name!r}"
            )

    def replace(layer):
        if layer.name in configs:
            return _unwrap(layer).__class__.from_config(configs[layer.name])
        return None

    def copy_weights(old, new):
        if old.name in weights:
            new.set_weights(weights[old.name])
        else:
            new.set_weights(old.get_weights())

    small = rewrite.rebuild(model, replace, copy_weights, what="remove_pruned_filters")
    dense = strip_pruning(model)
    return FilterRemoval(
        model=small,
        params_before=dense.count_params(),
        params_after=small.count_params(),
        macs_before=count_flops(dense).macs,
        macs_after=count_flops(small).macs,
        units=units,
    )
