"""Pruning schedules: values against the formulas, validation, serialization."""

import json

import keras
import pytest

from tests.pruning import pruning_numpy as ref
from tf_lowprec.pruning import ConstantSparsity, PolynomialDecay, PruningSchedule


def test_constant_sparsity_prunes_every_frequency_steps_in_range():
    schedule = ConstantSparsity(0.75, begin_step=10, end_step=40, frequency=10)
    for step in range(0, 60):
        should, sparsity = schedule(step)
        assert should == ref.should_prune(step, 10, 40, 10), step
        assert sparsity == 0.75
    assert [s for s in range(60) if schedule(s)[0]] == [10, 20, 30, 40]


def test_constant_sparsity_without_end_prunes_forever():
    schedule = ConstantSparsity(0.5, begin_step=0, frequency=100)
    assert schedule(100) == (True, 0.5)
    assert schedule(10**9) == (True, 0.5)
    assert schedule(150) == (False, 0.5)


def test_polynomial_decay_matches_formula_and_hand_values():
    schedule = PolynomialDecay(0.0, 0.9, begin_step=0, end_step=100, power=3, frequency=5)
    assert schedule(0) == (True, 0.0)
    # 0.9 + (0 - 0.9) * (1 - 0.5)**3 = 0.9 - 0.1125
    assert schedule(50)[1] == pytest.approx(0.7875, abs=1e-12)
    assert schedule(100) == (True, pytest.approx(0.9))
    assert schedule(101) == (False, pytest.approx(0.9))  # past end: no pruning, sparsity held
    for step in range(0, 130, 3):
        should, value = schedule(step)
        assert should == ref.should_prune(step, 0, 100, 5)
        assert value == pytest.approx(ref.polynomial_sparsity(step, 0.0, 0.9, 0, 100, 3))


def test_linear_ramp_is_plus_ten_percent_every_ten_epochs():
    e = 7  # steps per epoch
    schedule = PolynomialDecay(0.1, 0.5, 10 * e, 50 * e, power=1, frequency=10 * e)
    pruning_steps = [s for s in range(0, 60 * e) if schedule(s)[0]]
    assert pruning_steps == [10 * e, 20 * e, 30 * e, 40 * e, 50 * e]
    assert [round(schedule(s)[1], 12) for s in pruning_steps] == [0.1, 0.2, 0.3, 0.4, 0.5]


def test_last_pruning_step_in_a_block():
    schedule = ConstantSparsity(0.5, begin_step=3, frequency=4)  # 3, 7, 11, ...
    assert schedule.last_pruning_step(1, 2) is None
    assert schedule.last_pruning_step(1, 8) == 7
    assert schedule.last_pruning_step(7, 7) == 7


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"target_sparsity": 1.0}, "target_sparsity"),
        ({"target_sparsity": -0.1}, "target_sparsity"),
        ({"target_sparsity": 0.5, "begin_step": -1}, "begin_step"),
        ({"target_sparsity": 0.5, "end_step": -2}, "end_step"),
        ({"target_sparsity": 0.5, "begin_step": 5, "end_step": 4}, "end_step"),
        ({"target_sparsity": 0.5, "frequency": 0}, "frequency"),
        ({"target_sparsity": 0.5, "frequency": 2.5}, "frequency"),
    ],
)
def test_constant_sparsity_rejects_bad_arguments_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ConstantSparsity(**kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"end_step": -1}, "end_step"),
        ({"end_step": 0}, "end_step"),
        ({"final_sparsity": 1.0}, "final_sparsity"),
        ({"initial_sparsity": float("nan")}, "initial_sparsity"),
        ({"power": 0}, "power"),
    ],
)
def test_polynomial_decay_rejects_bad_arguments_by_name(kwargs, name):
    args = {"initial_sparsity": 0.0, "final_sparsity": 0.8, "begin_step": 0, "end_step": 10}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        PolynomialDecay(**args)


def test_step_must_be_an_integer():
    with pytest.raises(ValueError, match="step"):
        ConstantSparsity(0.5)(1.5)


@pytest.mark.parametrize(
    "schedule",
    [
        ConstantSparsity(0.9, begin_step=2, end_step=30, frequency=7),
        PolynomialDecay(0.1, 0.95, begin_step=3, end_step=300, power=2, frequency=9),
    ],
)
def test_schedules_round_trip_through_keras_serialization(schedule):
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(schedule)))
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(schedule) and restored == schedule
    assert [restored(s) for s in range(40)] == [schedule(s) for s in range(40)]
    assert isinstance(restored, PruningSchedule)


def test_config_is_the_constructor_arguments_in_their_order():
    schedule = PolynomialDecay(0.1, 0.95, begin_step=3, end_step=300, power=2, frequency=9)
    assert list(schedule.get_config().items()) == [
        ("initial_sparsity", 0.1), ("final_sparsity", 0.95), ("begin_step", 3),
        ("end_step", 300), ("power", 2.0), ("frequency", 9)]
    assert ConstantSparsity(0.5, 2, 30, 7).get_config() == {
        "target_sparsity": 0.5, "begin_step": 2, "end_step": 30, "frequency": 7}

    class Halving(PruningSchedule):  # the documented subclass: no get_config of its own
        def __init__(self, begin_step=0, end_step=-1, frequency=100, factor=0.5):
            super().__init__(begin_step, end_step, frequency)
            self.factor = factor

        def sparsity_at(self, step):
            return 1.0 - self.factor ** ((step - self.begin_step) // self.frequency + 1)

    halving = Halving(4, frequency=2)
    assert halving.get_config() == {"begin_step": 4, "end_step": -1, "frequency": 2, "factor": 0.5}
    assert Halving.from_config(halving.get_config()) == halving
