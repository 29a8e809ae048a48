"""FixedPoint quantization against the numpy oracles (ours, QPyTorch, HALP)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.ops._stats import assert_unbiased
from tests.reference import quant_numpy as ref
from tf_lowprec.formats import FixedPoint
from tf_lowprec.ops import quantize, quantize_scaled, rounding

FORMATS = [FixedPoint(8, 4), FixedPoint(4, 2), FixedPoint(12, 14), FixedPoint(6, -3)]
SHAPE = (32, 16)


def _data(fmt, seed=0):
    # Spans the range and a bit beyond, so that clamping is exercised.
    rng = np.random.default_rng(seed)
    return (rng.normal(size=SHAPE) * 0.6 * fmt.max_value).astype(np.float32)


@pytest.mark.parametrize("fmt", FORMATS, ids=repr)
def test_nearest_matches_oracle_and_qpytorch_cpu(fmt):
    x = _data(fmt)
    y = quantize(x, fmt).numpy()
    expected = ref.fixed_point(x, fmt.word_length, fmt.fractional_length)
    np.testing.assert_array_equal(y, expected)
    qpt = ref.qpytorch_fixed_point(x, fmt.word_length, fmt.fractional_length)
    np.testing.assert_array_equal(y, qpt)


@pytest.mark.parametrize("fmt", FORMATS, ids=repr)
def test_stochastic_matches_oracle_bit_for_bit(fmt):
    x = _data(fmt, seed=1)
    y = quantize(x, fmt, "stochastic", seed=17).numpy()
    u = rounding.uniform(SHAPE, 17).numpy()
    expected = ref.fixed_point(x, fmt.word_length, fmt.fractional_length, "stochastic", u)
    np.testing.assert_array_equal(y, expected)
    # QPyTorch's nearbyint(v + r - 0.5) differs only where v + r is an integer.
    qpt = ref.qpytorch_fixed_point(
        x, fmt.word_length, fmt.fractional_length, "stochastic", u
    )
    v = x.astype(np.float64) * 2.0**fmt.fractional_length + u
    assert np.all((y == qpt) | (v == np.round(v)))


def test_qpytorch_cuda_differs_only_at_ties():
    fmt = FixedPoint(8, 2)
    x = np.array([0.125, -0.125, 0.375, -0.375, 0.3, 1.125, -31.875], np.float32)
    y = quantize(x, fmt).numpy()
    np.testing.assert_array_equal(y, [0.0, -0.0, 0.5, -0.5, 0.25, 1.0, -32.0])
    cuda = ref.qpytorch_fixed_point(x, 8, 2, device="cuda")
    np.testing.assert_array_equal(cuda, [0.25, -0.25, 0.5, -0.5, 0.25, 1.25, -32.0])


@pytest.mark.parametrize("rounding_mode", ["nearest", "stochastic"])
def test_clamp_bounds_are_exact(rounding_mode):
    fmt = FixedPoint(8, 4)
    x = np.array([1e30, 7.96875, 7.97, 8.0, -8.0, -8.01, -1e30, 3e38, -3e38], np.float32)
    y = quantize(x, fmt, rounding_mode, seed=0).numpy()
    assert y.max() == fmt.max_value == 7.9375
    assert y.min() == fmt.min_value == -8.0
    np.testing.assert_array_equal(y[[0, 2, 3, 7]], 7.9375)
    np.testing.assert_array_equal(y[[4, 5, 6, 8]], -8.0)


@settings(max_examples=30, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    x=hnp.arrays(np.float32, 64, elements=st.floats(-1e4, 1e4, width=32)),
    seed=st.integers(0, 2**31),
)
def test_properties_on_grid_in_range_within_one_ulp(fmt, x, seed):
    for mode in ("nearest", "stochastic"):
        y = quantize(x, fmt, mode, seed=seed).numpy().astype(np.float64)
        k = y / fmt.ulp
        np.testing.assert_array_equal(k, np.round(k))  # on the grid
        assert np.all((y >= fmt.min_value) & (y <= fmt.max_value))
        inside = (x >= fmt.min_value) & (x <= fmt.max_value)
        err = np.abs(y - x)[inside]
        assert np.all(err <= (0.5 if mode == "nearest" else 1.0) * fmt.ulp)
        np.testing.assert_array_equal(quantize(y, fmt, mode, seed=seed + 1), y)


@pytest.mark.parametrize("value", [0.3, -1.7, 0.0625 * 5 + 0.001, -7.99])
def test_stochastic_rounding_is_unbiased(value):
    fmt = FixedPoint(8, 4)
    n = 100_000
    samples = quantize(np.full(n, value, np.float32), fmt, "stochastic", seed=4)
    assert_unbiased(samples, np.float32(value), fmt.ulp)


def test_unbiasedness_check_has_power():
    # The same statistic rejects nearest rounding (biased for frac != 0.5):
    # the tolerance is tight enough for the property test to really fail.
    fmt = FixedPoint(8, 4)
    samples = quantize(np.full(100_000, 0.3, np.float32), fmt, "nearest")
    with pytest.raises(AssertionError, match="standard errors"):
        assert_unbiased(samples, np.float32(0.3), fmt.ulp)


@pytest.mark.parametrize("fmt", FORMATS, ids=repr)
def test_equals_quantize_scaled_with_power_of_two_scale(fmt):
    x = _data(fmt, seed=3)
    for mode in ("nearest", "stochastic"):
        np.testing.assert_array_equal(
            quantize(x, fmt, mode, seed=2),
            quantize_scaled(x, fmt.ulp, fmt.word_length, mode, seed=2),
        )
