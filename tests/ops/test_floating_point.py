"""FloatingPoint: bit-exact equality with the bfloat16/float16 casts, oracle."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.ops._stats import assert_unbiased
from tests.reference import quant_numpy as ref
from tf_lowprec.formats import FloatingPoint
from tf_lowprec.ops import quantize, rounding

CASTS = {(8, 7): tf.bfloat16, (5, 10): tf.float16}
N = 4096


def _bits_to_float(bits):
    return np.asarray(bits, np.uint32).view(np.float32)


def _assert_equals_cast(x, fmt):
    """Bit equality with the cast wherever the cast is finite (or x is not);
    where the cast overflows a finite x to inf, we saturate instead."""
    x = np.asarray(x, np.float32)
    ours = quantize(x, fmt).numpy()
    cast = tf.cast(tf.cast(x, CASTS[fmt.exponent_bits, fmt.mantissa_bits]), tf.float32).numpy()
    nan = np.isnan(x)
    assert np.all(np.isnan(ours[nan]))
    overflow = np.isfinite(x) & ~np.isfinite(cast)
    np.testing.assert_array_equal(
        ours[overflow], np.copysign(fmt.max_value, x[overflow]).astype(np.float32)
    )
    same = ~nan & ~overflow
    np.testing.assert_array_equal(ours[same].view(np.uint32), cast[same].view(np.uint32))


@pytest.mark.parametrize("fmt", [FloatingPoint(8, 7), FloatingPoint(5, 10)], ids=repr)
@settings(max_examples=40, deadline=None)
@given(bits=hnp.arrays(np.uint32, N, elements=st.integers(0, 2**32 - 1)))
def test_equals_cast_on_random_float32_bit_patterns(fmt, bits):
    _assert_equals_cast(_bits_to_float(bits), fmt)


def _structured_patterns(drop):
    """Every exponent x sign x mantissas around each rounding decision."""
    low = 2**drop
    mantissas = []
    for kept in (0, 1, 2, 3, (1 << (23 - drop)) - 2, (1 << (23 - drop)) - 1):
        for tail in (0, 1, low // 2 - 1, low // 2, low // 2 + 1, low - 1):
            mantissas.append((kept << drop) + tail)
    mantissas = np.array(sorted(set(m for m in mantissas if m < 2**23)), np.uint64)
    exponents = np.arange(256, dtype=np.uint64)
    body = (exponents[:, None] << np.uint64(23)) | mantissas[None, :]
    body = body.ravel()
    return np.concatenate([body, body | np.uint64(1 << 31)]).astype(np.uint32)


@pytest.mark.parametrize("fmt", [FloatingPoint(8, 7), FloatingPoint(5, 10)], ids=repr)
def test_equals_cast_at_every_exponent_and_tie(fmt):
    # All 256 exponents (subnormal, normal, inf/NaN) x both signs x mantissas
    # just below / at / above each half-way point, with odd and even kept LSBs.
    _assert_equals_cast(_bits_to_float(_structured_patterns(23 - fmt.mantissa_bits)), fmt)


def test_float16_subnormals_and_overflow_threshold():
    fmt = FloatingPoint(5, 10)
    tiny = 2.0**-24  # smallest float16 subnormal
    x = np.array(
        [tiny, 0.5 * tiny, 0.50001 * tiny, 1.5 * tiny, 2.5 * tiny, -3.5 * tiny,
         65504.0, 65519.99, 65520.0, 1e6, -1e30, 6.1e-5],
        np.float32,
    )
    y = quantize(x, fmt).numpy()
    np.testing.assert_array_equal(
        y,
        np.array(
            [tiny, 0.0, tiny, 2 * tiny, 2 * tiny, -4 * tiny,
             65504, 65504, 65504, 65504, -65504, np.float16(6.1e-5)],
            np.float32,
        ),
    )
    assert np.signbit(quantize(np.float32([-1e-30]), fmt).numpy()[0])  # -0.0


FORMATS = [
    FloatingPoint(4, 3),
    FloatingPoint(5, 2),
    FloatingPoint(3, 4),
    FloatingPoint(6, 9),
    FloatingPoint(2, 1),
    FloatingPoint(8, 0),
    FloatingPoint(7, 23),
    FloatingPoint(8, 7),
]


def _spread(seed, size=N):
    rng = np.random.default_rng(seed)
    # Magnitudes across the whole float32 range, both signs, plus specials.
    x = rng.normal(size=size) * np.exp2(rng.integers(-140, 128, size=size))
    x = x.astype(np.float32)
    x[:6] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45]
    return x


@pytest.mark.parametrize("fmt", FORMATS, ids=repr)
def test_matches_float64_oracle(fmt):
    x = _spread(1)
    e, m = fmt.exponent_bits, fmt.mantissa_bits
    y = quantize(x, fmt).numpy()
    np.testing.assert_array_equal(y.view(np.uint32)[5:], ref.floating_point(x, e, m).view(np.uint32)[5:])
    assert np.isnan(y[4])
    bits = rounding.random_bits([N], 3).numpy()
    y = quantize(x, fmt, "stochastic", seed=3).numpy()
    expected = ref.floating_point(x, e, m, "stochastic", bits)
    np.testing.assert_array_equal(np.delete(y, 4).view(np.uint32), np.delete(expected, 4).view(np.uint32))


@pytest.mark.parametrize("fmt", [FloatingPoint(5, 2), FloatingPoint(8, 7), FloatingPoint(6, 9)], ids=repr)
def test_qpytorch_nearest_differs_only_at_mantissa_ties(fmt):
    # Normal range, no saturation: QPyTorch adds half an ulp and truncates.
    x = _spread(2)
    x = x[np.isfinite(x) & (np.abs(x) >= fmt.min_normal) & (np.abs(x) <= fmt.max_value / 2)]
    y = quantize(x, fmt).numpy()
    qpt = ref.qpytorch_float_nearest(x, fmt.exponent_bits, fmt.mantissa_bits)
    drop = 23 - fmt.mantissa_bits
    tie = (x.view(np.uint32) & np.uint32(2**drop - 1)) == 2 ** (drop - 1)
    np.testing.assert_array_equal(y[~tie], qpt[~tie])
    ties = np.array([1 + 2.0**-3, 1 + 3 * 2.0**-3], np.float32)  # e5m2 ties
    if fmt == FloatingPoint(5, 2):
        np.testing.assert_array_equal(quantize(ties, fmt), [1.0, 1.5])
        np.testing.assert_array_equal(ref.qpytorch_float_nearest(ties, 5, 2), [1.25, 1.5])


def test_float32_format_is_identity():
    x = _spread(3)
    np.testing.assert_array_equal(
        quantize(x, FloatingPoint(8, 23)).numpy().view(np.uint32), x.view(np.uint32)
    )


@settings(max_examples=30, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    x=hnp.arrays(np.float32, 64, elements=st.floats(allow_nan=False, allow_infinity=False, width=32)),
    seed=st.integers(0, 2**31),
)
def test_properties_representable_saturated_idempotent(fmt, x, seed):
    for mode in ("nearest", "stochastic"):
        y = quantize(x, fmt, mode, seed=seed).numpy()
        assert np.all(np.abs(y) <= fmt.max_value)
        np.testing.assert_array_equal(quantize(y, fmt, mode, seed=seed + 1), y)
        # Representable: the float64 oracle leaves y unchanged.
        np.testing.assert_array_equal(ref.floating_point(y, fmt.exponent_bits, fmt.mantissa_bits), y)


@pytest.mark.parametrize(
    "fmt, value",
    [(FloatingPoint(5, 2), 1.1), (FloatingPoint(5, 2), -3.3e-6), (FloatingPoint(8, 7), 1.0 / 3)],
)
def test_stochastic_rounding_is_unbiased(fmt, value):
    # -3.3e-6 lies in e5m2's subnormal range (min normal 2^-14).
    value = np.float32(value)
    a = abs(float(value))
    exponent = max(np.frexp(a)[1] - 1, 1 - fmt.bias)
    ulp = 2.0 ** (exponent - fmt.mantissa_bits)
    samples = quantize(np.full(100_000, value), fmt, "stochastic", seed=6)
    assert_unbiased(samples, value, ulp)
