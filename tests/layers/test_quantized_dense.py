"""QuantizedDense: equivalence with Dense, quantization points, fit, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.layers._models import classification_data, with_same_weights
from tf_lowprec.formats import BlockFloatingPoint, FixedPoint, FloatingPoint
from tf_lowprec.layers import QuantizedDense
from tf_lowprec.ops import quantize


def _x(shape=(5, 8), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _pair(**quantization):
    dense = keras.layers.Dense(6, activation="relu")
    qdense = QuantizedDense(6, activation="relu", **quantization)
    return with_same_weights(dense, qdense, (None, 8))


def test_without_formats_equals_dense():
    dense, qdense = _pair()
    x = tf.constant(_x())
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y, qy = dense(x), qdense(x)
    np.testing.assert_array_equal(y, qy)
    np.testing.assert_array_equal(tape.gradient(y, dense.kernel), tape.gradient(qy, qdense.kernel))


def test_forward_quantization_points():
    w, a, i = FixedPoint(6, 4), FloatingPoint(5, 2), FixedPoint(8, 5)
    dense, qdense = _pair(weight_format=w, output_format=a, input_format=i)
    x = _x()
    expected = tf.nn.relu(
        quantize(x, i) @ quantize(dense.kernel, w) + quantize(dense.bias, w)
    )
    np.testing.assert_array_equal(qdense(x), quantize(expected, a))


def test_backward_quantization_points():
    err, grad = BlockFloatingPoint(4, axis=None), FixedPoint(8, 9)
    dense, qdense = _pair(error_format=err, gradient_format=grad, backward_rounding="nearest")
    qdense.activation = None
    x = tf.constant(_x())
    upstream = tf.constant(_x((5, 6), seed=2))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(qdense(x) * upstream)
    dx, dkernel, dbias = tape.gradient(loss, [x, qdense.kernel, qdense.bias])
    q_up = quantize(upstream, err)
    np.testing.assert_allclose(dx, q_up @ tf.transpose(qdense.kernel), rtol=1e-6)
    np.testing.assert_array_equal(dkernel, quantize(tf.transpose(x) @ q_up, grad))
    np.testing.assert_array_equal(dbias, quantize(tf.reduce_sum(q_up, 0), grad))


def test_trains_with_fit_and_saves(tmp_path):
    x, y = classification_data()
    bfp = BlockFloatingPoint(8, axis=0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            QuantizedDense(16, activation="relu", weight_format=bfp, output_format=BlockFloatingPoint(8, axis=None), error_format=BlockFloatingPoint(8, axis=None), gradient_format=bfp, rounding="stochastic", seed=1),
            QuantizedDense(4, weight_format=FixedPoint(8, 6), seed=2),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    path = tmp_path / "qdense.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    layer = loaded.layers[0]
    assert isinstance(layer, QuantizedDense) and layer.weight_format == bfp
    assert layer.rounding == "stochastic" and layer.seed == 1
    np.testing.assert_array_equal(loaded.layers[1].kernel, model.layers[1].kernel)
    # The second layer rounds to nearest: deterministic given its input.
    h = model.layers[0](x[:8])
    np.testing.assert_array_equal(loaded.layers[1](h), model.layers[1](h))


def test_config_round_trip():
    layer = QuantizedDense(3, activation="tanh", weight_format=FixedPoint(8, 4), error_format=BlockFloatingPoint(6), backward_rounding="nearest", seed=4)
    restored = QuantizedDense.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    assert restored.error_format == BlockFloatingPoint(6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weight_format": "fp8"}, "weight_format='fp8'"),
        ({"gradient_format": 1}, "gradient_format=1"),
        ({"rounding": "up"}, "rounding='up'"),
        ({"backward_rounding": "down"}, "backward_rounding='down'"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QuantizedDense(3, **kwargs)


def test_mixed_precision_policy():
    x, y = classification_data(n=64)
    bfp = BlockFloatingPoint(8, axis=None)
    layer = QuantizedDense(4, weight_format=bfp, output_format=bfp, error_format=bfp, dtype="mixed_bfloat16", seed=0)
    model = keras.Sequential([keras.Input((8,)), layer])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert layer.kernel.dtype == "float32"
    assert model(x[:2]).dtype == "bfloat16"
    assert np.isfinite(history.history["loss"][-1])


def test_stochastic_layer_resumes_bit_identically_from_keras_file(tmp_path):
    """Regression: the layer's seed-generator state was not saved, so a run
    resumed from `.keras` repeated the first draws instead of continuing."""
    from tf_lowprec.quantizers import Quantizer

    x, y = classification_data()
    x, y = x[:32], y[:32]
    stochastic = Quantizer(BlockFloatingPoint(4, axis=None), "stochastic")

    def make():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8,)), QuantizedDense(
            4, weight_quantizer=stochastic, output_quantizer=stochastic, error_quantizer=stochastic, seed=5)])
        model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    straight = make()
    straight.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    straight.save(tmp_path / "half.keras")
    straight.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    resumed = keras.models.load_model(tmp_path / "half.keras")
    assert resumed.layers[0].weight_quantizer == stochastic
    resumed.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        straight.layers[0].seed_generator.state.numpy(), [5, 4]
    )
    np.testing.assert_array_equal(
        resumed.layers[0].seed_generator.state.numpy(), [5, 4]
    )


def test_quantizer_keywords_equal_the_deprecated_format_keywords():
    from tf_lowprec.quantizers import Quantizer

    fx = FixedPoint(8, 4)
    bfp = BlockFloatingPoint(6, axis=None)
    old = QuantizedDense(3, weight_format=fx, error_format=bfp, rounding="stochastic", seed=2)
    new = QuantizedDense(3, weight_quantizer=Quantizer(fx, "stochastic"),
                         error_quantizer=Quantizer(bfp, "stochastic"), seed=2)
    assert old.weight_quantizer == new.weight_quantizer and old.error_format == bfp
    old.build((None, 8))
    new.build((None, 8))
    new.set_weights(old.get_weights())
    np.testing.assert_array_equal(old(_x()), new(_x()))
    with pytest.raises(ValueError, match="not both"):
        QuantizedDense(3, weight_quantizer=fx, weight_format=fx)
    with pytest.raises(ValueError, match="output_quantizer"):
        QuantizedDense(3, output_quantizer="int8")
