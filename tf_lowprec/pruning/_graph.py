"""Model-graph helpers shared by the pruning verbs (private).

* `rebuild(model, replace)`: clone a Functional/Sequential model layer by
  layer (nested models included), replacing some layers, and copy weights.
* `walk(model)`: every layer, nested models flattened, in model order.
* `consumers(model)`: which layers read each layer's output (public
  `layer.input` / `layer.output` tensors only).
"""

import keras

from tf_lowprec import validation


def walk(model):
    """Yields the layers of `model`, recursing into nested models."""
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model):
            yield from walk(layer)
        else:
            yield layer


def _fresh_copy(layer):
    return layer.__class__.from_config(layer.get_config())


def rebuild(model, replace, copy_weights):
    """Clones `model`, letting `replace(layer)` substitute layers.

    Args:
        model: A Functional or Sequential `keras.Model`.
        replace: `replace(layer) -> new layer or None` (None: plain copy).
        copy_weights: `copy_weights(old_layer, new_layer)` called for each
            layer pair once the clone is built.

    Returns:
        The new model (same inputs/outputs structure, same name).
    """
    check_graph_model(model)
    pairs = []

    def clone_function(layer):
        new = replace(layer)
        if new is None:
            new = _fresh_copy(layer)
        pairs.append((layer, new))
        return new

    clone = keras.models.clone_model(model, clone_function=clone_function, recursive=True)
    for old, new in pairs:
        copy_weights(old, new)
    return clone


def check_graph_model(model, name="model"):
    """Raises unless `model` is a Functional or Sequential `keras.Model`."""
    if not isinstance(model, keras.Model) or not (
        isinstance(model, keras.Sequential) or _is_functional(model)
    ):
        raise ValueError(
            f"`{name}` must be a Functional or Sequential keras.Model (subclassed "
            "models have no layer graph to rewrite; wrap their layers yourself). "
            f"Received: {name}={model!r}"
        )


def check_layer_selection(model, layers, name="layers"):
    """`layers` as given (None or a callable), or the set of names, all in `model`."""
    if layers is None or callable(layers):
        return layers
    return validation.names(layers, name, known=[layer.name for layer in walk(model)])


def _is_functional(model):
    return any(cls.__name__ == "Functional" for cls in type(model).__mro__)


def _flat(tensors):
    return keras.tree.flatten(tensors)


def consumers(model):
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


def producers(model):
    """`{layer name: [layers whose output it reads]}`, inverse of `consumers`."""
    result = {layer.name: [] for layer in walk(model)}
    for name, readers in consumers(model).items():
        for reader in readers:
            result[reader.name].append(name)
    return result


def output_layers(model):
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
