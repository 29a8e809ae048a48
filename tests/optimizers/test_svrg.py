"""SVRG: validation, config, numpy oracle through model.fit, linear convergence."""

import keras
import numpy as np
import pytest

from tests.reference import svrg_problems as problems
from tests.reference.svrg_numpy import svrg as svrg_oracle
from tf_lowprec import optimizers
from tf_lowprec.optimizers import SVRG
from tf_lowprec.optimizers.svrg import parse_period
from tf_lowprec.training import VarianceReduced


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"T": 0}, "T"),
        ({"T": -3}, "T"),
        ({"T": 0.5}, "0.5epoch"),
        ({"T": "0epoch"}, "T"),
        ({"T": "half an epoch"}, "T"),
        ({"T": True}, "T"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"clipnorm": 1.0}, "clipnorm"),
        ({"global_clipnorm": 1.0}, "global_clipnorm"),
        ({"gradient_accumulation_steps": 2}, "gradient_accumulation_steps"),
    ],
)
def test_invalid_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SVRG(**{"learning_rate": 0.1, **kwargs})


@pytest.mark.parametrize(
    "T, steps_per_epoch, want",
    [(7, None, 7), (7.0, 10, 7), ("0.5epoch", 10, 5), ("1 epoch", 391, 391),
     ("3epochs", 391, 1173), ("0.5epoch", 391, 196), ("0.01epoch", 10, 1)],
)
def test_period_in_steps_or_epochs(T, steps_per_epoch, want):
    assert SVRG(0.1, T=T).period(steps_per_epoch) == want


def test_period_in_epochs_needs_steps_per_epoch():
    with pytest.raises(ValueError, match="steps_per_epoch"):
        SVRG(0.1, T="0.5epoch").period(None)


def test_parse_period_canonical_forms():
    assert parse_period("2 Epochs") == ("epochs", 2.0)
    assert parse_period(".5epoch") == ("epochs", 0.5)
    assert SVRG(0.1, T="0.50 epochs").T == "0.5epoch"


def test_config_round_trip_and_registry():
    opt = SVRG(learning_rate=0.05, T="0.5epoch", weight_decay=1e-4)
    clone = SVRG.from_config(opt.get_config())
    assert clone.get_config() == opt.get_config()
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(restored, SVRG) and restored.T == "0.5epoch"
    assert isinstance(optimizers.get("svrg", learning_rate=0.1, T=3), SVRG)


def test_plain_model_fails_at_once_with_what_to_add():
    x, y = problems.least_squares()
    model = problems.dense_model(4, 1)
    model.compile(optimizer=SVRG(0.1, T=3), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r"VarianceReduced\(model\)"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for w, w0 in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)


def _fit_against_oracle(x, y, units, loss, grad, opt, oracle_kwargs, epochs, batch_size=8):
    model = VarianceReduced(problems.dense_model(x.shape[1], units))
    init = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=opt, loss=loss)
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    data = problems.batches(x, y, batch_size)
    steps = epochs * len(data)
    want = svrg_oracle(init, data, grad, steps=steps, **oracle_kwargs)[-1]
    return model.get_weights(), want


def test_matches_numpy_oracle_least_squares_with_schedule_and_decay(float64):
    # 30 samples in batches of 8: a short last batch, 4 steps per epoch, and
    # T = 3 steps so snapshots fall inside epochs.
    x, y = problems.least_squares(n=30, d=4, units=2)
    # Keras holds the learning rate and (via tf.cast of a Python float) the
    # weight decay in float32: use values that float32 represents exactly.
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([5], [0.125, 0.0625])
    got, want = _fit_against_oracle(
        x, y, 2, "mse", problems.mse_grad,
        SVRG(schedule, T=3, weight_decay=2.0**-7),
        dict(lr=lambda t: 0.125 if t <= 5 else 0.0625, T=3, weight_decay=2.0**-7),
        epochs=3,
    )
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_matches_numpy_oracle_softmax_regression_T_in_epochs(float64):
    x, y = problems.softmax_data(n=30, d=4, classes=3)
    got, want = _fit_against_oracle(
        x, y, 3, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        problems.softmax_grad, SVRG(0.5, T="0.5epoch"), dict(lr=0.5, T=2), epochs=3,
    )
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_least_squares_converges_linearly_to_lstsq(float64):
    x, y = problems.least_squares(n=64, d=4, noise=0.3, seed=3)
    kernel, bias = problems.lstsq_solution(x, y)
    model = VarianceReduced(problems.dense_model(4, 1))
    model.compile(optimizer=SVRG(0.05, T="1epoch"), loss="mse")
    errors = []

    class Distance(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            k, b = self.model.get_weights()
            errors.append(np.sqrt(np.sum((k - kernel) ** 2) + np.sum((b - bias) ** 2)))

    model.fit(x, y, batch_size=4, epochs=24, verbose=0, callbacks=[Distance()])
    errors = np.array(errors)
    assert errors[-1] < 1e-9
    # Linear rate: a constant factor per epoch (measured ~0.3), not 1/t.
    rates = errors[1:13] / errors[:12]
    assert np.all(rates < 0.6), rates
