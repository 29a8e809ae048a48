"""`Quantizer`: the value object every quantizing API takes, and `stream_seed`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_lowprec import ops
from tf_lowprec.formats import BlockFloatingPoint, FixedPoint, ScaledInteger
from tf_lowprec.ops import rounding
from tf_lowprec.quantizers import Quantizer, as_quantizer, stream_seed

X = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)


@pytest.mark.parametrize("mode", ["nearest", "stochastic"])
def test_call_is_ops_quantize(mode):
    fmt = BlockFloatingPoint(5, axis=0)
    q = Quantizer(fmt, mode, seed=11)
    np.testing.assert_array_equal(q(X), ops.quantize(X, fmt, mode, 11))
    np.testing.assert_array_equal(
        q(X, step=3, index=2, stream=1), ops.quantize(X, fmt, mode, stream_seed(11, 3, 2, 1))
    )


def test_gradient_quantizes_the_incoming_gradient():
    fmt = FixedPoint(6, 3)
    x = tf.constant(X)
    upstream = tf.constant(X[::-1].copy())
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = Quantizer(fmt, "stochastic", seed=4).gradient(x)
    np.testing.assert_array_equal(y, X)
    np.testing.assert_array_equal(
        tape.gradient(y, x, upstream), ops.quantize(upstream, fmt, "stochastic", 4)
    )


def test_scaled_integer_needs_its_scale():
    q = Quantizer(ScaledInteger(4), "nearest")
    np.testing.assert_array_equal(q(X, scale=0.25), ops.quantize_scaled(X, 0.25, 4))
    with pytest.raises(ValueError, match="scale"):
        q(X)
    with pytest.raises(ValueError, match="scale"):
        Quantizer(FixedPoint(8, 4))(X, scale=1.0)


def test_stream_seed_is_fold_in_of_seed_and_step():
    """The documented rule, checked on the bits it produces."""
    expected = rounding.fold_in(tf.constant([9, 5], tf.int64), 3 * 64 + 2)
    np.testing.assert_array_equal(stream_seed(9, 5, 3, 2), expected)
    np.testing.assert_array_equal(stream_seed(9, tf.constant(5), 3, 2), expected)
    assert not np.array_equal(stream_seed(9, 6, 3, 2), expected)
    with pytest.raises(ValueError, match="stream"):
        stream_seed(9, 5, 0, 64)


def test_value_object_config_equality_and_repr():
    q = Quantizer(BlockFloatingPoint(8, axis=None), "stochastic", seed=3)
    assert Quantizer.from_config(q.get_config()) == q
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(q))
    assert again == q and hash(again) == hash(q)
    assert q != Quantizer(BlockFloatingPoint(8, axis=None), "stochastic")
    assert repr(q) == "Quantizer(BlockFloatingPoint(word_length=8, axis=None, small_block_rank=1), 'stochastic', seed=3)"
    # The former (format, rounding) pairs (deprecated view).
    assert q == (BlockFloatingPoint(8, axis=None), "stochastic") and q[0] == q.format
    fmt, mode = q
    assert mode == "stochastic" and fmt == BlockFloatingPoint(8, axis=None)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"format": "int8"}, "format='int8'"),
        ({"format": None}, "format=None"),
        ({"format": FixedPoint(8, 4), "rounding": "up"}, "rounding='up'"),
        ({"format": FixedPoint(8, 4), "seed": -1}, "seed"),
        ({"format": FixedPoint(8, 4), "seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Quantizer(**kwargs)


def test_as_quantizer_accepts_quantizers_formats_configs_and_none():
    fmt = FixedPoint(8, 4)
    assert as_quantizer(None, "q") is None
    assert as_quantizer(fmt, "q", "stochastic") == Quantizer(fmt, "stochastic")
    q = Quantizer(fmt, seed=2)
    assert as_quantizer(q, "q") is q
    assert as_quantizer(q.get_config(), "q") == q
    assert as_quantizer(keras.saving.serialize_keras_object(fmt), "q") == Quantizer(fmt)
    with pytest.raises(ValueError, match="weight_quantizer=3"):
        as_quantizer(3, "weight_quantizer")
    with pytest.raises(ValueError, match="ScaledInteger"):
        as_quantizer(Quantizer(ScaledInteger(8)), "weight_quantizer",
                     allowed=(FixedPoint, BlockFloatingPoint))
