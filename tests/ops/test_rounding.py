"""Rounding primitives and the counter-based random generator."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_lowprec.ops import rounding


def test_round_nearest_is_half_to_even():
    x = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, 1.0000001]
    np.testing.assert_array_equal(
        rounding.round_nearest(x).numpy(), [0, 2, 2, -0, -2, -2, 0, 1]
    )


def test_round_stochastic_only_rounds_to_neighbours():
    x = tf.constant(np.linspace(-3, 3, 1001), tf.float32)
    r = rounding.round_stochastic(x, seed=3).numpy()
    assert np.all((r == np.floor(x)) | (r == np.ceil(x)))
    exact = np.array([-2.0, 0.0, 5.0], np.float32)
    np.testing.assert_array_equal(rounding.round_stochastic(exact, seed=1), exact)


def test_round_stochastic_is_exact_for_large_values():
    # floor(v + u) in float32 would round the sum; our form must not.
    v = tf.constant([2.0**22 + 0.5] * 20000, tf.float32)
    r = rounding.round_stochastic(v, seed=0).numpy()
    assert set(np.unique(r)) == {2.0**22, 2.0**22 + 1}
    assert abs(np.mean(r - 2.0**22) - 0.5) < 4 * np.sqrt(0.25 / 20000)


def test_seed_kinds():
    shape = [64]
    a = rounding.random_bits(shape, 7).numpy()
    np.testing.assert_array_equal(a, rounding.random_bits(shape, 7).numpy())
    assert not np.array_equal(a, rounding.random_bits(shape, 8).numpy())
    np.testing.assert_array_equal(
        a, rounding.random_bits(shape, tf.constant([7, 0], tf.int64)).numpy()
    )
    # Large and negative ints are reduced to two 32-bit words.
    rounding.random_bits(shape, -5)
    rounding.random_bits(shape, 2**40 + 3)
    # A SeedGenerator advances: two draws differ, the sequence is reproducible.
    gen = keras.random.SeedGenerator(5)
    first, second = (rounding.random_bits(shape, gen).numpy() for _ in range(2))
    assert not np.array_equal(first, second)
    gen = keras.random.SeedGenerator(5)
    np.testing.assert_array_equal(first, rounding.random_bits(shape, gen))
    # None: fresh randomness.
    assert not np.array_equal(
        rounding.random_bits(shape, None).numpy(),
        rounding.random_bits(shape, None).numpy(),
    )


@pytest.mark.parametrize("seed", ["1", 1.5, True, [1, 2, 3], [[1, 2]], [0.5, 1.0]])
def test_invalid_seed_raises_value_error(seed):
    with pytest.raises(ValueError, match="seed"):
        rounding.canonical_seed(seed)


def test_same_bits_in_eager_graph_and_xla():
    eager = rounding.random_bits([5, 7], 11).numpy()
    graph = tf.function(lambda: rounding.random_bits([5, 7], 11))()
    xla = tf.function(lambda: rounding.random_bits([5, 7], 11), jit_compile=True)()
    np.testing.assert_array_equal(eager, graph)
    np.testing.assert_array_equal(eager, xla)


def test_fold_in_gives_distinct_streams():
    base = rounding.canonical_seed(3)
    streams = [rounding.random_bits([256], rounding.fold_in(base, i)).numpy() for i in range(4)]
    for i in range(4):
        for j in range(i):
            assert not np.array_equal(streams[i], streams[j])


def test_uniform_statistics():
    # Moments, a chi-square test over 64 bins and lag-1 correlation: each
    # bound is ~5 standard deviations, so a broken generator fails.
    n = 2**18
    u = rounding.uniform([n], 1234).numpy().astype(np.float64)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 5 * np.sqrt(1 / 180 / n)
    counts = np.bincount((u * 64).astype(int), minlength=64)
    expected = n / 64
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert chi2 < 63 + 5 * np.sqrt(2 * 63)
    corr = np.corrcoef(u[:-1], u[1:])[0, 1]
    assert abs(corr) < 5 / np.sqrt(n)
    # Low bits matter too (floating-point stochastic rounding uses them).
    bits = rounding.random_bits([n], 99).numpy()
    for shift in (0, 7, 16):
        low = (bits >> shift) & 1
        assert abs(low.mean() - 0.5) < 5 * np.sqrt(0.25 / n)


def test_streams_of_adjacent_seeds_are_uncorrelated():
    n = 2**16
    a = rounding.uniform([n], 1).numpy()
    b = rounding.uniform([n], 2).numpy()
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / np.sqrt(n)
