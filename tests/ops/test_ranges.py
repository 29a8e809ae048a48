"""Block ranges: every reduction path (folded or plain) is exact."""

import numpy as np
import pytest
import tensorflow as tf

from tf_lowprec.ops import ranges

CASES = [  # (shape, axes)
    ((64, 24), [0]),  # blocks along the last axis, folded
    ((8, 4, 32), [0, 1]),  # same, leading axes flattened
    ((32, 16), [1]),  # blocks along the leading axis, folded
    ((4, 2, 8, 2), [1, 2, 3]),
    ((256,), None),  # one block, folded
    ((5, 7), None),  # not divisible by 8: plain reduction
    ((6, 10), [0]),
    ((3, 4, 5), [0, 2]),  # general layout
]


@pytest.mark.parametrize("shape, axes", CASES, ids=str)
def test_matches_numpy_with_nonfinite_entries(shape, axes):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=shape) * 10.0 ** rng.integers(-3, 3, size=shape)).astype(np.float32)
    flat = x.reshape(-1)
    flat[[1, 7]] = [np.nan, -np.inf]
    clean = np.where(np.isfinite(x), x, 0.0)
    np_axes = None if axes is None else tuple(axes)
    expected_abs = np.max(np.abs(clean), axis=np_axes, keepdims=True)
    expected_low = np.min(clean, axis=np_axes, keepdims=True)
    expected_high = np.max(clean, axis=np_axes, keepdims=True)

    def run(t):
        low, high = ranges.finite_range(t, axes)
        return ranges.finite_abs_max(t, axes), low, high

    for fn in (run, tf.function(run, jit_compile=True)):
        got_abs, got_low, got_high = fn(tf.constant(x))
        np.testing.assert_array_equal(got_abs, expected_abs)
        np.testing.assert_array_equal(got_low, expected_low)
        np.testing.assert_array_equal(got_high, expected_high)
