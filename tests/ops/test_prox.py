"""soft_threshold / prox_l1 / prox_l2 / prox_elastic_net against numpy."""

import numpy as np
import pytest
import tensorflow as tf

from tf_lowprec.ops import prox


def _sign_form(x, t):
    return np.sign(x) * np.maximum(np.abs(x) - t, 0)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_soft_threshold_bit_identical_to_sign_form(dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=257).astype("float32")
    x[:5] = [0.0, -0.0, 0.3, -0.3, 1e-8]  # ties at t and tiny values
    xt = tf.cast(x, dtype)
    t = tf.cast(0.3, dtype)
    got = prox.soft_threshold(xt, t)
    assert got.dtype == xt.dtype
    ref = tf.sign(xt) * tf.maximum(tf.abs(xt) - t, tf.zeros_like(xt))
    # Exactly equal values (signed zeros compare equal).
    np.testing.assert_array_equal(
        tf.cast(got, "float64").numpy(), tf.cast(ref, "float64").numpy()
    )


def test_soft_threshold_zero_threshold_is_identity():
    x = np.array([-2.5, -0.0, 0.0, 1e-30, 3.0], "float32")
    np.testing.assert_array_equal(prox.soft_threshold(x, 0.0).numpy(), x)


def test_soft_threshold_tensor_threshold_broadcasts():
    x = np.array([[1.0, -2.0], [0.5, -0.1]], "float32")
    t = np.array([0.6, 1.5], "float32")
    np.testing.assert_array_equal(
        prox.soft_threshold(x, t).numpy(), _sign_form(x, t).astype("float32")
    )


def test_elastic_net_is_soft_threshold_then_shrink():
    x = np.linspace(-3, 3, 13)
    got = prox.prox_elastic_net(x, 0.5, 2.0).numpy()
    np.testing.assert_allclose(got, _sign_form(x, 0.5) / 3.0, rtol=0, atol=0)
    np.testing.assert_array_equal(prox.prox_l1(x, 0.5).numpy(), _sign_form(x, 0.5))
    np.testing.assert_array_equal(prox.prox_l2(x, 2.0).numpy(), x / 3.0)


def test_works_under_xla():
    fn = tf.function(
        lambda x, t: prox.prox_elastic_net(x, t, 0.25), jit_compile=True
    )
    x = tf.constant([-1.0, -0.2, 0.0, 0.2, 1.0])
    np.testing.assert_allclose(
        fn(x, tf.constant(0.5)).numpy(), [-0.4, 0.0, 0.0, 0.0, 0.4], atol=1e-7
    )


@pytest.mark.parametrize(
    "fn, name",
    [
        (prox.soft_threshold, "threshold"),
        (prox.prox_l1, "l1"),
        (prox.prox_l2, "l2"),
    ],
)
def test_negative_strength_raises(fn, name):
    with pytest.raises(ValueError, match=f"`{name}`.*{name}=-0.1"):
        fn(np.ones(3, "float32"), -0.1)
