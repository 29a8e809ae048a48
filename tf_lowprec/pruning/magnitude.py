"""Unstructured magnitude pruning: `PruneLowMagnitude` and `prune_low_magnitude`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras

from tf_lowprec.models import rewrite
from tf_lowprec.pruning.masking import magnitude_mask
from tf_lowprec.pruning.schedules import ConstantSparsity
from tf_lowprec.pruning.wrapper import PruningWrapper

if TYPE_CHECKING:
    from tf_lowprec.pruning.schedules import PruningSchedule

#: Variable names pruned by default (Dense/Conv*/EinsumDense kernels,
#: separable/depthwise kernels, embeddings); biases and normalization
#: parameters are never pruned, as in TFMOT.
PRUNABLE_WEIGHT_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings")


def prunable_weights(layer):
    """The variables of `layer` that magnitude pruning masks.

    A layer may choose them itself with a `get_prunable_weights()` method
    (as TFMOT's `PrunableLayer`); otherwise they are its own variables named
    in `PRUNABLE_WEIGHT_NAMES`.
    """
    if hasattr(layer, "get_prunable_weights"):
        return list(layer.get_prunable_weights())
    own = getattr(layer, "_trainable_variables", None)
    if own is None:
        own = layer.trainable_weights
    return [v for v in own if v.name in PRUNABLE_WEIGHT_NAMES]


@keras.saving.register_keras_serializable(package="tf_lowprec")
class PruneLowMagnitude(PruningWrapper):
    """Wraps a layer so its kernels are magnitude-pruned during training.

    Each prunable weight `W` (see `prunable_weights`) gets a mask `M` of the
    same shape. At every pruning step of the schedule, with sparsity `s`,

    ```
    k = max(round(|W| * (1 - s)), 1)
    M = 1 on the k entries of largest |W|, 0 elsewhere   (ties: lower index kept)
    W <- W * M
    ```

    per layer and per weight (no global ranking across layers), and after
    every optimizer step `W <- W * M` (a variable constraint), so the stored
    weights are exactly `s`-sparse from the first pruning step on.

    Needs the `UpdatePruningStep` callback during `fit`.

    Args:
        layer: The layer to prune; it must have prunable weights.
        pruning_schedule: A `PruningSchedule`. Defaults to
            `ConstantSparsity(0.5, begin_step=0, frequency=100)`.
        **kwargs: Layer arguments; the name defaults to
            `"prune_low_magnitude_<layer name>"`.
    """

    _name_prefix = "prune_low_magnitude"

    def __init__(
        self,
        layer: keras.layers.Layer,
        pruning_schedule: PruningSchedule | None = None,
        **kwargs: Any,
    ) -> None:
        if pruning_schedule is None:
            pruning_schedule = ConstantSparsity(0.5, begin_step=0, frequency=100)
        super().__init__(layer, pruning_schedule, **kwargs)

    def _mask_groups(self):
        variables = prunable_weights(self.layer)
        if not variables:
            raise ValueError(
                f"`layer` has no prunable weights (none named "
                f"{PRUNABLE_WEIGHT_NAMES} and no `get_prunable_weights()`). "
                f"Received: layer={self.layer.name!r} ({type(self.layer).__name__})"
            )
        return [(f"{v.name}_mask", tuple(v.shape), [v]) for v in variables]

    def _compute_mask(self, index, sparsity):
        mask, (variable,) = self._groups[index]
        return magnitude_mask(variable, sparsity)


def _selected(layer, layers):
    if layers is None:
        return True
    if callable(layers):
        return bool(layers(layer))
    return layer.name in layers


def prune_low_magnitude(
    to_prune: keras.layers.Layer,
    pruning_schedule: PruningSchedule | None = None,
    layers: rewrite.LayerSelection = None,
) -> PruneLowMagnitude | keras.Model:
    """Adds magnitude pruning to a layer or to every prunable layer of a model.

    Keras 3 counterpart of `tfmot.sparsity.keras.prune_low_magnitude`, with
    the same schedule semantics (see `PruneLowMagnitude`). For a model, it
    returns a new model of the same structure in which every selected layer
    with prunable weights (Dense, Conv*, Embedding, ...) is wrapped; the
    weights are copied, so pruning a pretrained model starts from it.

    Args:
        to_prune: A `keras.layers.Layer`, or a Functional or Sequential
            `keras.Model` (nested models are handled; prunable layers inside
            other layers, e.g. `MultiHeadAttention`'s projections or a
            `Bidirectional`'s LSTM, cannot be reached and are named in one
            warning).
        pruning_schedule: A `PruningSchedule` shared by all wrapped layers.
            Defaults to `ConstantSparsity(0.5, begin_step=0, frequency=100)`.
        layers: Which layers of a model to prune: `None` (all prunable
            layers), a collection of layer names, or a callable
            `layer -> bool`. Defaults to `None`.

    Returns:
        A `PruneLowMagnitude` layer, or a new model.

    Example:

    ```python
    schedule = PolynomialDecay(0.0, 0.9, begin_step=0, end_step=1000, frequency=50)
    pruned = prune_low_magnitude(model, schedule)
    pruned.compile("sgd", loss, metrics=["accuracy"])
    pruned.fit(x, y, epochs=3, callbacks=[UpdatePruningStep()])
    final = strip_pruning(pruned)  # a plain Keras model with exact zeros
    ```
    """
    if isinstance(to_prune, keras.Model):
        rewrite.check_graph_model(to_prune, "to_prune")
        layers = rewrite.check_layer_selection(to_prune, layers)

        def replace(layer):
            if isinstance(layer, PruningWrapper) or not _selected(layer, layers):
                return None
            if not prunable_weights(layer):
                return None
            inner = layer.__class__.from_config(layer.get_config())
            return PruneLowMagnitude(inner, pruning_schedule)

        def copy_weights(old, new):
            target = new.layer if isinstance(new, PruneLowMagnitude) and old is not new else new
            target.set_weights(old.get_weights())

        def wanted(layer):
            return (
                not isinstance(layer, PruningWrapper)
                and _selected(layer, layers)
                and bool(prunable_weights(layer))
            )

        return rewrite.rebuild(
            to_prune, replace, copy_weights, what="prune_low_magnitude", unreachable=wanted
        )
    if isinstance(to_prune, keras.layers.Layer):
        return PruneLowMagnitude(to_prune, pruning_schedule)
    raise ValueError(
        "`to_prune` must be a keras.layers.Layer or a keras.Model. "
        f"Received: to_prune={to_prune!r}"
    )
