"""GRDA against the numpy oracle, the paper's test vectors, SGD and Keras features."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.reference.grda_numpy import GRDANumpy
from tf_lowprec.optimizers import GRDA

W0 = np.array([0.5, -0.02, 0.001, -1.0], np.float32)
GRADS = [[0.1, 0.2, -0.3, 0.05], [-0.2, 0.1, 0.0, 0.4], [0.3, -0.1, 0.2, -0.5]]
# algorithms.md §1.6 (lr=0.1, c=0.05, mu=0.51)
GOLDEN_CONSTANT = [
    (0.0048861861, [0.48511381, -0.03511381, 0.02611381, -1.00011381]),
    (0.0069581743, [0.50304183, -0.04304183, 0.02404183, -1.03804183]),
    (0.0085566121, [0.47144339, -0.03144339, 0.00244339, -0.98644339]),
]
GOLDEN_DROP_STEP3 = (0.0071143796, [0.49988562, -0.04188562, 0.02188562, -1.03288562])


def _run_vector(learning_rate):
    var = keras.Variable(W0)
    opt = GRDA(learning_rate=learning_rate, c=0.05, mu=0.51)
    out = []
    for g in GRADS:
        opt.apply([tf.constant(g, tf.float32)], [var])
        out.append((float(opt.threshold.numpy()), var.numpy().copy()))
    return out


def test_golden_vectors_constant_lr():
    for (thr, w), (want_thr, want_w) in zip(_run_vector(0.1), GOLDEN_CONSTANT):
        assert thr == pytest.approx(want_thr, abs=1e-6)
        np.testing.assert_allclose(w, want_w, atol=1e-6)


def test_golden_vectors_lr_drop_uses_accumulated_threshold():
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([1], [0.1, 0.01])
    thr, w = _run_vector(schedule)[2]
    assert thr == pytest.approx(GOLDEN_DROP_STEP3[0], abs=1e-6)
    np.testing.assert_allclose(w, GOLDEN_DROP_STEP3[1], atol=1e-6)


@pytest.mark.parametrize("graph", [False, True])
def test_matches_numpy_oracle_over_many_steps_with_schedule(graph):
    rng = np.random.default_rng(0)
    shapes = [(7, 5), (5,), (3, 3, 2, 4)]
    init = [rng.normal(0, 0.3, s).astype(np.float32) for s in shapes]
    grads = [[rng.normal(0, 1, s).astype(np.float32) for s in shapes] for _ in range(60)]
    schedule = keras.optimizers.schedules.ExponentialDecay(0.2, 10, 0.7)
    variables = [keras.Variable(w) for w in init]
    opt = GRDA(learning_rate=schedule, c=0.5, mu=0.6)
    oracle = GRDANumpy(init, c=0.5, mu=0.6)

    def step(gs):
        opt.apply(gs, variables)

    if graph:
        step = tf.function(step)
    for n, gs in enumerate(grads):
        step([tf.constant(g) for g in gs])
        want = oracle.step(gs, float(schedule(n)))
    assert float(opt.threshold.numpy()) == pytest.approx(oracle.threshold, rel=1e-6)
    for var, w in zip(variables, want):
        np.testing.assert_allclose(var.numpy(), w, atol=2e-6)
    # The pruning is real: a good share of exact zeros, in the oracle's places
    # (up to entries within round-off of the threshold).
    got = np.concatenate([v.numpy().ravel() for v in variables])
    ref = np.concatenate([w.ravel() for w in want])
    assert np.mean(got == 0) > 0.2
    assert np.all((got == 0) == (ref == 0) | (np.abs(ref) < 1e-5))


def test_callable_learning_rate():
    lr = keras.Variable(0.1)
    var = keras.Variable(W0)
    opt = GRDA(learning_rate=lambda: lr.value, c=0.05, mu=0.51)
    for i, g in enumerate(GRADS):
        if i == 2:
            lr.assign(0.01)
        opt.apply([tf.constant(g)], [var])
    assert float(opt.threshold.numpy()) == pytest.approx(GOLDEN_DROP_STEP3[0], abs=1e-6)
    np.testing.assert_allclose(var.numpy(), GOLDEN_DROP_STEP3[1], atol=1e-6)


def _tiny_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int32)
    return x, y


def _tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)]
    )


def _fit(optimizer, jit_compile=False, epochs=3, model=None):
    x, y = _tiny_data()
    model = model or _tiny_model()
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0)
    return model


def test_c_zero_equals_keras_sgd():
    grda = _fit(GRDA(learning_rate=0.1, c=0.0, mu=0.7))
    sgd = _fit(keras.optimizers.SGD(learning_rate=0.1))
    for a, b in zip(grda.get_weights(), sgd.get_weights()):
        # Same math; GRDA's fused kernel rounds `acc - lr*g` once (FMA).
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_c_zero_equals_keras_sgd_bitwise_under_xla():
    grda = _fit(GRDA(learning_rate=0.1, c=0.0, mu=0.7), jit_compile=True)
    sgd = _fit(keras.optimizers.SGD(learning_rate=0.1), jit_compile=True)
    for a, b in zip(grda.get_weights(), sgd.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_fit_prunes_and_learns():
    x, y = _tiny_data(256)
    model = _tiny_model()
    model.compile(
        optimizer=GRDA(learning_rate=0.2, c=0.05, mu=0.7),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    hist = model.fit(x, y, batch_size=32, epochs=8, verbose=0)
    kernel = model.layers[0].kernel.numpy()
    assert np.mean(kernel == 0) > 0.2  # SGD gives no exact zeros
    assert hist.history["accuracy"][-1] > 0.85


def test_jit_compile_matches_graph_mode():
    a = _fit(GRDA(learning_rate=0.1, c=0.01, mu=0.6), jit_compile=True)
    b = _fit(GRDA(learning_rate=0.1, c=0.01, mu=0.6), jit_compile=False)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, atol=1e-6)


def test_sparse_gradients_equal_dense_semantics():
    """IndexedSlices (with a duplicate index) == the same gradient densified."""
    rng = np.random.default_rng(1)
    table = rng.normal(0, 0.1, (6, 3)).astype(np.float32)
    ids = tf.constant([0, 2, 2, 5])
    values = tf.constant(rng.normal(size=(4, 3)).astype(np.float32))
    sparse_var, dense_var = keras.Variable(table), keras.Variable(table)
    sparse_opt = GRDA(learning_rate=0.1, c=0.02, mu=0.6)
    dense_opt = GRDA(learning_rate=0.1, c=0.02, mu=0.6)
    for _ in range(4):
        grad = tf.IndexedSlices(values, ids, dense_shape=tf.constant([6, 3]))
        sparse_opt.apply([grad], [sparse_var])
        dense_opt.apply([tf.convert_to_tensor(grad)], [dense_var])
    np.testing.assert_allclose(sparse_var.numpy(), dense_var.numpy(), atol=1e-7)
    # Untouched rows are thresholded too (dense semantics).
    untouched = sparse_var.numpy()[[1, 3, 4]]
    np.testing.assert_allclose(
        untouched, np.sign(table[[1, 3, 4]]) * np.maximum(np.abs(table[[1, 3, 4]]) - float(sparse_opt.threshold.numpy()), 0), atol=1e-7
    )


def test_embedding_model_fits_with_sparse_gradients():
    x = np.random.default_rng(0).integers(0, 50, size=(64, 4))
    y = (x[:, 0] % 2).astype(np.int32)
    model = keras.Sequential(
        [keras.Input((4,), dtype="int32"), keras.layers.Embedding(50, 4),
         keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    model.compile(optimizer=GRDA(0.1, c=0.01, mu=0.6),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(model.layers[0].embeddings.numpy()))


def test_mixed_precision_with_loss_scale_optimizer():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _tiny_model()
        opt = keras.optimizers.LossScaleOptimizer(GRDA(learning_rate=0.1, c=0.02, mu=0.6))
        _fit(opt, model=model, epochs=2)
        assert model.layers[0].kernel.dtype == "float32"
        assert float(opt.inner_optimizer.threshold.numpy()) > 0
        assert np.mean(model.layers[0].kernel.numpy() == 0) > 0
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_skipped_loss_scale_step_does_not_advance_threshold():
    var = keras.Variable(W0)
    opt = keras.optimizers.LossScaleOptimizer(GRDA(learning_rate=0.1, c=0.05, mu=0.51))
    opt.apply([tf.constant(GRADS[0])], [var])
    thr = float(opt.inner_optimizer.threshold.numpy())
    before = var.numpy().copy()
    opt.apply([tf.constant([np.inf, 0.0, 0.0, 0.0], tf.float32)], [var])
    assert float(opt.inner_optimizer.threshold.numpy()) == thr
    np.testing.assert_array_equal(var.numpy(), before)


def test_clipnorm_clips_before_accumulating():
    var = keras.Variable(W0)
    opt = GRDA(learning_rate=0.1, c=0.05, mu=0.51, clipnorm=0.1)
    oracle = GRDANumpy([W0], c=0.05, mu=0.51)
    for g in GRADS:
        opt.apply([tf.constant(g)], [var])
        g = np.asarray(g, np.float64)
        (want,) = oracle.step([g * min(1.0, 0.1 / np.linalg.norm(g))], 0.1)
    np.testing.assert_allclose(var.numpy(), want, atol=1e-6)


def test_gradient_accumulation_counts_real_updates():
    var = keras.Variable(W0)
    opt = GRDA(learning_rate=0.1, c=0.05, mu=0.51, gradient_accumulation_steps=2)
    oracle = GRDANumpy([W0], c=0.05, mu=0.51)
    micro = [GRADS[0], GRADS[1], GRADS[2], GRADS[0]]
    for g in micro:
        opt.apply([tf.constant(g)], [var])
    for a, b in [(0, 1), (2, 3)]:
        (want,) = oracle.step([(np.array(micro[a]) + np.array(micro[b])) / 2], 0.1)
    assert float(opt.threshold.numpy()) == pytest.approx(oracle.threshold, rel=1e-6)
    np.testing.assert_allclose(var.numpy(), want, atol=1e-6)


def test_built_inside_tf_function_initialises_accumulator_once():
    var = keras.Variable(W0)
    opt = GRDA(learning_rate=0.1, c=0.05, mu=0.51)

    @tf.function
    def step(g):
        opt.apply([g], [var])

    for g in GRADS:
        step(tf.constant(g))
    np.testing.assert_allclose(var.numpy(), GOLDEN_CONSTANT[2][1], atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"learning_rate": 0.0}, "learning_rate=0.0"),
        ({"learning_rate": -1.0}, "learning_rate=-1.0"),
        ({"c": -0.1}, "c=-0.1"),
        ({"mu": 0.0}, "mu=0.0"),
        ({"mu": -0.5}, "mu=-0.5"),
        ({"weight_decay": 1e-4}, "weight_decay=0.0001"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GRDA(**kwargs)


@pytest.mark.parametrize("mu", [0.4, 0.5, 1.0, 1.5])
def test_mu_outside_paper_range_warns(mu):
    with pytest.warns(UserWarning, match=f"mu={mu}"):
        GRDA(mu=mu)


def test_mu_inside_paper_range_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GRDA(mu=0.55)


def test_ema_overwrite_moves_the_accumulator_so_training_continues_from_the_average():
    """numpy oracle: after the overwrite, acc = avg + thr * sign(avg), and the
    next step thresholds `acc - lr * g` (the overwrite is not undone)."""
    lr, c, mu, m = 0.1, 0.5, 0.6, 0.9
    w0 = np.array([[0.8, -0.05], [0.3, -1.2]], "float32")
    grads = [np.array([[0.3, -0.2], [0.1, 0.4]], "float32") * (k + 1) for k in range(4)]
    opt = GRDA(lr, c=c, mu=mu, use_ema=True, ema_momentum=m, ema_overwrite_frequency=3)
    v = keras.Variable(w0)
    acc, thr, avg = w0.astype("float64"), 0.0, None
    soft = lambda a, t: np.sign(a) * np.maximum(np.abs(a) - t, 0.0)  # noqa: E731
    for n, g in enumerate(grads, start=1):
        opt.apply([g], [v])
        acc = acc - lr * g
        thr += c * lr ** (mu + 0.5) * (n**mu - (n - 1) ** mu)
        w = soft(acc, thr)
        avg = w if n == 1 else m * avg + (1 - m) * w
        if n == 3:
            w, acc = avg, avg + thr * np.sign(avg)
        np.testing.assert_allclose(v.numpy(), w, rtol=1e-5, atol=1e-6)
    assert np.any(v.numpy() == 0)  # the threshold bites: the test can fail
