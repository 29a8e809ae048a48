"""`quantize_model_int8`: rewrite a Keras model for int8 quantization-aware training.

The rewritten graph matches what the TFLite converter produces from it:

* every model input is fake-quantized (`ActivationQuantizer`), as TFLite
  quantizes float inputs with a QUANTIZE op;
* Dense/Conv1D/Conv2D/DepthwiseConv2D become `Int8Fused`, absorbing a
  following BatchNormalization (folded) and then a following ReLU/ReLU6
  (fused into the output range) when the intermediate tensor has no other
  reader; a `relu`/`relu6` `activation=` argument is fused the same way;
* Add, average pooling, and a ReLU/ReLU6 or BatchNormalization
  that could not be fused, get their output requantized by an
  `ActivationQuantizer` (TFLite rescales their int8 inputs to that range);
* Concatenate becomes `Int8Concatenate` (inputs and output on one grid),
  and a layer read only by it writes straight onto that grid (see
  `_quantize_after_concat`);
* max pooling, Flatten, Reshape, zero padding and Dropout keep their
  input's grid (TFLite requires equal input and output scales there) and
  are copied unchanged;
* any other layer stays float with a `UserWarning` naming it, and its
  output is fake-quantized so the layers after it read int8 again.
"""

from __future__ import annotations

import warnings

import keras

from tf_lowprec.layers.int8.activation_quantizer import ActivationQuantizer
from tf_lowprec.layers.int8.concatenate import Int8Concatenate
from tf_lowprec.layers.int8.fused_layer import LINEAR_LAYERS, Int8Fused

REQUANTIZED = (
    "Add",
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "ReLU",
    "BatchNormalization",
)
SAME_GRID = (
    "MaxPooling1D",
    "MaxPooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "Flatten",
    "Reshape",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "InputLayer",
    "Identity",
)


def _relu_kind(layer):
    """`"relu"`/`"relu6"` if `layer` is a fusable ReLU layer, else None."""
    name = type(layer).__name__
    if name == "ReLU":
        plain = not layer.negative_slope and not layer.threshold
        if plain and layer.max_value is None:
            return "relu"
        if plain and layer.max_value == 6:
            return "relu6"
        return None
    if name == "Activation":
        kind = keras.activations.serialize(layer.activation)
        return kind if kind in ("relu", "relu6") else None
    return None


def _activation_kind(layer):
    kind = keras.activations.serialize(layer.activation)
    return kind if kind in ("linear", "relu", "relu6") else None


def _foldable_batch_norm(layer):
    if type(layer).__name__ != "BatchNormalization":
        return False
    axis = layer.axis if isinstance(layer.axis, int) else None
    return axis in (-1, len(layer.input.shape) - 1) and not layer.renorm


def _unsupported_reason(layer):
    """Why a linear layer cannot become `Int8Fused` (None if it can)."""
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return "channels_first data format"
    if getattr(layer, "groups", 1) != 1:
        return "grouped convolution"
    if getattr(layer, "padding", None) == "causal":
        return "causal padding"
    if _activation_kind(layer) is None:
        return f"activation {keras.activations.serialize(layer.activation)!r}"
    return None


class _Graph:
    """Who reads each layer's output, for a model whose layers are called once."""

    def __init__(self, model):
        self.layers = list(model.layers)
        producer = {}
        for layer in self.layers:
            for tensor in keras.tree.flatten(layer.output):
                producer[id(tensor)] = layer
        self.readers = {layer.name: [] for layer in self.layers}
        for layer in self.layers:
            for tensor in keras.tree.flatten(layer.input):
                source = producer.get(id(tensor))
                if source is not None and source is not layer:
                    self.readers[source.name].append(layer)
        self.output_ids = {id(t) for t in keras.tree.flatten(model.outputs)}
        self._producer = producer

    def producers(self, layer):
        """The layers whose outputs `layer` reads."""
        found = []
        for tensor in keras.tree.flatten(layer.input):
            source = self._producer.get(id(tensor))
            if source is not None and source is not layer and source not in found:
                found.append(source)
        return found

    def sole_reader(self, layer):
        """The only layer reading `layer`'s output (None if several, or a model output)."""
        readers = self.readers[layer.name]
        if len(readers) != 1 or any(
            id(t) in self.output_ids for t in keras.tree.flatten(layer.output)
        ):
            return None
        return readers[0]


def _plan(model):
    """Layer name -> action: ("fuse", bn, activation, quantize_output), ("absorbed",),
    ("requantize",), ("concat",), ("copy",) or ("float", reason)."""
    graph = _Graph(model)
    plan = {}
    head = {}  # absorbed layer name -> the layer it was fused into
    for layer in graph.layers:
        name = type(layer).__name__
        if layer.name in plan:
            continue
        if name in LINEAR_LAYERS:
            reason = _unsupported_reason(layer)
            if reason is not None:
                plan[layer.name] = ("float", reason)
                continue
            activation, batch_norm, last = _activation_kind(layer), None, layer
            if activation == "linear":
                reader = graph.sole_reader(last)
                if reader is not None and _foldable_batch_norm(reader):
                    batch_norm, last = reader, reader
                    plan[reader.name] = ("absorbed",)
                reader = graph.sole_reader(last)
                if reader is not None and _relu_kind(reader) is not None:
                    activation = _relu_kind(reader)
                    plan[reader.name] = ("absorbed",)
            plan[layer.name] = ("fuse", batch_norm, activation, True)
            for absorbed in {batch_norm, last} - {None, layer}:
                head[absorbed.name] = layer
        elif name == "Concatenate":
            plan[layer.name] = ("concat",)
        elif name in SAME_GRID:
            plan[layer.name] = ("copy",)
        elif name in REQUANTIZED or _relu_kind(layer) is not None:
            plan[layer.name] = ("requantize",)
        else:
            plan[layer.name] = ("float", "no int8 version")
    _quantize_after_concat(graph, plan, head)
    return plan


def _quantize_after_concat(graph, plan, head):
    """Concatenate inputs read only by it are left on no grid of their own.

    TFLite's CONCATENATION copies bytes: inputs and output share one scale.
    As TFMOT does, a producer whose only reader is the concatenation skips
    its own output quantization, so the kernel writes straight onto the
    concatenation's grid (see `Int8Concatenate`); the converter does not
    requantize one FakeQuant into another.
    """
    for layer in graph.layers:
        if type(layer).__name__ != "Concatenate":
            continue
        for source in graph.producers(layer):
            if graph.sole_reader(source) is not layer:
                continue
            owner = head.get(source.name, source)
            action = plan[owner.name]
            if action[0] == "fuse":
                plan[owner.name] = action[:3] + (False,)
            elif action[0] == "requantize":
                plan[owner.name] = ("copy",)


def _functional(model):
    if isinstance(model, keras.Sequential):
        if not model.built or not getattr(model, "_functional", None):
            raise ValueError(
                "quantize_model(scheme='int8') needs a Sequential model built with "
                f"a `keras.Input`. Received: model={model.name!r}"
            )
        return keras.Model(model.inputs, model.outputs, name=model.name)
    if not any(cls.__name__ == "Functional" for cls in type(model).__mro__):
        raise ValueError(
            "quantize_model(scheme='int8') needs a Sequential or functional model "
            f"(subclassed models have no layer graph to rewrite). Received: model={model!r}"
        )
    return model


def quantize_model_int8(model: keras.Model, ema_decay: float = 0.999) -> keras.Model:
    """Returns a copy of `model` set up for int8 quantization-aware training.

    See the module docstring for what each layer becomes. The copy starts
    from `model`'s weights (BatchNormalization parameters included) and is
    uncompiled; train it with `compile`/`fit`, then export it with
    `tf_lowprec.export.to_tflite`. Nested models are not rewritten inside
    (they stay float with a warning).

    Args:
        model: a built Sequential (with an `Input`) or functional model.
        ema_decay: decay of the activation ranges' moving averages.

    Returns:
        The quantization-aware `keras.Model`.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={model!r}")  # noqa: TRY004
    model = _functional(model)
    plan = _plan(model)
    for layer in model.layers:
        action = plan[layer.name]
        if action[0] == "float":
            warnings.warn(
                f"quantize_model(scheme='int8'): layer {layer.name!r} "
                f"({type(layer).__name__}) cannot be quantized ({action[1]}); it "
                "stays float and its output is fake-quantized for the next layers.",
                stacklevel=2,
            )
    pairs = []
    action_of = {}  # id(cloned layer) -> its action
    input_quantizers = {}

    def clone_function(layer):
        action = plan[layer.name]
        if action[0] == "fuse":
            inner_config = layer.get_config()
            inner_config["activation"] = "linear"
            batch_norm = action[1]
            new = Int8Fused(
                type(layer).from_config(inner_config),
                batch_norm=None
                if batch_norm is None
                else type(batch_norm).from_config(batch_norm.get_config()),
                activation=action[2],
                ema_decay=ema_decay,
                quantize_output=action[3],
                name=f"{layer.name}_int8",
            )
        elif action[0] == "concat":
            new = Int8Concatenate(ema_decay=ema_decay, **layer.get_config())
        else:
            new = type(layer).from_config(layer.get_config())
        pairs.append((layer, new))
        action_of[id(new)] = plan[layer.name]
        return new

    def is_model_input(tensor):
        history = getattr(tensor, "_keras_history", None)
        return history is not None and isinstance(
            history.operation, keras.layers.InputLayer
        )

    def quantized_input(tensor):
        if not is_model_input(tensor):
            return tensor
        if id(tensor) not in input_quantizers:
            name = f"{tensor._keras_history.operation.name}_quantizer"
            input_quantizers[id(tensor)] = ActivationQuantizer(ema_decay, name=name)(
                tensor
            )
        return input_quantizers[id(tensor)]

    def call_function(layer, *args, **kwargs):
        action = action_of[id(layer)]
        args = keras.tree.map_structure(
            lambda t: quantized_input(t) if keras.backend.is_keras_tensor(t) else t,
            args,
        )
        if action[0] == "absorbed":
            return args[0]
        outputs = layer(*args, **kwargs)
        if action[0] in ("requantize", "float"):
            outputs = ActivationQuantizer(ema_decay, name=f"{layer.name}_quantizer")(
                outputs
            )
        return outputs

    new_model = keras.models.clone_model(
        model, clone_function=clone_function, call_function=call_function
    )
    for old, new in pairs:
        if isinstance(new, Int8Fused):
            new.layer.set_weights(old.get_weights())
            batch_norm = plan[old.name][1]
            if batch_norm is not None:
                new.batch_norm.set_weights(batch_norm.get_weights())
        elif old.weights and plan[old.name][0] in ("copy", "requantize", "float"):
            new.set_weights(old.get_weights())
    return new_model
