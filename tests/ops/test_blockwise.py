"""Block-wise dynamic 8-bit quantization against a numpy argmin oracle."""

import numpy as np
import pytest
import tensorflow as tf

from tf_lowprec.ops import blockwise


def _oracle(x, block_size, signed):
    """Dettmers' scheme written out in numpy: per-block absmax, nearest entry."""
    table = blockwise.dynamic_code(signed).astype(np.float64)
    flat = np.asarray(x, np.float32).ravel()
    n_blocks = -(-flat.size // block_size)
    padded = np.zeros(n_blocks * block_size, np.float32)
    padded[: flat.size] = flat
    scales = np.abs(padded.reshape(n_blocks, block_size)).max(axis=1)
    per_entry = np.repeat(scales, block_size)[: flat.size]
    with np.errstate(invalid="ignore", divide="ignore"):
        normalized = np.where(per_entry > 0, flat / per_entry, 0).astype(np.float32)
    distance = np.abs(table[None, :] - normalized[:, None].astype(np.float64))
    return scales, normalized, distance


def test_tables_follow_the_dynamic_tree_construction():
    signed = blockwise.dynamic_code(True)
    unsigned = blockwise.dynamic_code(False)
    assert signed.size == 255 and unsigned.size == 256
    np.testing.assert_array_equal(signed, -signed[::-1])  # symmetric, holds -1
    assert np.all(np.diff(signed) > 0) and np.all(np.diff(unsigned) > 0)
    assert {0.0, 1.0} <= set(signed) and {0.0, 1.0} <= set(unsigned)
    assert unsigned.min() == 0.0 and signed.min() < -0.99
    # Per decade 10^-e: 2^(6-e) signed magnitudes, 2^(7-e) unsigned ones.
    positive = signed[(signed > 0) & (signed < 1)]
    for e in range(7):
        in_decade = (positive > 0.1 * 10.0**-e) & (positive < 10.0**-e)
        assert in_decade.sum() == (2 ** (6 - e) if e < 6 else 0)
        assert ((unsigned > 0.1 * 10.0**-e) & (unsigned < 10.0**-e)).sum() == 2 ** (
            7 - e
        )
    # The top decade is linear: midpoints of 64 equal steps of [0.1, 1].
    np.testing.assert_allclose(
        positive[-64:], 0.1 + 0.9 / 64 * (np.arange(64) + 0.5), rtol=1e-6
    )


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize(
    "shape,block_size", [((37, 11), 64), ((1000,), 256), ((3, 5), 2048)]
)
def test_codes_are_the_nearest_table_entry(signed, shape, block_size):
    rng = np.random.default_rng(0)
    # Magnitudes over ~8 decades, so every exponent of the table is used.
    x = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-8, 0, shape)).astype(
        np.float32
    )
    if not signed:
        x = np.abs(x)
    codes, scales = blockwise.quantize_blockwise(x, block_size, signed=signed)
    assert codes.dtype == (tf.int8 if signed else tf.uint8) and codes.shape == shape
    ref_scales, _, distance = _oracle(x, block_size, signed)
    np.testing.assert_array_equal(scales.numpy(), ref_scales)
    index = codes.numpy().astype(np.int64).ravel() + (127 if signed else 0)
    chosen = distance[np.arange(index.size), index]
    np.testing.assert_array_equal(
        chosen, distance.min(axis=1)
    )  # nearest (ties: either)
    # Round trip: within half the widest table gap of the block maximum.
    back = blockwise.dequantize_blockwise(codes, scales, block_size).numpy()
    bound = (0.9 / 64 if signed else 0.9 / 128) / 2
    per_entry = np.repeat(ref_scales, block_size)[: x.size].reshape(shape)
    assert np.all(np.abs(back - x) <= bound * per_entry * (1 + 1e-5))
    # Relative error in decade e (|x| / s in [10^-(e+1), 10^-e)), f fraction bits:
    # at most half a step 0.9 * 10^-e / 2^f over the decade's bottom, 4.5 / 2^f.
    live = (np.abs(x) >= 1e-7 * per_entry) & (x != 0)
    decade = np.floor(-np.log10(np.abs(x)[live] / per_entry[live])).clip(0, 6)
    if signed:  # no 10^-6 decade: |x| < 3.25e-6 s may become 0 (relative error 1)
        live_big = np.abs(x)[live] >= 3.25e-6 * per_entry[live]
    else:
        live_big = np.ones(decade.shape, bool)
    fraction_bits = 6 - decade + (0 if signed else 1)
    relative = np.abs(back - x)[live] / np.abs(x)[live]
    assert np.all((relative <= 4.5 / 2**fraction_bits * (1 + 1e-5))[live_big])
    assert np.all(relative <= 1.0)


def test_zero_blocks_and_zeros_are_exact():
    x = np.zeros(600, np.float32)
    x[300:310] = np.linspace(-1, 2, 10)
    x[305] = 0.0
    codes, scales = blockwise.quantize_blockwise(x, 256, signed=True)
    np.testing.assert_array_equal(scales.numpy()[[0, 2]], [0.0, 0.0])
    back = blockwise.dequantize_blockwise(codes, scales, 256).numpy()
    assert np.all(back[x == 0] == 0) and not np.any(np.isnan(back))
    assert back[np.argmax(x)] == x.max()  # the block maximum is exact


def test_an_outlier_only_affects_its_own_block():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(1024).astype(np.float32)
    spiked = x.copy()
    spiked[700] = 1e4
    plain = blockwise.quantize_blockwise(x, 256)
    spike = blockwise.quantize_blockwise(spiked, 256)
    for i, block in enumerate(range(0, 1024, 256)):
        same = np.array_equal(
            plain[0].numpy()[block : block + 256], spike[0].numpy()[block : block + 256]
        )
        assert same == (i != 2)
        assert (plain[1].numpy()[i] == spike[1].numpy()[i]) == (i != 2)


def test_requantizing_is_stable_and_unsigned_clamps_negatives():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(500).astype(np.float32)
    codes, scales = blockwise.quantize_blockwise(x, 128)
    again = blockwise.quantize_blockwise(
        blockwise.dequantize_blockwise(codes, scales, 128), 128
    )
    np.testing.assert_array_equal(again[0].numpy(), codes.numpy())
    np.testing.assert_array_equal(again[1].numpy(), scales.numpy())
    u_codes, u_scales = blockwise.quantize_blockwise(
        [-1.0, 0.5, -0.25], 2, signed=False
    )
    np.testing.assert_array_equal(
        blockwise.dequantize_blockwise(u_codes, u_scales, 2).numpy(), [0.0, 0.5, 0.0]
    )


def test_runs_under_xla():
    x = tf.random.stateless_normal([3000], [1, 2])
    fn = tf.function(
        lambda x: blockwise.dequantize_blockwise(
            *blockwise.quantize_blockwise(x, 256), 256
        ),
        jit_compile=True,
    )
    eager = blockwise.dequantize_blockwise(*blockwise.quantize_blockwise(x, 256), 256)
    np.testing.assert_array_equal(fn(x).numpy(), eager.numpy())


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"bits": 4}, "bits"),
        ({"bits": True}, "bits"),
        ({"block_size": 0}, "block_size"),
        ({"block_size": 2.5}, "block_size"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, name):
    with pytest.raises(ValueError, match=name):
        blockwise.quantize_blockwise(np.ones(4, np.float32), **kwargs)


def test_integer_input_and_bad_code_dtype_raise():
    with pytest.raises(ValueError, match="x"):
        blockwise.quantize_blockwise(np.ones(4, np.int32))
    with pytest.raises(ValueError, match="codes"):
        blockwise.dequantize_blockwise(np.ones(4, np.int32), np.ones(1, np.float32))


@pytest.mark.parametrize("signed", [True, False])
def test_exact_at_every_decision_threshold(signed):
    """Every table entry, every threshold between neighbours and the floats
    just around it: the code is #{thresholds <= x} (ties to the larger)."""
    table = blockwise.dynamic_code(signed)
    thresholds = ((table[:-1].astype(np.float64) + table[1:]) / 2).astype(np.float32)
    x = np.concatenate(
        [
            table,
            thresholds,
            np.nextafter(thresholds, np.float32(-np.inf)),
            np.nextafter(thresholds, np.float32(np.inf)),
        ]
    )
    x = np.clip(x, table[0], 1.0)  # the block maximum stays 1: no rescaling
    codes, scales = blockwise.quantize_blockwise(x, x.size, signed=signed)
    assert scales.numpy()[0] == 1.0
    expected = np.searchsorted(thresholds, x, side="right")
    index = codes.numpy().astype(np.int64) + (127 if signed else 0)
    np.testing.assert_array_equal(index, expected)
