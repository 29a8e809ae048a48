"""`strip_pruning`: a plain Keras model with the pruning masks baked in."""


from __future__ import annotations

import keras

from tf_lowprec.models import rewrite
from tf_lowprec.pruning.wrapper import PruningWrapper


def strip_pruning(model: keras.Model) -> keras.Model:
    """Removes every pruning wrapper, keeping the zeros it produced.

    Each `PruneLowMagnitude` / `PruneFilters` layer is replaced by a fresh
    copy of the layer it wraps (same name and config, so no tf_lowprec class
    is needed to load the result) holding `weights * mask`, with masked
    entries `+0.0`. Other layers are copied as they are. The result has the
    same predictions as the pruned model in inference mode: after
    `update_masks` the stored weights already equal `weights * mask`, and
    `PruneFilters`' output masking is reproduced exactly because a removed
    unit's kernel and bias (and its follower BatchNormalization's gamma and
    beta) are zero. (With a follower BatchNormalization, a removed channel
    outputs 0 in the pruned model but `BN(0)` with `gamma = beta = 0`, also 0,
    in the stripped one.)

    Args:
        model: A Functional or Sequential model, or a single wrapper layer.

    Returns:
        A new model (or the unwrapped layer for a layer input). Like
        `keras.models.clone_model`, it is compiled from `model`'s compile
        config (a fresh optimizer) when `model` was compiled.
    """
    if isinstance(model, PruningWrapper):
        layer = model.layer.__class__.from_config(model.layer.get_config())
        build_config = model.layer.get_build_config()
        if build_config:
            layer.build_from_config(build_config)
        layer.set_weights(model.masked_weights())
        return layer

    def replace(layer):
        if isinstance(layer, PruningWrapper):
            return layer.layer.__class__.from_config(layer.layer.get_config())
        return None

    def copy_weights(old, new):
        if isinstance(old, PruningWrapper):
            new.set_weights(old.masked_weights())
        else:
            new.set_weights(old.get_weights())

    return rewrite.rebuild(model, replace, copy_weights, what="strip_pruning")
