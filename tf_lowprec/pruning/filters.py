"""Structured pruning of whole filters/units by L1 norm: `PruneFilters`, `prune_filters`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
from keras import ops

from tf_lowprec.models import rewrite
from tf_lowprec.pruning import masking
from tf_lowprec.pruning.schedules import ConstantSparsity
from tf_lowprec.pruning.wrapper import PruningWrapper

if TYPE_CHECKING:
    import tensorflow as tf

    from tf_lowprec.pruning.schedules import PruningSchedule

_LEADER_TYPES = (keras.layers.Conv2D, keras.layers.Dense)


@keras.saving.register_keras_serializable(package="tf_lowprec")
class PruneFilters(PruningWrapper):
    """Wraps a Conv2D/Dense (or a BatchNormalization after one) to prune whole units.

    The mask `m` has one entry per output unit (Conv2D filter, Dense unit).
    At every pruning step of the schedule, with sparsity `s` (the fraction of
    units removed), the `k = max(round(n (1 - s)), 1)` units of largest L1
    norm `s_j = sum |K[..., j]|` are kept (Li et al., 2017; ties keep the lower
    index) and

    ```
    K[..., j] <- K[..., j] * m_j      b_j <- b_j * m_j      y[..., j] <- y[..., j] * m_j
    ```

    The output is masked too, so a removed unit outputs exactly 0 whatever
    the layer's activation, and a model pruned this way can be shrunk into a
    smaller dense model with identical outputs (`remove_pruned_filters`).

    A BatchNormalization that normalizes the output of a pruned layer is
    wrapped as a *follower* (`follow=<leader wrapper name>`): it copies the
    leader's mask at each update and masks `gamma`, `beta` and its output,
    so the removed channels stay exactly 0 after normalization.

    Needs the `UpdatePruningStep` callback during `fit`.

    Args:
        layer: A `Conv2D` or `Dense` layer (channels last), or a
            `BatchNormalization` over the last axis when `follow` is given.
        pruning_schedule: A `PruningSchedule` in which sparsity is the
            fraction of units removed. Ignored by followers. Defaults to
            `ConstantSparsity(0.5, begin_step=0, frequency=100)`.
        follow: Name of the `PruneFilters` wrapper whose mask a
            BatchNormalization follows, or `None`. Defaults to `None`.
        **kwargs: Layer arguments; the name defaults to
            `"prune_filters_<layer name>"`.

    References:
        Li, Kadav, Durdanovic, Samet & Graf, "Pruning Filters for Efficient
        ConvNets", ICLR 2017, https://arxiv.org/abs/1608.08710
    """

    _name_prefix = "prune_filters"

    def __init__(
        self,
        layer: keras.layers.Layer,
        pruning_schedule: PruningSchedule | None = None,
        follow: str | None = None,
        **kwargs: Any,
    ) -> None:
        if pruning_schedule is None:
            pruning_schedule = ConstantSparsity(0.5, begin_step=0, frequency=100)
        if follow is None and not isinstance(layer, _LEADER_TYPES):
            raise ValueError(
                "`layer` must be a Conv2D or Dense layer (or a BatchNormalization "
                f"with `follow`). Received: layer={layer!r}"
            )
        if follow is not None and not isinstance(layer, keras.layers.BatchNormalization):
            raise ValueError(
                "`follow` is only for BatchNormalization layers. Received: "
                f"follow={follow!r} with layer={layer!r}"
            )
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise ValueError(
                "`layer` must use data_format='channels_last'. Received: "
                f"data_format={layer.data_format!r}"
            )
        super().__init__(layer, pruning_schedule, **kwargs)
        self.follow = follow

    def build(self, input_shape: tuple[int | None, ...] | None = None) -> None:
        if isinstance(self.layer, keras.layers.BatchNormalization) and input_shape is not None:
            axis = self.layer.axis
            rank = len(input_shape)
            axes = [axis] if isinstance(axis, int) else list(axis)
            if [a % rank for a in axes] != [rank - 1]:
                raise ValueError(
                    "`layer` (BatchNormalization) must normalize the last axis. "
                    f"Received: axis={self.layer.axis!r}"
                )
        super().build(input_shape)

    def _mask_groups(self):
        layer = self.layer
        if isinstance(layer, keras.layers.BatchNormalization):
            variables = [v for v in (layer.gamma, layer.beta) if v is not None]
            units = int(layer.moving_mean.shape[0])
        else:
            variables = [layer._kernel if hasattr(layer, "_kernel") else layer.kernel]
            if layer.bias is not None:
                variables.append(layer.bias)
            units = int(variables[0].shape[-1])
        return [("unit_mask", (units,), variables)]

    def _compute_mask(self, index, sparsity):
        if self.follow is not None:
            raise RuntimeError(
                f"`{self.name}` follows `{self.follow}`; its mask is copied, not computed."
            )
        mask, variables = self._groups[index]
        return masking.unit_mask(variables[0], sparsity)

    @property
    def unit_mask(self) -> keras.Variable:
        """The mask variable, one entry per output unit."""
        return self._groups[0][0]

    def call(self, inputs: tf.Tensor, training: bool | None = None, **kwargs: Any) -> tf.Tensor:
        outputs = super().call(inputs, training=training, **kwargs)
        mask = self.unit_mask
        return outputs * ops.cast(mask, outputs.dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["follow"] = self.follow
        return config


def prune_filters(
    model: keras.Model,
    pruning_schedule: PruningSchedule | None = None,
    layers: rewrite.LayerSelection = None,
) -> keras.Model:
    """Adds L1-norm filter pruning to the Conv2D and Dense layers of a model.

    Every selected Conv2D/Dense layer is wrapped in `PruneFilters` (each
    keeps its own fraction `s` of units, ranked within the layer), except
    the model's output layers, whose units are the predictions. A
    BatchNormalization whose only input is a pruned layer is wrapped as its
    follower. Weights are copied from `model`.

    Args:
        model: A Functional or Sequential `keras.Model`, channels last.
        pruning_schedule: A `PruningSchedule`; sparsity = fraction of units
            removed per layer. Defaults to
            `ConstantSparsity(0.5, begin_step=0, frequency=100)`.
        layers: Which layers to prune: `None` (all Conv2D/Dense that do not
            produce a model output), a collection of names, or a callable
            `layer -> bool`. Defaults to `None`.

    Returns:
        A new model. Train it with `UpdatePruningStep`; shrink it with
        `remove_pruned_filters`, or keep its shape with `strip_pruning`.

    Example:

    ```python
    # "+10% of filters every 10 epochs from epoch 10 to 50":
    E = steps_per_epoch
    schedule = PolynomialDecay(0.1, 0.5, 10 * E, 50 * E, power=1, frequency=10 * E)
    pruned = prune_filters(model, schedule)
    ```
    """
    rewrite.check_graph_model(model)
    layers = rewrite.check_layer_selection(model, layers)
    readers = rewrite.consumers(model)
    writers = rewrite.producers(model)
    output_layers = rewrite.output_layers(model)

    def chosen(layer):
        if not isinstance(layer, _LEADER_TYPES) or isinstance(layer, PruningWrapper):
            return False
        if layers is None:
            return layer.name not in output_layers
        if callable(layers):
            return bool(layers(layer))
        return layer.name in layers

    leaders = {layer.name for layer in rewrite.walk(model) if chosen(layer)}
    followers = {}
    for layer in rewrite.walk(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            sources = writers.get(layer.name, [])
            if len(sources) == 1 and sources[0] in leaders and len(readers[sources[0]]) == 1:
                followers[layer.name] = sources[0]

    def replace(layer):
        if layer.name in leaders:
            inner = layer.__class__.from_config(layer.get_config())
            return PruneFilters(inner, pruning_schedule)
        if layer.name in followers:
            inner = layer.__class__.from_config(layer.get_config())
            leader = f"{PruneFilters._name_prefix}_{followers[layer.name]}"
            return PruneFilters(inner, pruning_schedule, follow=leader)
        return None

    def copy_weights(old, new):
        wrapped_now = isinstance(new, PruneFilters) and not isinstance(old, PruneFilters)
        target = new.layer if wrapped_now else new
        target.set_weights(old.get_weights())

    return rewrite.rebuild(model, replace, copy_weights, what="prune_filters")
