"""LR schedules against numpy formulas; serialization; graph/XLA evaluation."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_lowprec.training import lr_schedules as S


def _values(schedule, steps):
    return np.array([float(schedule(s)) for s in steps])


def _paper_np(initial, t, final=None):
    if final is not None and t >= 1:
        return final
    if t <= 0.5:
        return initial
    if t <= 0.9:
        return initial * (1 - 0.99 * (t - 0.5) / 0.4)
    return initial * 0.01


def test_paper_piecewise_per_step_matches_formula():
    steps = range(0, 130)
    want = [_paper_np(0.1, s / 100) for s in steps]
    np.testing.assert_allclose(_values(S.PaperPiecewise(0.1, 100), steps), want, rtol=1e-6)


def test_paper_piecewise_per_epoch_is_constant_within_epochs_swalp_style():
    schedule = S.PaperPiecewise(0.05, total=20, steps_per_epoch=7, final_learning_rate=0.01)
    steps = range(0, 7 * 25)
    want = [_paper_np(0.05, (s // 7) / 20, final=0.01) for s in steps]
    np.testing.assert_allclose(_values(schedule, steps), want, rtol=1e-6)
    # the first averaged epoch (e = swa_start - 1) still runs at 1% of lr_init
    assert float(schedule(7 * 19)) == pytest.approx(0.0005)


def test_multistep_matches_formula_and_shifted_piecewise_constant():
    schedule = S.MultiStep(0.2, milestones=[3, 7, 8], gamma=0.5)
    steps = range(12)
    want = [0.2 * 0.5 ** sum(s >= m for m in (3, 7, 8)) for s in steps]
    np.testing.assert_allclose(_values(schedule, steps), want, rtol=1e-6)
    keras_piecewise = keras.optimizers.schedules.PiecewiseConstantDecay(
        [2, 6, 7], [0.2, 0.1, 0.05, 0.025]
    )
    np.testing.assert_allclose(_values(keras_piecewise, steps), want, rtol=1e-6)


def test_multistep_in_epochs():
    schedule = S.MultiStep(1.0, milestones=[2], gamma=0.1, steps_per_epoch=5)
    np.testing.assert_allclose(_values(schedule, [0, 9, 10, 30]), [1, 1, 0.1, 0.1], rtol=1e-6)


def test_constant_and_drop_once_and_repeated():
    once = S.ConstantAndDrop(0.1, drop_at=4)
    np.testing.assert_allclose(_values(once, range(10)), [0.1] * 4 + [0.01] * 6, rtol=1e-6)
    every = S.ConstantAndDrop(1.0, drop_at=3, drop_factor=0.5, repeat=True, steps_per_epoch=2)
    want = [0.5 ** ((s // 2) // 3) for s in range(20)]
    np.testing.assert_allclose(_values(every, range(20)), want, rtol=1e-6)


def test_cosine_annealing_is_keras_cosine_decay_with_eta_min():
    assert S.CosineAnnealing is keras.optimizers.schedules.CosineDecay
    initial, eta_min, t_max = 0.1, 0.001, 50
    schedule = S.CosineAnnealing(initial, t_max, alpha=eta_min / initial)
    steps = range(0, 60)
    want = [
        eta_min + (initial - eta_min) * (1 + math.cos(math.pi * min(s, t_max) / t_max)) / 2
        for s in steps
    ]
    np.testing.assert_allclose(_values(schedule, steps), want, rtol=1e-5)


SCHEDULES = [
    S.MultiStep(0.1, [5, 9], 0.2, steps_per_epoch=3),
    S.ConstantAndDrop(0.3, 4, 0.5, repeat=True),
    S.PaperPiecewise(0.05, 200, steps_per_epoch=391, final_learning_rate=0.01),
    S.PaperPiecewise(0.1, 1000),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_serialization_round_trip_and_xla(schedule):
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    steps = [0, 3, 17, 150, 70000, 90000]
    np.testing.assert_allclose(_values(restored, steps), _values(schedule, steps))
    compiled = tf.function(lambda s: schedule(s), jit_compile=True)
    for s in steps:
        assert float(compiled(tf.constant(s, tf.int64))) == pytest.approx(float(schedule(s)))


def test_schedule_survives_model_save_load_in_optimizer(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    schedule = S.PaperPiecewise(0.1, total=4, steps_per_epoch=2)
    model.compile(keras.optimizers.SGD(schedule), loss="mse")
    x, y = np.ones((12, 2), "float32"), np.zeros((12, 1), "float32")
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)  # 6 steps -> epoch 3, t=0.75
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    lr = loaded.optimizer._learning_rate
    assert isinstance(lr, S.PaperPiecewise)
    assert lr.get_config() == schedule.get_config()
    assert int(loaded.optimizer.iterations) == 6
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.1 * (1 - 0.99 * 0.25 / 0.4))


@pytest.mark.parametrize(
    "factory, kwargs, message",
    [
        (S.MultiStep, {"initial_learning_rate": 0.1, "milestones": [5, 5]}, "milestones"),
        (S.MultiStep, {"initial_learning_rate": 0.1, "milestones": []}, "milestones"),
        (S.MultiStep, {"initial_learning_rate": 0, "milestones": [1]}, "initial_learning_rate=0"),
        (S.MultiStep, {"initial_learning_rate": 1, "milestones": [1], "gamma": -1}, "gamma=-1"),
        (S.ConstantAndDrop, {"initial_learning_rate": 1, "drop_at": 0}, "drop_at=0"),
        (S.PaperPiecewise, {"initial_learning_rate": 1, "total": 2.5}, "total=2.5"),
        (
            S.PaperPiecewise,
            {"initial_learning_rate": 1, "total": 5, "steps_per_epoch": 0},
            "steps_per_epoch=0",
        ),
    ],
)
def test_invalid_arguments_raise(factory, kwargs, message):
    with pytest.raises(ValueError, match=message):
        factory(**kwargs)
