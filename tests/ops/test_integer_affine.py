"""IntegerAffine fake quantization and codes against the numpy oracle."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.ops._stats import assert_unbiased
from tests.reference import quant_numpy as ref
from tf_lowprec.formats import IntegerAffine
from tf_lowprec.ops import affine_codes, quantize, rounding

FORMATS = [
    IntegerAffine(8),
    IntegerAffine(4),
    IntegerAffine(8, symmetric=False),
    IntegerAffine(4, symmetric=False, per_channel_axis=-1),
    IntegerAffine(8, per_channel_axis=0),
    IntegerAffine(3, symmetric=False, per_channel_axis=1),
]


def _data(seed=0, shape=(3, 3, 4, 6)):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) + rng.normal(size=shape[-1])  # channel offsets
    x[..., 2] = 0.0  # an all-zero output channel
    x[..., 3] = np.abs(x[..., 3])  # an all-positive channel
    return x.astype(np.float32)


@pytest.mark.parametrize("fmt", FORMATS, ids=repr)
def test_codes_and_values_match_oracle(fmt):
    x = _data()
    codes, scale, zero_point = (t.numpy() for t in affine_codes(x, fmt))
    r_codes, r_scale, r_zp, r_values = ref.integer_affine(
        x, fmt.bits, fmt.symmetric, fmt.per_channel_axis
    )
    np.testing.assert_array_equal(scale, r_scale)
    np.testing.assert_array_equal(zero_point, r_zp)
    np.testing.assert_array_equal(codes, r_codes)
    np.testing.assert_array_equal(quantize(x, fmt), r_values)
    u = rounding.uniform(x.shape, 9).numpy()
    np.testing.assert_array_equal(
        quantize(x, fmt, "stochastic", seed=9),
        ref.integer_affine(x, fmt.bits, fmt.symmetric, fmt.per_channel_axis, u)[3],
    )


@pytest.mark.parametrize("fmt", FORMATS, ids=repr)
def test_code_range_zero_and_extremes(fmt):
    x = _data(1)
    codes, scale, zero_point = (t.numpy() for t in affine_codes(x, fmt))
    assert codes.min() >= fmt.code_min and codes.max() <= fmt.code_max
    np.testing.assert_array_equal(codes, np.round(codes))
    y = quantize(x, fmt).numpy()
    assert np.all(y[x == 0] == 0)  # zero is exact, all-zero channel gives 0
    assert np.all(np.abs(y - x) <= 0.5 * scale * (1 + 1e-6))
    if fmt.symmetric:
        assert np.all(zero_point == 0)
        assert np.abs(codes).max() == fmt.code_max  # the max maps to the top


@settings(max_examples=30, deadline=None)
@given(
    x=hnp.arrays(np.float32, (8, 4), elements=st.floats(-1e3, 1e3, width=32)),
    fmt=st.sampled_from(FORMATS[:4]),
)
def test_error_bound_property(x, fmt):
    codes, scale, zero_point = (t.numpy() for t in affine_codes(x, fmt))
    y = quantize(x, fmt).numpy()
    assert codes.min() >= fmt.code_min and codes.max() <= fmt.code_max
    assert np.all(np.abs(y - x) <= 0.5 * scale * (1 + 1e-5) + 1e-30)


def test_stochastic_is_unbiased():
    fmt = IntegerAffine(4)
    x = np.full(100_001, 0.3, np.float32)
    x[0] = 7.0  # scale = 7 / 7 = 1
    samples = quantize(x, fmt, "stochastic", seed=2).numpy()[1:]
    assert_unbiased(samples, np.float32(0.3), 1.0)


@pytest.mark.parametrize("fmt", [IntegerAffine(8), IntegerAffine(4, symmetric=False, per_channel_axis=0)], ids=repr)
def test_large_tensors_with_nonfinite_entries(fmt):
    x = np.random.default_rng(3).normal(size=(1024, 1024)).astype(np.float32)
    x[3, 4], x[8, 8] = np.nan, -np.inf
    expected = ref.integer_affine(x, fmt.bits, fmt.symmetric, fmt.per_channel_axis)[3]
    np.testing.assert_array_equal(quantize(x, fmt), expected)
