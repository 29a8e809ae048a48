"""Finite in -> finite out, for every format, rounding and float dtype.

Bit patterns are drawn for float16, bfloat16, float32 and float64 (every
finite pattern is possible, subnormals and the largest values included), and
every example also holds the dtype's extremes (+-max, +-smallest normal,
+-smallest subnormal). One fixed length keeps one compiled quantizer per
(format, rounding, dtype), so the 40 examples stay cheap.
"""

import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from tf_lowprec import formats as F
from tf_lowprec.ops import quantize, quantize_gradient

FORMATS = [
    F.FixedPoint(8, 4), F.FixedPoint(24, -100), F.FixedPoint(2, 126),
    F.BlockFloatingPoint(8, axis=None), F.BlockFloatingPoint(2, axis=0, small_block_rank=0),
    F.FloatingPoint(8, 7), F.FloatingPoint(5, 10), F.FloatingPoint(4, 3), F.FloatingPoint(2, 0),
    F.IntegerAffine(8), F.IntegerAffine(2, symmetric=False),
    F.IntegerAffine(16, symmetric=False, per_channel_axis=-1),
]
DTYPES = {  # numpy dtype, unsigned type of the same width
    "float16": (np.float16, np.uint16),
    "bfloat16": (ml_dtypes.bfloat16, np.uint16),
    "float32": (np.float32, np.uint32),
    "float64": (np.float64, np.uint64),
}
RANDOM = 11


def _extremes(dtype):
    info = ml_dtypes.finfo(dtype)
    values = [info.max, info.tiny, info.smallest_subnormal]
    return np.array(values + [-v for v in values], dtype)


def _finite_patterns(dtype_name, bits):
    dtype, unsigned = DTYPES[dtype_name]
    x = np.asarray(bits, np.uint64).astype(unsigned).view(dtype)
    x = np.where(np.isfinite(x.astype(np.float64)), x, dtype(1.5))  # keep finite ones
    return np.concatenate([_extremes(dtype), x.astype(dtype)])


def _assert_finite(x, fmt, rounding):
    ours = quantize(tf.constant(x), fmt, rounding, seed=3 if rounding == "stochastic" else None)
    assert ours.dtype == tf.as_dtype(x.dtype)
    out = ours.numpy().astype(np.float64)
    bad = ~np.isfinite(out)
    assert not bad.any(), (fmt, rounding, x.dtype, x.astype(np.float64)[bad], out[bad])


@settings(max_examples=40, deadline=None)
@given(fmt=st.sampled_from(FORMATS), rounding=st.sampled_from(["nearest", "stochastic"]),
       dtype=st.sampled_from(sorted(DTYPES)),
       bits=st.lists(st.integers(0, 2**64 - 1), min_size=RANDOM, max_size=RANDOM))
def test_finite_inputs_give_finite_outputs(fmt, rounding, dtype, bits):
    _assert_finite(_finite_patterns(dtype, bits), fmt, rounding)


@pytest.mark.parametrize("fmt, dtype, values", [
    # bfloat16's grid rounds float16's max up to 65536, beyond float16.
    (F.FloatingPoint(8, 7), np.float16, [65504.0, -65504.0]),
    # float64 beyond float32's range became inf before any quantization.
    (F.FixedPoint(8, 4), np.float64, [1e300, -1e300]),
    (F.FloatingPoint(5, 10), np.float64, [1.7e308, 3.0]),
    # an asymmetric range of 2 * float32 max: the scale overflowed.
    (F.IntegerAffine(8, symmetric=False), np.float32, [-3.4e38, 3.4e38]),
    (F.IntegerAffine(2, symmetric=False), ml_dtypes.bfloat16, [-3.38e38, 3.38e38, 1.0]),
])
def test_regressions_near_the_range_limits(fmt, dtype, values):
    _assert_finite(np.array(values, dtype), fmt, "nearest")


def test_saturated_values_are_the_dtypes_extremes_and_nonfinite_pass_through():
    x = np.array([65504.0, -65504.0, np.inf, -np.inf, np.nan], np.float16)
    out = quantize(x, F.FloatingPoint(8, 7)).numpy()
    np.testing.assert_array_equal(out[:4], [65504.0, -65504.0, np.inf, -np.inf])
    assert np.isnan(out[4])
    y = quantize(np.array([1e300, 5e-324], np.float64), F.FloatingPoint(8, 23)).numpy()
    assert y[0] == np.finfo(np.float32).max and y[1] == 0.0  # float32 carrier


def test_quantize_gradient_keeps_finite_gradients_finite():
    x = tf.constant([1.0, 2.0], tf.float16)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = quantize_gradient(x, F.FloatingPoint(8, 7))
        loss = tf.reduce_sum(y * tf.constant(65504.0, tf.float16))
    assert np.isfinite(tape.gradient(loss, x).numpy().astype(np.float64)).all()
