"""StochasticRounding: unbiased 16-bit weight updates (numpy/statistical checks)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_lowprec.optimizers import StochasticRounding

N = 2**16


def test_keras_policies_and_variable_dtypes():
    """What the docstring says: only the "bfloat16" policy (or dtype=) makes
    bfloat16 variables; "mixed_bfloat16" keeps float32 ones."""
    try:
        found = {}
        for policy in ("mixed_bfloat16", "bfloat16"):
            keras.mixed_precision.set_global_policy(policy)
            layer = keras.layers.Dense(2)
            layer.build((None, 3))
            found[policy] = layer.kernel.dtype
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert found == {"mixed_bfloat16": "float32", "bfloat16": "bfloat16"}
    layer = keras.layers.Dense(2, dtype="bfloat16")
    layer.build((None, 3))
    assert layer.kernel.dtype == "bfloat16"


@pytest.mark.parametrize("dtype,ulp", [("bfloat16", 2.0**-8), ("float16", 2.0**-11)])
def test_rounding_is_unbiased_and_nearest_loses_the_update(dtype, ulp):
    """Weights on the grid of [0.5, 1) (one ulp there), steps below half an
    ulp. Each SR result is one of the two neighbours of w + dw, rounded down
    with probability p = (distance above the lower one) / ulp; the mean
    error (in ulps) over N entries is 0 within 4 standard deviations,
    sqrt(mean p(1-p) / N)."""
    rng = np.random.default_rng(0)
    start = (0.5 + ulp * rng.integers(8, 0.5 / ulp - 8, N)).astype(np.float32)
    step = (rng.uniform(0.02, 0.45, N) * ulp).astype(np.float32)  # < half an ulp
    gradient = tf.constant(step / 0.5)  # SGD(0.5): dw = -0.5 * g = -step
    results = {}
    for name, opt in (
        ("nearest", keras.optimizers.SGD(0.5)),
        ("stochastic", StochasticRounding(keras.optimizers.SGD(0.5), seed=5)),
    ):
        w = keras.Variable(start, dtype=dtype)
        opt.apply([tf.cast(gradient, dtype)], [w])
        results[name] = tf.cast(w.value, tf.float32).numpy().astype(np.float64)
    np.testing.assert_array_equal(results["nearest"], start)  # every update lost
    sr = results["stochastic"]
    # Only the two neighbours of the exact value: start - ulp or start.
    assert np.all((sr == start) | (sr == start - ulp))
    # The gradient was cast to the variable dtype by SGD (bf16 arithmetic):
    # the exact expectation is start - 0.5 * float(cast(g)).
    g16 = tf.cast(tf.cast(gradient, dtype), tf.float32).numpy().astype(np.float64)
    lr16 = float(tf.cast(tf.cast(0.5, dtype), tf.float32))
    exact = start - lr16 * g16
    p = (start - exact) / ulp  # probability of rounding down
    error = (sr - exact) / ulp
    sigma = np.sqrt(np.mean(p * (1 - p)) / N)
    assert abs(error.mean()) < 4 * sigma, (error.mean(), sigma)
    assert 0.05 < (sr < start).mean() < 0.45  # really random


def test_keras_adam_cannot_train_bfloat16_variables_but_adam8bit_can():
    """Why the docstring says to use Adam8bit: Keras Adam casts beta_2 = 0.999
    to bfloat16 (= 1.0), so its bias correction and every step are 0."""
    from tf_lowprec.optimizers import Adam8bit

    assert float(tf.cast(0.999, tf.bfloat16)) == 1.0
    moved = {}
    for name, inner in (("keras", keras.optimizers.Adam(0.1)), ("8bit", Adam8bit(0.1))):
        w = keras.Variable(np.full(64, 0.5, np.float32), dtype="bfloat16")
        StochasticRounding(inner, seed=1).apply([tf.ones(64, tf.bfloat16)], [w])
        moved[name] = float(tf.reduce_max(tf.abs(tf.cast(w.value, tf.float32) - 0.5)))
    assert moved["keras"] == 0.0
    assert moved["8bit"] == pytest.approx(0.1, rel=0.02)  # Adam's first step: lr


def test_float32_variables_pass_through_unchanged():
    rng = np.random.default_rng(1)
    w0, g = rng.standard_normal((2, 300)).astype(np.float32)
    results = []
    for opt in (
        keras.optimizers.Adam(0.01),
        StochasticRounding(keras.optimizers.Adam(0.01), seed=1),
    ):
        w = keras.Variable(w0)
        for _ in range(3):
            opt.apply([tf.constant(g)], [w])
        results.append(w.numpy())
    np.testing.assert_array_equal(results[0], results[1])


def test_weight_decay_is_stochastically_rounded():
    """SGD(lr=0.01, weight_decay=0.01) shrinks w by 1e-4 per step: below half a
    bfloat16 ulp of 1.0 (2^-9), so nearest rounding never decays; with SR the
    mean over N entries follows (1 - 1e-4)^t within 4 sigma of the rounding noise."""
    steps = 20

    def final_mean(opt):
        w = keras.Variable(np.full(N, 0.75, np.float32), dtype="bfloat16")
        step = tf.function(lambda: opt.apply([tf.zeros(N, tf.bfloat16)], [w]))
        for _ in range(steps):
            step()
        return float(tf.reduce_mean(tf.cast(w.value, tf.float64)))

    means = {
        "nearest": final_mean(keras.optimizers.SGD(0.01, weight_decay=0.01)),
        "stochastic": final_mean(
            StochasticRounding(keras.optimizers.SGD(0.01, weight_decay=0.01), seed=2)
        ),
    }
    assert means["nearest"] == 0.75
    expected = 0.75 * (1 - 1e-4) ** steps
    # Each step adds independent rounding noise of at most ulp^2 / 4 variance.
    sigma = 2.0**-8 * np.sqrt(steps / 4 / N)
    assert abs(means["stochastic"] - expected) < 4 * sigma + 1e-6, means


def test_small_learning_rate_training_stalls_with_nearest_and_tracks_float32_with_sr():
    """Least squares in 64 dimensions, w from 1.0, SGD lr 2e-4 (updates ~1e-4:
    below half an ulp of bfloat16 weights near 1)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((256, 64)).astype(np.float32)
    y = x @ rng.standard_normal(64).astype(np.float32)
    xt, yt = tf.constant(x), tf.constant(y)

    def loss(w):
        return float(
            tf.reduce_mean((xt @ tf.cast(w, tf.float32)[:, None] - yt[:, None]) ** 2)
        )

    def train(dtype, opt):
        w = keras.Variable(np.ones(64, np.float32), dtype=dtype)

        @tf.function
        def step():
            w32 = tf.cast(w.value, tf.float32)
            g = (
                2
                * tf.linalg.matvec(xt, tf.linalg.matvec(xt, w32) - yt, transpose_a=True)
                / 256
            )
            opt.apply([tf.cast(g, dtype)], [w])

        for _ in range(150):
            step()
        return loss(w.value)

    start = loss(tf.ones(64))
    f32 = train("float32", keras.optimizers.SGD(2e-4))
    nearest = train("bfloat16", keras.optimizers.SGD(2e-4))
    sr = train("bfloat16", StochasticRounding(keras.optimizers.SGD(2e-4), seed=4))
    assert f32 < 0.97 * start
    assert nearest == pytest.approx(start, rel=1e-6) or nearest > start - 0.1 * (
        start - f32
    )
    assert abs(sr - f32) < 0.1 * (start - f32), (start, f32, nearest, sr)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"optimizer": "adam"}, "optimizer"),
        ({"optimizer": keras.optimizers.SGD(), "seed": -1}, "seed"),
        ({"optimizer": keras.optimizers.SGD(), "seed": 1.5}, "seed"),
        ({"optimizer": keras.optimizers.SGD(), "learning_rate": 0.1}, "learning_rate"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, name):
    with pytest.raises(ValueError, match=name):
        StochasticRounding(**kwargs)
