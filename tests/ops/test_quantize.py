"""`quantize` / `quantize_gradient`: contract shared by all formats."""

import numpy as np
import pytest
import tensorflow as tf

from tf_lowprec.formats import BlockFloatingPoint, FixedPoint, FloatingPoint, IntegerAffine
from tf_lowprec.ops import quantize, quantize_gradient

# One representative per kernel (the per-format files cover the variants).
FORMATS = [
    FixedPoint(8, 4),
    BlockFloatingPoint(8, axis=0),
    FloatingPoint(5, 2),
    IntegerAffine(4, symmetric=False, per_channel_axis=-1),
]
ROUNDINGS = ["nearest", "stochastic"]


def _data(shape=(6, 10), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("fmt", FORMATS, ids=repr)
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_straight_through_gradient(fmt, rounding):
    x = tf.constant(_data())
    w = tf.constant(_data(seed=1))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(quantize(x, fmt, rounding, seed=1) * w)
    np.testing.assert_array_equal(tape.gradient(loss, x), w)


@pytest.mark.parametrize("fmt", FORMATS, ids=repr)
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_idempotent_and_graph_and_xla_agree(fmt, rounding):
    x = _data()
    eager = quantize(x, fmt, rounding, seed=5).numpy()
    graph = tf.function(lambda t: quantize(t, fmt, rounding, seed=5))(x)
    xla = tf.function(
        lambda t: quantize(t, fmt, rounding, seed=5), jit_compile=True
    )(x)
    np.testing.assert_array_equal(eager, graph)
    np.testing.assert_array_equal(eager, xla)
    # Quantized values are on the grid: quantizing again changes nothing.
    # IntegerAffine recomputes its grid from the data: after stochastic or
    # asymmetric rounding the range, hence the grid, can change; symmetric
    # nearest keeps it up to the last bit of the recomputed scale.
    again = quantize(eager, fmt, rounding, seed=9)
    if not isinstance(fmt, IntegerAffine):
        np.testing.assert_array_equal(again, eager)
    elif fmt.symmetric and rounding == "nearest":
        np.testing.assert_allclose(again, eager, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("fmt", FORMATS, ids=repr)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_low_precision_dtypes(fmt, dtype):
    x = tf.constant(_data(), dtype)
    y = quantize(x, fmt, "stochastic", seed=2)
    assert y.dtype == x.dtype and y.shape == x.shape
    expected = quantize(tf.cast(x, tf.float32), fmt, "stochastic", seed=2)
    np.testing.assert_array_equal(y, tf.cast(expected, dtype))
    with tf.GradientTape() as tape:
        tape.watch(x)
        g = tape.gradient(tf.reduce_sum(quantize(x, fmt) * 3), x)
    assert g.dtype == x.dtype
    np.testing.assert_array_equal(g, np.full(x.shape, 3.0))


@pytest.mark.parametrize("fmt", FORMATS, ids=repr)
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_nan_and_inf_pass_through_and_are_left_out_of_ranges(fmt, rounding):
    x = _data()
    clean = quantize(x, fmt, rounding, seed=4).numpy()
    dirty = x.copy()
    dirty[1, 2], dirty[3, 3], dirty[4, 9] = np.nan, np.inf, -np.inf
    y = quantize(dirty, fmt, rounding, seed=4).numpy()
    assert np.isnan(y[1, 2]) and y[3, 3] == np.inf and y[4, 9] == -np.inf
    finite = np.isfinite(dirty)
    if isinstance(fmt, (BlockFloatingPoint, IntegerAffine)):
        # The remaining entries see the range of the finite entries only.
        x_rest = np.where(finite, x, 0.0)
        expected = quantize(x_rest, fmt, rounding, seed=4).numpy()
        np.testing.assert_array_equal(y[finite], expected[finite])
    else:
        np.testing.assert_array_equal(y[finite], clean[finite])


@pytest.mark.parametrize("fmt", FORMATS, ids=repr)
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_all_zero_input_gives_zero_not_nan(fmt, rounding):
    y = quantize(np.zeros((4, 5), np.float32), fmt, rounding, seed=1).numpy()
    np.testing.assert_array_equal(y, 0.0)


@pytest.mark.parametrize("fmt", FORMATS, ids=repr)
def test_finite_inputs_give_finite_outputs(fmt):
    info = np.finfo(np.float32)
    x = np.array(
        [[info.max, -info.max, info.tiny, -info.tiny, 1e-45, 0.0, -0.0, 1.0]],
        np.float32,
    )
    for rounding in ROUNDINGS:
        assert np.all(np.isfinite(quantize(x, fmt, rounding, seed=0)))


def test_none_format_is_identity():
    x = _data()
    np.testing.assert_array_equal(quantize(x, None), x)
    np.testing.assert_array_equal(quantize_gradient(x, None), x)


def test_stochastic_seed_semantics():
    x = _data((64,))
    fmt = FixedPoint(6, 2)
    a = quantize(x, fmt, "stochastic", seed=3).numpy()
    np.testing.assert_array_equal(a, quantize(x, fmt, "stochastic", seed=3))
    assert not np.array_equal(a, quantize(x, fmt, "stochastic", seed=4))
    assert not np.array_equal(
        quantize(x, fmt, "stochastic").numpy(), quantize(x, fmt, "stochastic").numpy()
    )


def test_invalid_arguments():
    with pytest.raises(ValueError, match="rounding='up'"):
        quantize([1.0], FixedPoint(8, 4), rounding="up")
    with pytest.raises(ValueError, match="fmt=8"):
        quantize([1.0], 8)
    with pytest.raises(ValueError, match="dtype=int32"):
        quantize(tf.constant([1, 2]), FixedPoint(8, 4))
    with pytest.raises(ValueError, match="axis=3"):
        quantize(np.ones((2, 2), np.float32), BlockFloatingPoint(8, axis=3))
    with pytest.raises(ValueError, match="per_channel_axis=2"):
        quantize(np.ones((2, 2), np.float32), IntegerAffine(8, per_channel_axis=2))
    with pytest.raises(ValueError, match="rounding='x'"):
        quantize_gradient([1.0], FixedPoint(8, 4), rounding="x")


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_quantize_gradient_quantizes_only_the_backward_pass(rounding):
    fmt = FixedPoint(6, 3)
    x = tf.constant(_data())
    upstream = tf.constant(_data(seed=3))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = quantize_gradient(x, fmt, rounding, seed=8)
        loss = tf.reduce_sum(y * upstream)
    np.testing.assert_array_equal(y, x)
    expected = quantize(upstream, fmt, rounding, seed=8)
    np.testing.assert_array_equal(tape.gradient(loss, x), expected)


def test_forward_and_backward_formats_compose():
    # SWALP's activation/error quantizer: Q_A forward, Q_E backward.
    x = tf.constant(_data())
    upstream = tf.constant(_data(seed=3) * 1e-3)
    act, err = BlockFloatingPoint(8, axis=None), BlockFloatingPoint(4, axis=None)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = quantize_gradient(quantize(x, act), err, "nearest")
        loss = tf.reduce_sum(y * upstream)
    np.testing.assert_array_equal(y, quantize(x, act))
    np.testing.assert_array_equal(tape.gradient(loss, x), quantize(upstream, err))


def test_quantize_inside_jit_compiled_training_step():
    w = tf.Variable(_data((10, 3)))
    fmt = BlockFloatingPoint(8, axis=-1)

    @tf.function(jit_compile=True)
    def step(x):
        with tf.GradientTape() as tape:
            y = tf.matmul(x, quantize(w, fmt, "stochastic", seed=1))
            loss = tf.reduce_mean(y**2)
        w.assign_sub(0.1 * quantize_gradient(tape.gradient(loss, w), None))
        return loss

    first = step(_data()).numpy()
    for _ in range(5):
        last = step(_data()).numpy()
    assert np.isfinite(last) and last < first
