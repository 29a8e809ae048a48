"""VarianceReduced + FullGradientSnapshot: full gradient, two-pass step, misuse, resume."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.reference import svrg_problems as problems
from tests.reference.svrg_numpy import full_gradient as numpy_full_gradient
from tf_lowprec.optimizers import HALP, SVRG
from tf_lowprec.training import FullGradientSnapshot, VarianceReduced, full_gradient


def _data(n=30, d=4, units=1, batch_size=8, dtype="float32"):
    x, y = problems.least_squares(n=n, d=d, units=units)
    x, y = x.astype(dtype), y.astype(dtype)
    return x, y, tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def test_full_gradient_is_the_sample_mean_with_regulariser(float64):
    # 30 samples in batches of 8: the short last batch must weigh 6/30.
    x, y, data = _data(dtype="float64")
    model = problems.dense_model(4, 1)
    model.compile(loss="mse")
    got = full_gradient(model, data)
    want = numpy_full_gradient(model.get_weights(), problems.batches(x, y, 8), problems.mse_grad)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-12)

    inputs = keras.Input((4,))
    dense = keras.layers.Dense(1, kernel_regularizer=keras.regularizers.L2(0.0625))
    regularised = keras.Model(inputs, dense(inputs))
    regularised.set_weights(model.get_weights())
    regularised.compile(loss="mse")
    got = full_gradient(regularised, data)
    np.testing.assert_allclose(
        got[0].numpy(), want[0] + 2 * 0.0625 * model.get_weights()[0], rtol=1e-12
    )


def _bn_dropout_model():
    inputs = keras.Input((4,))
    h = keras.layers.Dense(8, name="hidden")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Dropout(0.5)(h)
    return keras.Model(inputs, keras.layers.Dense(3)(h))


def test_first_step_after_snapshot_is_exactly_the_full_gradient_step():
    # At w = w~ the correction g(w) - g(w~) is exactly zero only if both
    # passes share the dropout mask and the batch statistics; the moving
    # statistics must then be updated once, by the current pass.
    x, y = problems.softmax_data(n=32, d=4, classes=3)
    x = x.astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    model = VarianceReduced(_bn_dropout_model())
    opt = SVRG(0.5, T=100)
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.take_snapshot(data)
    w0 = [v.numpy().copy() for v in model.trainable_variables]
    full = [opt.full_gradient(v).numpy() for v in model.trainable_variables]
    bn = model.inner.get_layer("bn")
    mean0 = bn.moving_mean.numpy().copy()
    hidden = model.inner.get_layer("hidden")
    batch_mean = (x[:8] @ hidden.kernel.numpy() + hidden.bias.numpy()).mean(axis=0)
    model.train_on_batch(x[:8], y[:8])
    for v, w, g in zip(model.trainable_variables, w0, full):
        np.testing.assert_array_equal(v.numpy(), w - np.float32(0.5) * g)
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.99 * mean0 + 0.01 * batch_mean, rtol=1e-5)


def test_snapshot_schedule_follows_T_in_epochs():
    x, y, data = _data(n=32)
    model = VarianceReduced(problems.dense_model(4, 1))
    opt = SVRG(0.05, T="0.5epoch")
    model.compile(optimizer=opt, loss="mse")
    snapshot = FullGradientSnapshot(data)
    model.fit(data, epochs=2, verbose=0, callbacks=[snapshot])
    assert snapshot.period == 2
    assert snapshot.snapshots == 4  # steps 0, 2, 4, 6
    assert int(opt.snapshot_iteration.numpy()) == 6
    assert int(opt.iterations.numpy()) == 8


def test_fit_derives_the_full_gradient_set_from_arrays_and_validation_split():
    x, y, _ = _data(n=40)
    data = VarianceReduced._training_set(
        {"x": x, "y": y, "batch_size": 8, "validation_split": 0.25}
    )
    assert sum(int(b[0].shape[0]) for b in data) == 30
    assert all(b[0].shape[0] == 8 for b in list(data)[:3])


def test_explicit_full_gradient_callback_is_used_as_given(float64):
    # The full gradient comes from the dataset passed to the callback, here
    # half the training data: one SVRG step from a snapshot is -lr * g~(half).
    x, y, _ = _data(n=32, dtype="float64")
    half = tf.data.Dataset.from_tensor_slices((x[:16], y[:16])).batch(8)
    model = VarianceReduced(problems.dense_model(4, 1))
    w0 = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=SVRG(0.125, T=10), loss="mse")
    model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0,
              callbacks=[FullGradientSnapshot(half)])
    g = numpy_full_gradient(w0, problems.batches(x[:16], y[:16], 8), problems.mse_grad)
    for got, w, gi in zip(model.get_weights(), w0, g):
        np.testing.assert_allclose(got, w - 0.125 * gi, rtol=1e-12)


def test_compile_with_another_optimizer_says_what_to_use():
    model = VarianceReduced(problems.dense_model(4, 1))
    with pytest.raises(ValueError, match="SVRG.*HALP"):
        model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    model.compile(optimizer="halp", loss="mse")
    assert isinstance(model.optimizer, HALP)


@pytest.mark.parametrize(
    "make_x, match",
    [
        (lambda d: d.repeat(), "infinite"),
        (lambda d: (b for b in d), "FullGradientSnapshot"),
    ],
)
def test_fit_on_data_without_a_finite_pass_says_what_to_add(make_x, match):
    _, _, data = _data()
    model = VarianceReduced(problems.dense_model(4, 1))
    model.compile(optimizer=SVRG(0.05, T=4), loss="mse")
    with pytest.raises(ValueError, match=match):
        model.fit(make_x(data), epochs=1, steps_per_epoch=2, verbose=0)


def test_T_in_epochs_with_unknown_epoch_length_says_what_to_pass():
    _, _, data = _data()
    unknown = data.filter(lambda x, y: True)
    model = VarianceReduced(problems.dense_model(4, 1))
    model.compile(optimizer=SVRG(0.05, T="1epoch"), loss="mse")
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit(unknown, epochs=1, verbose=0)


def test_steps_per_execution_must_divide_T():
    _, _, data = _data(n=32)
    model = VarianceReduced(problems.dense_model(4, 1))
    model.compile(optimizer=SVRG(0.05, T=3), loss="mse", steps_per_execution=2)
    with pytest.raises(ValueError, match="steps_per_execution"):
        model.fit(data, epochs=1, verbose=0)


def test_train_on_batch_without_snapshot_fails_with_instructions():
    x, y, data = _data()
    model = VarianceReduced(problems.dense_model(4, 1))
    model.compile(optimizer=SVRG(0.05, T=4), loss="mse")
    with pytest.raises(tf.errors.InvalidArgumentError, match="take_snapshot"):
        model.train_on_batch(x[:8], y[:8])
    model.take_snapshot(data)
    model.train_on_batch(x[:8], y[:8])


def _optimizer_state(opt):
    return [np.asarray(v.numpy()) for v in opt.variables]


@pytest.mark.parametrize(
    "make_optimizer",
    [lambda: SVRG(0.05, T=3, weight_decay=1e-3),
     lambda: HALP(0.05, T=3, mu=2.0, bits=4, seed=9, weight_decay=1e-3)],
    ids=["svrg", "halp"],
)
def test_resume_from_keras_file_is_bit_identical(tmp_path, make_optimizer):
    # 4 steps per epoch and T = 3: the checkpoint falls inside an outer loop.
    x, y, _ = _data(n=32, units=2)

    def fresh():
        keras.utils.set_random_seed(0)
        model = VarianceReduced(problems.dense_model(4, 2))
        model.compile(optimizer=make_optimizer(), loss="mse")
        return model

    straight = fresh()
    straight.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)

    first = fresh()
    first.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    path = str(tmp_path / "vr.keras")
    first.save(path)
    resumed = keras.saving.load_model(path)
    assert isinstance(resumed, VarianceReduced)
    assert type(resumed.optimizer) is type(straight.optimizer)
    assert resumed.optimizer.get_config() == first.optimizer.get_config()
    resumed.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)

    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(_optimizer_state(resumed.optimizer), _optimizer_state(straight.optimizer)):
        np.testing.assert_array_equal(a, b)
    if isinstance(straight.optimizer, HALP):
        assert straight.optimizer.offset(straight.trainable_variables[0]).dtype == "int8"


def test_halp_under_xla_stays_on_its_grid():
    x, y, data = _data(n=32, units=2)
    model = VarianceReduced(problems.dense_model(4, 2))
    opt = HALP(0.05, T=3, mu=2.0, bits=4)
    model.compile(optimizer=opt, loss="mse", jit_compile=True)
    history = model.fit(data, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    for v in model.trainable_variables:
        scale = np.float64(opt.scale(v).numpy())
        expected = opt.center(v).numpy().astype("float64") + opt.offset(v).numpy() * scale
        np.testing.assert_allclose(v.numpy(), expected, rtol=2**-23, atol=2**-24 * scale)
