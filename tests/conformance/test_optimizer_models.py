"""Every optimizer and wrapper inside `model.fit`: the Keras features a user meets there.

Unbuilt models (built inside the traced train function), `.keras`
save/load/resume bit for bit, `tf.train.Checkpoint`, `jit_compile` (the
optimizer steps in one XLA function, against eager), mixed
precision, float8 training (`model.quantize("float8")`: scales and amax
histories are overwritten with their gradient, never updated), and the EMA
swap at the end of `fit` (Keras's `test_ema_with_model_fit`). Tiny models,
a few steps. Cases and expected differences: `optimizer_table.py`.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conformance import optimizer_table as table
from tests.conformance.optimizer_table import CASES, difference, mark_known

pytestmark = pytest.mark.parametrize("case", CASES, ids=repr)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(8, 3)).astype("float32")
Y = RNG.normal(size=(8, 2)).astype("float32")
TOKENS = RNG.integers(0, 12, size=(8, 4)).astype("int32")


def _compile(case, model, optimizer=None, **kwargs):
    if case.driven:
        from tf_lowprec.training import VarianceReduced

        model = VarianceReduced(model)
    model.compile(optimizer=optimizer or case.make(), loss="mse", **kwargs)
    return model


def _fit(model, epochs=1, x=X):
    model.fit(x, Y, batch_size=4, epochs=epochs, shuffle=False, verbose=0)


def _built_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(2)]
    )


def _atol(case):
    # XLA may change the last bit of a value that is then stochastically
    # rounded, which can move it by one grid step (1/16 at this scale).
    return 1 / 8 if case.stochastic else 1e-6


def _schedule():
    return keras.optimizers.schedules.ExponentialDecay(0.1, 2, 0.8)


def test_unbuilt_model_trains_saves_resumes_and_checkpoints(case, tmp_path, request):
    """No `Input`: the model and the optimizer are built inside the trace.

    An Embedding gives the optimizer sparse gradients inside `fit`, and the
    learning rate is a schedule, so a resumed run must also restore the
    step count. Loaded and original continue bit for bit (weights and
    every optimizer variable); `tf.train.Checkpoint` restores both.
    """
    mark_known(request, case, "unbuilt_model")
    model = keras.Sequential(
        [keras.layers.Embedding(12, 3), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    model = _compile(case, model, case.make(learning_rate=_schedule()))
    _fit(model, x=TOKENS)
    assert int(model.optimizer.iterations) == 2
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    _fit(model, x=TOKENS)
    _fit(loaded, x=TOKENS)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(a, b)

    checkpoint = tf.train.Checkpoint(model, optimizer=model.optimizer)
    saved = checkpoint.save(os.path.join(tmp_path, "ckpt"))
    before = np.array(model(TOKENS))  # a direct call: no predict function to trace
    state = [np.array(v) for v in model.optimizer.variables]
    _fit(model, x=TOKENS)
    assert not np.allclose(np.array(model(TOKENS)), before)
    checkpoint.restore(saved)
    np.testing.assert_array_equal(np.array(model(TOKENS)), before)
    for a, b in zip(state, model.optimizer.variables):
        np.testing.assert_array_equal(a, b)


def _stepper(case, optimizer, v):
    def steps(gradients):
        for g in gradients:
            table.step(case, optimizer, [g], [v])

    return steps


def test_jit_compile_matches_eager(case, request):
    """The same steps, eagerly and in one XLA-compiled function."""
    mark_known(request, case, "jit_compile")
    grads = [
        np.array([[0.3, -0.2], [0.1, 0.4]], "float32"),
        np.array([[-0.1, 0.5], [0.2, -0.3]], "float32"),
    ]
    results = []
    for jit in (True, False):
        optimizer = case.make()
        v = keras.Variable(np.array([[1.0, 2.0], [3.0, 4.0]], "float32"))
        table.prepare(case, optimizer, [v])  # variables are created outside XLA

        steps = _stepper(case, optimizer, v)
        if jit:
            # autograph=False: Keras optimizers branch with ops.cond, and a long
            # session was seen to mix up autograph-converted methods.
            tf.function(steps, jit_compile=True, autograph=False)(
                [tf.constant(g) for g in grads]
            )
        else:
            steps(grads)
        results.append(np.array(v))
        assert int(optimizer.iterations) == 2
    np.testing.assert_allclose(*results, rtol=1e-6, atol=_atol(case))


def test_mixed_float16_training(case):
    if difference(case, "loss_scale_optimizer"):
        pytest.skip("covered by test_loss_scale.py (documented refusal)")
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        # Eager: the optimizer sees the same loss-scaled float32 gradients
        # as in a traced step, without seconds of tracing per case.
        model = _compile(case, _built_model(), run_eagerly=True)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    start = model.get_weights()
    _fit(model)
    assert int(model.optimizer.iterations) == 2
    for before, after in zip(start, model.get_weights()):
        assert np.all(np.isfinite(after)) and not np.array_equal(before, after)


def test_float8_training_overwrites_scales_with_their_gradient(case, request):
    """Keras's float8 recipe: scales and amax histories take their gradient.

    The variables of a `model.quantize("float8")` model, stepped eagerly
    with gradients of their shapes (a traced train step adds nothing to what
    the optimizer sees, and costs seconds per optimizer).
    """
    mark_known(request, case, "overwrite_with_gradient")
    model = _built_model()
    model.quantize("float8")
    variables = model.trainable_variables
    flags = [bool(getattr(v, "overwrite_with_gradient", False)) for v in variables]
    assert any(flags) and not all(flags)
    rng = np.random.default_rng(1)
    start = [np.array(v) for v in variables]
    optimizer = case.make()
    for _ in range(2):
        grads = [rng.normal(size=v.shape).astype("float32") for v in variables]
        table.step(case, optimizer, grads, variables)
    for v, g, w0, flag in zip(variables, grads, start, flags):
        if flag:
            np.testing.assert_array_equal(v, g)
        else:
            assert np.all(np.isfinite(v)) and not np.array_equal(v, w0)


def test_ema_swapped_in_at_the_end_of_fit(case):
    if difference(case, "use_ema"):
        pytest.skip("use_ema is refused (test_optimizer_api.py checks the refusal)")
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(2, kernel_initializer="ones", use_bias=False)]
    )
    model = _compile(case, model, case.make(use_ema=True, ema_momentum=0.9), run_eagerly=True)
    model.fit(np.ones((1, 1), "float32"), np.zeros((1, 2), "float32"), epochs=2, verbose=0)
    inner = table.innermost(model.optimizer)
    (average,) = [np.array(a) for a in inner._model_variables_moving_average]
    np.testing.assert_allclose(model.trainable_variables[0], average, rtol=1e-6)
    assert not np.allclose(average, 1.0)
