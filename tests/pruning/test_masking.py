"""Mask math against the numpy oracle: exact top-k per tensor, ties policy."""

import keras
import numpy as np
import pytest

from tests.pruning import pruning_numpy as ref
from tf_lowprec.pruning import keep_count, magnitude_mask, unit_mask


@pytest.mark.parametrize(
    "size, sparsity, expected",
    [(10, 0.5, 5), (10, 0.25, 8), (10, 0.35, 6), (3, 0.9, 1), (1, 0.99, 1), (7, 0.0, 7),
     (204800, 0.9, 20480), (4, 0.375, 2)],  # 4 * 0.625 = 2.5 -> 2 (half to even)
)
def test_keep_count_rounds_half_to_even_and_keeps_one(size, sparsity, expected):
    assert keep_count(size, sparsity) == expected == ref.keep_count(size, sparsity)


def test_keep_count_rejects_bad_input():
    with pytest.raises(ValueError, match="size"):
        keep_count(0, 0.5)
    with pytest.raises(ValueError, match="sparsity"):
        keep_count(10, 1.5)


@pytest.mark.parametrize("shape", [(17,), (6, 5), (3, 3, 4, 5)])
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9, 0.97])
def test_magnitude_mask_equals_numpy_top_k(shape, sparsity):
    w = np.random.default_rng(hash((shape, sparsity)) % 2**32).normal(size=shape).astype("float32")
    mask = keras.ops.convert_to_numpy(magnitude_mask(w, sparsity))
    np.testing.assert_array_equal(mask, ref.magnitude_mask(w, sparsity))
    assert mask.sum() == keep_count(w.size, sparsity)


def test_magnitude_mask_ties_keep_lower_flat_index_and_exact_count():
    # Eight equal magnitudes (signs differ) around one large weight: keep 4 of 9.
    w = np.array([[0.5, -0.5, 0.5], [2.0, -0.5, 0.5], [0.5, -0.5, 0.5]], np.float32)
    mask = keras.ops.convert_to_numpy(magnitude_mask(w, 5 / 9))
    expected = np.array([[1, 1, 1], [1, 0, 0], [0, 0, 0]], np.float32)
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(mask, ref.magnitude_mask(w, 5 / 9))


def test_magnitude_mask_with_existing_zeros_still_reaches_target():
    w = np.zeros((10, 10), np.float32)
    w[0, :3] = [3.0, -1.0, 2.0]
    mask = keras.ops.convert_to_numpy(magnitude_mask(w, 0.9))
    assert mask.sum() == 10  # 3 nonzero + 7 zeros chosen by index
    assert mask[0, :3].tolist() == [1, 1, 1]
    np.testing.assert_array_equal(mask, ref.magnitude_mask(w, 0.9))


def test_unit_mask_ranks_filters_by_l1_norm():
    kernel = np.zeros((3, 3, 2, 4), np.float32)
    kernel[..., 0] = 0.1   # L1 = 1.8
    kernel[..., 1] = -1.0  # L1 = 18
    kernel[..., 2] = 0.5   # L1 = 9
    kernel[0, 0, 0, 3] = 5.0  # L1 = 5 (one big weight loses to many medium ones)
    mask = keras.ops.convert_to_numpy(unit_mask(kernel, 0.5))
    np.testing.assert_array_equal(mask, [0, 1, 1, 0])
    np.testing.assert_array_equal(mask, ref.unit_mask(kernel, 0.5))


def test_unit_mask_dense_and_ties():
    kernel = np.ones((3, 6), np.float32)
    mask = keras.ops.convert_to_numpy(unit_mask(kernel, 0.5))
    np.testing.assert_array_equal(mask, [1, 1, 1, 0, 0, 0])
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(5, 11)).astype("float32")
    for s in (0.1, 0.45, 0.9):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(unit_mask(kernel, s)), ref.unit_mask(kernel, s)
        )
