"""quantize_scaled (HALP's Q) against the torchhalp definition and vectors."""

import numpy as np
import pytest
import tensorflow as tf

from tests.ops._stats import assert_unbiased
from tests.reference import quant_numpy as ref
from tf_lowprec.ops import quantize_scaled, rounding


def test_halp_golden_vector():
    # algorithms.md §2.2: delta = 0.01, b = 4 (note the clamps at +0.07, -0.08).
    x = np.array([0.013, -0.013, 0.5, -0.5, 0.0049], np.float32)
    y = quantize_scaled(x, 0.01, 4).numpy()
    np.testing.assert_allclose(y, [0.01, -0.01, 0.07, -0.08, 0.0], rtol=1e-6)
    np.testing.assert_allclose(ref.halp_quantize(x, 0.01, 4), y, rtol=1e-6)


def test_halp_delta_formula_vector():
    # ||g|| = 5, mu = 20, b = 8: delta = 5 / (20 * 127).
    delta = 5.0 / (20 * (2**7 - 1))
    assert abs(delta - 0.0019685) < 1e-7
    y = quantize_scaled([1.0, -1.0], delta, 8).numpy()
    np.testing.assert_allclose(y, [127 * delta, -128 * delta], rtol=1e-6)


def test_matches_halp_except_at_ties():
    rng = np.random.default_rng(0)
    x = rng.normal(size=4096).astype(np.float32) * 0.05
    delta = np.float32(0.003)
    y = quantize_scaled(x, delta, 6).numpy()
    halp = ref.halp_quantize(x, delta, 6)  # round half up
    v = x / delta
    tie = np.abs(v - np.floor(v) - 0.5) < 1e-5
    np.testing.assert_allclose(y[~tie], halp[~tie], rtol=1e-6, atol=1e-9)
    u = rounding.uniform([4096], 3).numpy()
    y = quantize_scaled(x, delta, 6, "stochastic", seed=3).numpy()
    # v = x / delta is a float32 division, as in the kernel.
    k = np.clip(np.floor(v.astype(np.float64) + u), -32, 31)
    np.testing.assert_array_equal(y, (k * delta).astype(np.float32))


def test_zero_scale_gives_zero_and_tensor_scale_broadcasts():
    x = np.array([[0.5, -0.25], [0.5, -0.25]], np.float32)
    scale = tf.constant([[0.0], [0.25]])
    np.testing.assert_array_equal(
        quantize_scaled(x, scale, 4), [[0.0, 0.0], [0.5, -0.25]]
    )


def test_stochastic_is_unbiased():
    samples = quantize_scaled(np.full(100_000, 0.0123, np.float32), 0.01, 8, "stochastic", seed=1)
    assert_unbiased(samples, np.float32(0.0123) / np.float32(0.01) * 0.01, 0.01, discretization=1e-5)


@pytest.mark.parametrize("bits", [1, 25, 8.0, True])
def test_invalid_bits(bits):
    with pytest.raises(ValueError, match=f"bits={bits!r}"):
        quantize_scaled([1.0], 0.1, bits)
