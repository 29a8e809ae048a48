"""quantize_model: replacement by class and name, weights, warnings, errors."""

import warnings

import keras
import numpy as np
import pytest

from tests.layers._models import conv_bn_dense
from tests.subclassed_model import built_subclassed_model
from tf_lowprec.formats import BlockFloatingPoint, FixedPoint
from tf_lowprec.layers import QuantizedConv2D, QuantizedDense, quantize_model
from tf_lowprec.ops import quantize


def _functional():
    return conv_bn_dense((6, 6, 1), filters=3, hidden=8, classes=4)


def _x():
    return np.random.default_rng(0).normal(size=(4, 6, 6, 1)).astype(np.float32)


def test_replaces_by_class_and_name_and_keeps_weights():
    model = _functional()
    fx = FixedPoint(16, 12)
    bfp = BlockFloatingPoint(8, axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        qmodel = quantize_model(
            model,
            {"Conv2D": {"weight_format": bfp}, "Dense": {"weight_format": fx}, "logits": {}},
        )
    by_name = {layer.name: layer for layer in qmodel.layers}
    assert isinstance(by_name["conv"], QuantizedConv2D) and by_name["conv"].weight_format == bfp
    assert isinstance(by_name["hidden"], QuantizedDense) and by_name["hidden"].weight_format == fx
    # The name entry wins over the class entry: no formats on the logits.
    assert isinstance(by_name["logits"], QuantizedDense) and by_name["logits"].weight_format is None
    assert type(by_name["bn"]) is keras.layers.BatchNormalization
    for old, new in zip(model.weights, qmodel.weights):
        np.testing.assert_array_equal(old, new)
    # Forward pass: the original model with quantized conv and hidden kernels.
    reference = _functional()
    reference.set_weights(model.get_weights())
    conv, hidden = reference.get_layer("conv"), reference.get_layer("hidden")
    conv.kernel.assign(quantize(conv.kernel, bfp))
    conv.bias.assign(quantize(conv.bias, bfp))
    hidden.kernel.assign(quantize(hidden.kernel, fx))
    hidden.bias.assign(quantize(hidden.bias, fx))
    np.testing.assert_allclose(qmodel(_x()), reference(_x()), rtol=1e-5, atol=1e-6)


def test_unknown_layers_and_keys_warn_and_are_left_alone():
    model = _functional()
    with pytest.warns(UserWarning) as record:
        qmodel = quantize_model(model, {"bn": {"weight_format": FixedPoint(8, 4)}, "LSTM": {}})
    messages = " ".join(str(w.message) for w in record)
    assert "'bn' (BatchNormalization) has no quantized version" in messages
    assert "'LSTM' matched no layer" in messages
    assert [type(layer) for layer in qmodel.layers] == [type(layer) for layer in model.layers]
    np.testing.assert_array_equal(qmodel(_x()), model(_x()))


def test_sequential_and_nested_models():
    inner = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, name="inner_dense")], name="inner")
    inputs = keras.Input((5,))
    outputs = keras.layers.Dense(2, name="outer_dense")(inner(inputs))
    model = keras.Model(inputs, outputs)
    qmodel = quantize_model(model, {"Dense": {"weight_format": FixedPoint(12, 8)}})
    assert isinstance(qmodel.get_layer("outer_dense"), QuantizedDense)
    assert isinstance(qmodel.get_layer("inner").get_layer("inner_dense"), QuantizedDense)
    x = np.ones((3, 5), np.float32)
    np.testing.assert_allclose(qmodel(x), model(x), atol=2**-8 * 5)
    sequential = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    qseq = quantize_model(sequential, {"Dense": {"output_format": FixedPoint(16, 10)}})
    assert all(isinstance(layer, QuantizedDense) for layer in qseq.layers)


def test_quantized_model_trains_and_round_trips(tmp_path):
    model = _functional()
    qmodel = quantize_model(model, {"Dense": {"weight_format": FixedPoint(8, 6), "error_format": BlockFloatingPoint(8, axis=None), "seed": 1}})
    qmodel.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qmodel.fit(_x(), np.array([0, 1, 2, 3]), epochs=2, verbose=0)
    path = tmp_path / "q.keras"
    qmodel.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(_x(), verbose=0), qmodel.predict(_x(), verbose=0))


@pytest.mark.parametrize(
    "config, match",
    [
        ([("Dense", {})], "config=\\[\\('Dense'"),
        ({"Dense": 8}, "config\\['Dense'\\]=8"),
        ({"Dense": {"weight_fmt": None}}, "unknown keys \\['weight_fmt'\\]"),
        ({"Dense": {"weight_format": "int8"}}, "weight_format='int8'"),
    ],
)
def test_invalid_config(config, match):
    with pytest.raises(ValueError, match=match):
        quantize_model(_functional(), config)


def test_subclassed_model_is_rejected():
    with pytest.raises(ValueError, match="Sequential or functional"):
        quantize_model(built_subclassed_model(), {"Dense": {}})


def test_nested_models_are_reached_and_wrapped_layers_named_in_one_warning():
    """Issue 18: layers of nested models are rewritten; a Dense inside a
    non-model container (here TimeDistributed) cannot be, and is named."""
    block = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, name="nested_dense")], name="block")
    inputs = keras.Input((2, 3))
    h = keras.layers.TimeDistributed(keras.layers.Dense(3, name="wrapped_dense"), name="td")(inputs)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(3, name="top")(h)
    model = keras.Model(inputs, block(h))
    with pytest.warns(UserWarning) as record:
        qmodel = quantize_model(model, {"Dense": {"weight_quantizer": FixedPoint(8, 4)}})
    messages = [str(w.message) for w in record if "inside other layers" in str(w.message)]
    assert len(messages) == 1 and "'wrapped_dense' (in 'td', TimeDistributed)" in messages[0]
    assert "nested_dense" not in messages[0] and "top" not in messages[0]
    quantized = {layer.name for layer in qmodel.layers[-1].layers if isinstance(layer, QuantizedDense)}
    assert quantized == {"nested_dense"}
    assert isinstance(qmodel.get_layer("top"), QuantizedDense)
    x = np.random.default_rng(0).normal(size=(2, 2, 3)).astype(np.float32)
    assert qmodel(x).shape == (2, 3)
