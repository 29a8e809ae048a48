"""Model rewriting: copy a Keras model layer by layer, replacing or inserting layers.

One module for every transform that rebuilds a model (quantize_model,
quantize_weights, the activation-quantization recipe, pruning, filter
removal), on floor 0 so that layers/, pruning/ and recipes/ all use it:

* `rebuild(model, replace, copy_weights, insert_after, what)`: a clone of a
  Sequential or functional model (nested ones included), where
  `replace(layer)` may substitute a layer and `insert_after(layer)` may add
  one after it; weights are copied pair by pair or, by default, in order.
* `walk(model)`: every layer, nested models flattened, in model order.
* `consumers(model)` / `producers(model)` / `output_layers(model)`: the
  layer graph (public `layer.input` / `layer.output` tensors only).
* `unreachable_layers(model)` and `warn_unreachable(model, what)`: layers a
  rewrite cannot see (inside subclassed layers, `Bidirectional`,
  `TimeDistributed`, `MultiHeadAttention`, ...), named once in a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import TypeAlias

import keras

from tf_lowprec import validation

__all__ = [
    "rebuild",
    "walk",
    "fresh_copy",
    "check_graph_model",
    "check_layer_selection",
    "consumers",
    "producers",
    "output_layers",
    "unreachable_layers",
    "warn_unreachable",
]


LayerSelection: TypeAlias = Iterable[str] | Callable[[keras.layers.Layer], bool] | None
"""Which layers a transform applies to: layer names, a predicate, or `None` (all)."""


def walk(model: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """Yields the layers of `model`, recursing into nested models."""
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model):
            yield from walk(layer)
        else:
            yield layer


def fresh_copy(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A new layer of the same class and config (no weights copied)."""
    return layer.__class__.from_config(layer.get_config())


def _is_functional(model):
    return any(cls.__name__ == "Functional" for cls in type(model).__mro__)


def check_graph_model(model: object, name: str = "model", what: str | None = None) -> None:
    """Raises `ValueError` unless `model` is a Functional or Sequential model."""
    if not isinstance(model, keras.Model) or not (
        isinstance(model, keras.Sequential) or _is_functional(model)
    ):
        of = f" of {what}" if what else ""
        raise ValueError(
            f"`{name}`{of} must be a Functional or Sequential keras.Model "
            "(subclassed models have no layer graph to rewrite: rebuild a "
            "Sequential or functional model from their layers yourself). "
            f"Received: {name}={model!r}"
        )


def check_layer_selection(
    model: keras.Model, layers: LayerSelection, name: str = "layers"
) -> set[str] | Callable[[keras.layers.Layer], bool] | None:
    """`layers` as given (None or a callable), or the set of names, all in `model`."""
    if layers is None or callable(layers):
        return layers
    return validation.names(layers, name, known=[layer.name for layer in walk(model)])


def copy_weights_in_order(old_model, new_model, what):
    """`new_model.set_weights(old_model.get_weights())`, shapes checked first."""
    old_weights = old_model.get_weights()
    new_shapes = [tuple(w.shape) for w in new_model.weights]
    if new_shapes != [tuple(w.shape) for w in old_weights]:
        raise ValueError(
            f"{what} could not align the weights of the rebuilt model with "
            f"the original (shapes {new_shapes} vs "
            f"{[tuple(w.shape) for w in old_weights]})."
        )
    new_model.set_weights(old_weights)


def _sequential_with_insertions(model, clone, insert_after):
    layers = []
    last = len(model.layers) - 1
    for i, layer in enumerate(model.layers):
        layers.append(clone(layer))
        extra = insert_after(layer) if i != last else None
        if extra is not None:
            layers.append(extra)
    first_input = model.inputs[0]
    return keras.Sequential(
        [keras.Input(batch_shape=first_input.shape, dtype=first_input.dtype)] + layers,
        name=model.name,
    )


def rebuild(
    model: keras.Model,
    replace: Callable[[keras.layers.Layer], keras.layers.Layer | None] | None = None,
    copy_weights: Callable[[keras.layers.Layer, keras.layers.Layer], None] | None = None,
    insert_after: Callable[[keras.layers.Layer], keras.layers.Layer | None] | None = None,
    what: str = "rebuild",
    unreachable: Callable[[keras.layers.Layer], bool] | None = None,
) -> keras.Model:
    """Clones `model`, letting `replace(layer)` substitute layers.

    Args:
        model: A Functional or Sequential `keras.Model`; nested models are
            rebuilt too (`replace` sees their layers, not the models).
        replace: `replace(layer) -> new layer or None` (None: a fresh copy
            from the layer's config). Defaults to `None` (copy everything).
        copy_weights: `copy_weights(old_layer, new_layer)`, called for each
            layer pair once the clone is built; `None` copies the whole
            model's weights in order (the rewrite must keep every weight's
            shape). Defaults to `None`.
        insert_after: `insert_after(layer) -> a new layer or None`: a layer
            applied to `layer`'s output in the clone. For Sequential models
            nothing is inserted after the last layer; for functional models
            the callable decides (e.g. skip model outputs). Defaults to
            `None`.
        what: the public function's name, for error messages.
        unreachable: optional `wanted(layer) -> bool`: the layers the
            rewrite is meant for; those it cannot reach (inside another,
            non-model layer) are named in one `UserWarning`
            (`warn_unreachable`). Defaults to `None`.

    Returns:
        The new model (same inputs/outputs structure, same name).
    """
    check_graph_model(model, "model", what)
    replace = replace or (lambda layer: None)
    pairs = []

    def clone(layer):
        new = replace(layer)
        if new is None:
            new = fresh_copy(layer)
        pairs.append((layer, new))
        return new

    try:
        if insert_after is not None and isinstance(model, keras.Sequential):
            new_model = _sequential_with_insertions(model, clone, insert_after)
        else:
            call_function = None
            if insert_after is not None:

                def call_function(layer, *args, **kwargs):
                    out = layer(*args, **kwargs)
                    extra = insert_after(layer)
                    return out if extra is None else extra(out)

            new_model = keras.models.clone_model(
                model, clone_function=clone, call_function=call_function, recursive=True
            )
    except ValueError as error:
        raise ValueError(
            f"{what} could not rebuild the Sequential or functional model "
            f"{model.name!r}: {error}"
        ) from error
    if copy_weights is None:
        copy_weights_in_order(model, new_model, what)
    else:
        for old, new in pairs:
            copy_weights(old, new)
    if unreachable is not None:
        warn_unreachable(model, unreachable, what)
    return new_model


def _flat(tensors):
    return keras.tree.flatten(tensors)


def consumers(model: keras.Model) -> dict[str, list[keras.layers.Layer]]:
    """`{layer name: [layers reading its output]}` for a single-call graph."""
    producer = {}
    layers = list(walk(model))
    for layer in layers:
        try:
            outputs = _flat(layer.output)
        except (AttributeError, ValueError):
            continue
        for tensor in outputs:
            producer[id(tensor)] = layer
    result = {layer.name: [] for layer in layers}
    for layer in layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            inputs = _flat(layer.input)
        except (AttributeError, ValueError):
            continue
        for tensor in inputs:
            source = producer.get(id(tensor))
            if source is not None and layer not in result[source.name]:
                result[source.name].append(layer)
    return result


def producers(model: keras.Model) -> dict[str, list[str]]:
    """`{layer name: [layers whose output it reads]}`, inverse of `consumers`."""
    result = {layer.name: [] for layer in walk(model)}
    for name, readers in consumers(model).items():
        for reader in readers:
            result[reader.name].append(name)
    return result


def output_layers(model: keras.Model) -> set[str]:
    """Names of the layers whose output is one of `model.outputs`."""
    outputs = {id(t) for t in keras.tree.flatten(model.outputs)}
    names = set()
    for layer in walk(model):
        try:
            produced = _flat(layer.output)
        except (AttributeError, ValueError):
            continue
        if any(id(t) in outputs for t in produced):
            names.add(layer.name)
    return names


def unreachable_layers(
    model: keras.Model, wanted: Callable[[keras.layers.Layer], bool]
) -> list[tuple[keras.layers.Layer, keras.layers.Layer]]:
    """`[(container, inner layer)]`: layers matching `wanted(layer)` that a
    rewrite cannot replace, because they live inside another (non-model)
    layer: a subclassed layer, `Bidirectional`, `TimeDistributed`,
    `MultiHeadAttention`'s projections, ... ."""
    found = []
    for layer in walk(model):
        inner = layer._flatten_layers(include_self=False, recursive=True)
        for sub in inner:
            if wanted(sub):
                found.append((layer, sub))
    return found


def warn_unreachable(
    model: keras.Model, wanted: Callable[[keras.layers.Layer], bool], what: str
) -> list[tuple[keras.layers.Layer, keras.layers.Layer]]:
    """Warns once, naming each layer `wanted` selects that `what` cannot reach."""
    found = unreachable_layers(model, wanted)
    if found:
        names = ", ".join(f"{sub.name!r} (in {outer.name!r}, {type(outer).__name__})"
                          for outer, sub in found)
        warnings.warn(
            f"{what}: these layers sit inside other layers and are left "
            f"unchanged: {names}. Rewrite the containing layer yourself or "
            "build the model from the plain layers.",
            stacklevel=4,
        )
    return found
