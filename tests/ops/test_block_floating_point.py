"""BlockFloatingPoint against the numpy oracles (ours, SWALP, QPyTorch)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.ops._stats import assert_unbiased
from tests.reference import quant_numpy as ref
from tf_lowprec.formats import BlockFloatingPoint, FixedPoint
from tf_lowprec.ops import quantize, rounding

CASES = [  # (format, shape)
    (BlockFloatingPoint(8, axis=0), (16, 24)),
    (BlockFloatingPoint(8, axis=None), (16, 24)),
    (BlockFloatingPoint(6, axis=-1), (3, 5, 24)),
    (BlockFloatingPoint(4, axis=1), (4, 6, 3, 2)),
    (BlockFloatingPoint(8, axis=0), (40,)),  # small-block rule: one block
    (BlockFloatingPoint(5, axis=0, small_block_rank=0), (40,)),  # per element
]


def _data(shape, seed=0):
    # Blocks of very different magnitudes, one all-zero slice along axis 0.
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) * 10.0 ** rng.integers(-6, 6, size=shape[:1] + (1,) * (len(shape) - 1))
    x[min(1, shape[0] - 1)] = 0.0
    return x.astype(np.float32)


def _oracle(x, fmt, mode="nearest", u=None):
    return ref.block_floating_point(
        x, fmt.word_length, fmt.axis, fmt.small_block_rank, mode, u
    )


@pytest.mark.parametrize("fmt, shape", CASES, ids=str)
def test_matches_oracle_bit_for_bit(fmt, shape):
    x = _data(shape)
    np.testing.assert_array_equal(quantize(x, fmt), _oracle(x, fmt))
    u = rounding.uniform(shape, 21).numpy()
    np.testing.assert_array_equal(
        quantize(x, fmt, "stochastic", seed=21), _oracle(x, fmt, "stochastic", u)
    )


@pytest.mark.parametrize("mode", ["nearest", "stochastic"])
@pytest.mark.parametrize("shape", [(40,), (12, 30), (4, 3, 5, 5)])
def test_matches_swalp_fc_small_block_except_zero_rows_and_negative_end(mode, shape):
    # SWALP `--small-block FC --block-dim B` == BlockFloatingPoint(wl, axis=0),
    # except: SWALP's all-zero rows are NaN (ours 0), and SWALP keeps
    # -2^(wl-1) ulp where our symmetric clamp gives -(2^(wl-1) - 1) ulp.
    wl = 4
    x = _data(shape, seed=2)
    u = rounding.uniform(shape, 5).numpy()
    y = quantize(x, BlockFloatingPoint(wl, axis=0), mode, seed=5).numpy()
    swalp = ref.swalp_block(x, wl, "FC", "B", mode, u)
    if len(shape) > 1:
        assert np.all(np.isnan(swalp[1])) and np.all(y[1] == 0)
        swalp[1] = 0.0
    axes = tuple(range(1, len(shape))) if len(shape) > 1 else None
    m = np.max(np.abs(x), axis=axes, keepdims=True)
    ulp = np.ldexp(1.0, np.frexp(np.where(m > 0, m, 1))[1] - 1 + 2 - wl)
    negative_end = swalp / ulp == -(2.0 ** (wl - 1))
    np.testing.assert_array_equal(y[~negative_end], swalp[~negative_end])
    np.testing.assert_array_equal(
        y[negative_end], (swalp + np.broadcast_to(ulp, x.shape))[negative_end]
    )


def test_swalp_whole_tensor_rule_for_activations():
    # SWALP's activation/error quantizers use one exponent per tensor.
    x = _data((8, 4, 4, 3), seed=3)
    np.testing.assert_array_equal(
        quantize(x, BlockFloatingPoint(8, axis=None)),
        ref.swalp_block(x, 8, "None", "B"),
    )


@pytest.mark.parametrize("wl", [4, 8])
def test_qpytorch_differs_only_near_ties(wl):
    shape = (64, 32)
    x = _data(shape, seed=4)
    x[1] = np.random.default_rng(1).normal(size=32)  # no zero row for QPyTorch
    fmt = BlockFloatingPoint(wl, axis=0, small_block_rank=0)
    y = quantize(x, fmt).numpy()
    qpt = ref.qpytorch_block(x, wl, dim=0)
    # QPyTorch rounds x + 6*2^E to float32 first (to 2^(wl-23) ulp), then
    # rounds ties up; we round once, ties to even. Elsewhere: identical.
    m = np.max(np.abs(x), axis=1, keepdims=True)
    ulp = np.ldexp(1.0, np.frexp(m)[1] - 1 + 2 - wl)
    v = x / ulp
    near_tie = np.abs(v - np.floor(v) - 0.5) <= 2.0 ** (wl - 23)
    np.testing.assert_array_equal(y[~near_tie], qpt[~near_tie])


def test_documented_tie_and_clamp_examples():
    fmt = BlockFloatingPoint(8, axis=None)  # max in [1, 2): E = 0, ulp = 2^-6
    ulp = 2.0**-6
    x = np.array([1.999, 0.5 * ulp, -0.5 * ulp, 1.5 * ulp, -1.999], np.float32)
    y = quantize(x, fmt).numpy()
    # 1.999 / ulp = 127.94 -> 128 -> clamped to 127 on both sides.
    np.testing.assert_array_equal(y, [127 * ulp, 0.0, -0.0, 2 * ulp, -127 * ulp])
    qpt = ref.qpytorch_block(x, 8, dim=-1)  # ties up
    np.testing.assert_array_equal(qpt, [127 * ulp, ulp, 0.0, 2 * ulp, -127 * ulp])
    swalp = ref.swalp_block(x, 8, "None")  # two's complement at -2^(E+1)
    np.testing.assert_array_equal(swalp, [127 * ulp, 0.0, -0.0, 2 * ulp, -128 * ulp])


def test_exponent_clamps():
    fmt = BlockFloatingPoint(8, axis=None)
    # Tiny block: E clamped to wl - 128 = -120, ulp = 2^-126.
    tiny = np.array([2.0**-121, 1.4 * 2.0**-126, 0.4 * 2.0**-126], np.float32)
    np.testing.assert_array_equal(
        quantize(tiny, fmt), np.array([2.0**-121, 2.0**-126, 0.0], np.float32)
    )
    # Huge block: E clamped to 126, entries saturate instead of overflowing.
    huge = np.array([3e38, -3e38, 1e30], np.float32)
    y = quantize(huge, fmt).numpy()
    np.testing.assert_array_equal(y[:2], [127 * 2.0**120, -127 * 2.0**120])


def test_single_block_equals_fixed_point_with_its_exponent():
    x = _data((50,), seed=7)
    x[3] = 2.9  # E = 1 when the max is in [2, 4)
    x = np.clip(x, -2.9, 2.9)
    wl = 8
    np.testing.assert_array_equal(
        quantize(x, BlockFloatingPoint(wl, axis=None)),
        quantize(x, FixedPoint(wl, wl - 2 - 1)),
    )


@settings(max_examples=30, deadline=None)
@given(
    x=hnp.arrays(np.float32, (8, 16), elements=st.floats(-1e6, 1e6, width=32)),
    wl=st.sampled_from([3, 8, 12]),
    seed=st.integers(0, 2**31),
)
def test_properties_grid_range_error_idempotence(x, wl, seed):
    fmt = BlockFloatingPoint(wl, axis=0)
    m = np.max(np.abs(x), axis=1, keepdims=True).astype(np.float64)
    ulp = np.ldexp(1.0, np.frexp(np.where(m > 0, m, 1))[1] - 1 + 2 - wl)
    ulp = np.maximum(ulp, 2.0**-126)
    for mode in ("nearest", "stochastic"):
        y = quantize(x, fmt, mode, seed=seed).numpy().astype(np.float64)
        k = y / ulp
        np.testing.assert_array_equal(k, np.round(k))
        top = 2 ** (wl - 1) - 1
        assert np.all(np.abs(k) <= top)  # clamp bounds
        bound = (0.5 if mode == "nearest" else 1.0) * ulp
        # Clamped entries (|k| = top) may carry one more ulp of error.
        assert np.all(np.abs(y - x) <= bound + ulp * (np.abs(k) == top))
        np.testing.assert_array_equal(quantize(y, fmt, mode, seed=seed), y)


@pytest.mark.parametrize("value", [0.3, -0.77])
def test_stochastic_rounding_is_unbiased(value):
    n = 100_000
    fmt = BlockFloatingPoint(4, axis=None)
    x = np.full(n, value, np.float32)
    x[0] = 1.0  # fixes E = 0, ulp = 2^-2
    samples = quantize(x, fmt, "stochastic", seed=8).numpy()[1:]
    assert_unbiased(samples, np.float32(value), 0.25)


@pytest.mark.parametrize("axis", [None, 0])
def test_large_tensors_with_nonfinite_entries(axis):
    # 2^20 elements: the folded reductions of ops/ranges.py at scale, with
    # NaN/inf left out of the block maxima.
    fmt = BlockFloatingPoint(8, axis=axis)
    x = _data((1024, 1024), seed=11)
    np.testing.assert_array_equal(quantize(x, fmt), _oracle(x, fmt))
    x[5, 7], x[9, 1], x[9, 2] = np.nan, np.inf, -np.inf
    np.testing.assert_array_equal(quantize(x, fmt), _oracle(x, fmt))
