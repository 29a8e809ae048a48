"""ProximalSGD against TF's kernels, the numpy oracle, golden vectors and SGD."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.optimizers.proximal_golden import dense_run, golden_run, sparse_run
from tests.optimizers.sparse_xla import apply_sparse_under_xla
from tests.reference import proximal_numpy as ref
from tests.reference import proximal_tf_kernels as kernels
from tf_lowprec.optimizers import ProximalSGD

# algorithms.md §4.4 (TF's proximal_gradient_descent_test.py setting, lr=3.0)


def test_golden_vectors():
    v0, v1 = golden_run(ProximalSGD(3.0), 3)
    np.testing.assert_allclose(v0, [0.1, 0.2], atol=1e-6)
    np.testing.assert_allclose(v1, [3.91, 2.82], atol=1e-6)
    v0, v1 = golden_run(ProximalSGD(3.0, 0.001, 2.0), 10)
    np.testing.assert_allclose(v0, [-0.0495, -0.0995], atol=1e-6)
    np.testing.assert_allclose(v1, [-0.0045, -0.0095], atol=1e-6)


@pytest.mark.parametrize("l1, l2", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.3), (0.5, 0.3)])
def test_dense_matches_tf_kernel(l1, l2):
    _, ours, oracle = dense_run(
        lambda schedule: ProximalSGD(schedule, l1, l2),
        tf.Variable,
        lambda var, g, lr: kernels.proximal_sgd(var, g, lr, l1, l2),
    )
    for a, b in zip(ours, oracle):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    if l1:
        assert np.mean(ours[0].numpy() == 0) > 0.1  # L1 produces exact zeros


def test_sparse_matches_tf_kernel_and_numpy_with_duplicates():
    opt = ProximalSGD(0.2, 0.05, 0.1)

    def step(state, idx, rows, uniq, summed):
        oracle, expected = state
        kernels.proximal_sgd(oracle, summed, 0.2, 0.05, 0.1, indices=uniq)
        return oracle, ref.proximal_sgd_sparse_step(expected, idx, rows, 0.2, 0.05, 0.1)

    ours, (oracle, expected) = sparse_run(
        opt, lambda init: (tf.Variable(init), init.astype(np.float64)), step
    )
    np.testing.assert_allclose(ours.numpy(), oracle.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_sparse_leaves_untouched_rows_bit_identical():
    init = np.full((5, 2), 0.01, np.float32)  # would be zeroed by the L1 prox
    var = keras.Variable(init)
    grad = tf.IndexedSlices(tf.ones((3, 2)), tf.constant([1, 3, 1]), tf.constant([5, 2]))
    ProximalSGD(0.1, l1_regularization_strength=1.0).apply([grad], [var])
    got = var.numpy()
    np.testing.assert_array_equal(got[[0, 2, 4]], init[[0, 2, 4]])
    np.testing.assert_allclose(got[1], [-0.09, -0.09], atol=1e-7)  # 0.01-0.2, thr 0.1
    np.testing.assert_allclose(got[3], [0.0, 0.0])


def test_float64_matches_numpy_oracle_with_schedule():
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.5, (6, 3))
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([4, 8], [0.5, 0.1, 0.02])
    var = keras.Variable(w, dtype="float64")
    opt = ProximalSGD(schedule, 0.01, 0.5)
    for step in range(12):
        g = rng.normal(0, 1, w.shape)
        opt.apply([tf.constant(g)], [var])
        lr = float(schedule(step))  # the optimizer's lr is float32
        w = ref.proximal_sgd_step(w, g, lr, 0.01, 0.5)
        np.testing.assert_allclose(var.numpy(), w, rtol=1e-12, atol=1e-14)


def test_no_regularization_is_bit_identical_to_sgd():
    rng = np.random.default_rng(4)
    init = rng.normal(0, 1, (4, 3)).astype(np.float32)
    a, b = keras.Variable(init), keras.Variable(init)
    prox, sgd = ProximalSGD(0.07), keras.optimizers.SGD(0.07)
    for _ in range(10):
        g = tf.constant(rng.normal(0, 1, init.shape).astype(np.float32))
        prox.apply([g], [a])
        sgd.apply([g], [b])
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_sparse_under_xla():
    var = keras.Variable(np.ones((4, 2), np.float32))
    opt = ProximalSGD(0.5, 0.1)
    apply_sparse_under_xla(opt, var, tf.ones((3, 2)), tf.constant([0, 2, 0]))
    expected = ref.proximal_sgd_sparse_step(
        np.ones((4, 2)), [0, 2, 0], np.ones((3, 2)), 0.5, 0.1
    )
    np.testing.assert_allclose(var.numpy(), expected, atol=1e-7)
