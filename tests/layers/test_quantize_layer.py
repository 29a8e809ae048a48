"""`Quantize` layer: activations forward, errors backward, config, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_lowprec.formats import BlockFloatingPoint, FixedPoint
from tf_lowprec.layers import Quantize
from tf_lowprec.ops import quantize


def _x(shape=(4, 6), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_forward_and_backward_formats():
    act, err = FixedPoint(8, 4), BlockFloatingPoint(4, axis=None)
    layer = Quantize(act, err, backward_rounding="nearest")
    x = tf.constant(_x())
    upstream = tf.constant(_x(seed=1) * 1e-2)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * upstream)
    np.testing.assert_array_equal(y, quantize(x, act))
    np.testing.assert_array_equal(tape.gradient(loss, x), quantize(upstream, err))


def test_none_formats_are_identity():
    x = _x()
    np.testing.assert_array_equal(Quantize()(x), x)


def test_stochastic_draws_change_per_call_and_follow_the_seed():
    fmt = FixedPoint(6, 1)
    x = _x((64,))
    layer = Quantize(fmt, rounding="stochastic", seed=3)
    first, second = layer(x).numpy(), layer(x).numpy()
    assert not np.array_equal(first, second)
    again = Quantize(fmt, rounding="stochastic", seed=3)
    np.testing.assert_array_equal(again(x), first)


def test_config_round_trip_and_saving(tmp_path):
    layer = Quantize(FixedPoint(8, 4), BlockFloatingPoint(8), backward_rounding="nearest", seed=7, name="q")
    config = layer.get_config()
    restored = Quantize.from_config(config)
    assert restored.forward_format == FixedPoint(8, 4)
    assert restored.backward_format == BlockFloatingPoint(8)
    assert (restored.rounding, restored.backward_rounding, restored.seed) == ("nearest", "nearest", 7)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3), layer])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.layers[-1].forward_format == FixedPoint(8, 4)
    np.testing.assert_array_equal(loaded.predict(_x(), verbose=0), model.predict(_x(), verbose=0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"forward_format": "int8"}, "forward_format='int8'"),
        ({"backward_format": 3}, "backward_format=3"),
        ({"rounding": "floor"}, "rounding='floor'"),
        ({"backward_rounding": None}, "backward_rounding=None"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Quantize(**kwargs)
