"""QuantizedConv2D: equivalence with Conv2D, quantization points, fit, saving."""

import keras
import numpy as np
import tensorflow as tf

from tests.layers._models import classification_data, with_same_weights
from tf_lowprec.formats import BlockFloatingPoint, FixedPoint
from tf_lowprec.layers import QuantizedConv2D
from tf_lowprec.ops import quantize


def _x(seed=0):
    return np.random.default_rng(seed).normal(size=(2, 6, 6, 3)).astype(np.float32)


def _pair(**quantization):
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu")
    qconv = QuantizedConv2D(4, 3, padding="same", activation="relu", **quantization)
    return with_same_weights(conv, qconv, (None, 6, 6, 3))


def test_without_formats_equals_conv2d():
    conv, qconv = _pair()
    np.testing.assert_array_equal(conv(_x()), qconv(_x()))


def test_forward_quantization_points():
    w, a = BlockFloatingPoint(6, axis=-1), BlockFloatingPoint(8, axis=None)
    conv, qconv = _pair(weight_format=w, output_format=a)
    expected = tf.nn.relu(
        tf.nn.conv2d(_x(), quantize(conv.kernel, w), 1, "SAME") + quantize(conv.bias, w)
    )
    np.testing.assert_allclose(qconv(_x()), quantize(expected, a), rtol=1e-6)


def test_error_format_quantizes_the_output_gradient():
    err = FixedPoint(8, 6)
    conv, qconv = _pair(error_format=err, backward_rounding="nearest")
    qconv.activation = None
    conv.activation = None
    x = tf.constant(_x())
    upstream = tf.constant(np.random.default_rng(5).normal(size=(2, 6, 6, 4)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        q_loss = tf.reduce_sum(qconv(x) * upstream)
        loss = tf.reduce_sum(conv(x) * quantize(upstream, err))
    np.testing.assert_allclose(tape.gradient(q_loss, x), tape.gradient(loss, x), rtol=1e-5, atol=1e-6)


def test_trains_with_fit_and_saves(tmp_path):
    x, y = classification_data(n=96, shape=(6, 6, 1))
    bfp = BlockFloatingPoint(8, axis=None)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            QuantizedConv2D(8, 3, activation="relu", weight_format=BlockFloatingPoint(8, axis=-1), output_format=bfp, error_format=bfp, gradient_format=bfp, seed=3),
            keras.layers.Flatten(),
            keras.layers.Dense(4),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    path = tmp_path / "qconv.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.layers[0].weight_format == BlockFloatingPoint(8, axis=-1)
    np.testing.assert_array_equal(loaded.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0))
