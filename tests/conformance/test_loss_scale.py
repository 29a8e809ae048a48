"""`keras.optimizers.LossScaleOptimizer` around every optimizer and wrapper.

Follows `keras/src/optimizers/loss_scale_optimizer_test.py` (Keras 3.15),
stateful (TensorFlow) cases, with the inner optimizer taken from the table
and Keras's SGD numbers replaced by "equals the unwrapped optimizer".
"""

import copy

import keras
import numpy as np
import pytest

from tests.conformance import optimizer_table as table
from tests.conformance.optimizer_table import CASES, difference, mark_known, prepare

LSO = keras.optimizers.LossScaleOptimizer
GRADS = np.array([1.0, 6.0, 7.0, 2.0], "float32") * 0.05
START = np.array([1.0, 2.0, 3.0, 4.0], "float32")

pytestmark = pytest.mark.parametrize("case", CASES, ids=repr)


def _lso(case, **kwargs):
    """`LossScaleOptimizer(case.make())`, or None after checking the documented refusal."""
    kind_reason = difference(case, "loss_scale_optimizer")
    optimizer = LSO(case.make(), **kwargs)
    if kind_reason is not None:
        assert kind_reason[0] == table.NEEDS_TRAIN_STEP
        with pytest.raises(ValueError, match="VarianceReduced"):
            optimizer.apply([GRADS], [keras.Variable(START)])
        return None
    return optimizer


def _unwrapped(case, grads, steps=1):
    v = keras.Variable(START)
    optimizer = case.make()
    for _ in range(steps):
        table.step(case, optimizer, [grads], [v])
    return np.array(v)


def test_finite_step_equals_the_unwrapped_optimizer(case):
    optimizer = _lso(case)
    if optimizer is None:
        return
    v = keras.Variable(START)
    for _ in range(2):
        optimizer.apply([GRADS * optimizer.initial_scale], [v])
    np.testing.assert_allclose(v, _unwrapped(case, GRADS, 2), rtol=1e-6)
    assert int(optimizer.iterations) == 2


def test_finite_step_with_inner_loss_scale_factor(case, request):
    mark_known(request, case, "inner_loss_scale_factor")
    if difference(case, "loss_scale_optimizer") or difference(case, "loss_scale_factor"):
        return  # covered by the two tests around it
    optimizer = LSO(case.make(loss_scale_factor=100.0))
    v = keras.Variable(START)
    optimizer.apply([GRADS * optimizer.initial_scale], [v])
    np.testing.assert_allclose(v, _unwrapped(case, GRADS), rtol=1e-6)
    # Scale-free optimizers (Adam) would hide a second division.
    assert table.innermost(optimizer).loss_scale_factor is None


def test_infinite_step_changes_nothing_and_downscales(case):
    optimizer = _lso(case, initial_scale=400.0)
    if optimizer is None:
        return
    v = keras.Variable(START)
    optimizer.build([v])
    prepare(case, optimizer.inner_optimizer, [v])
    before = [np.array(w) for w in optimizer.inner_optimizer.variables]
    for _ in range(4):
        optimizer.apply([np.full(4, np.inf, "float32")], [v])
    np.testing.assert_array_equal(v, START)
    for b, w in zip(before, optimizer.inner_optimizer.variables):
        np.testing.assert_array_equal(b, w)
    assert float(optimizer.scale_loss(1.0)) == 25.0
    assert int(optimizer.iterations) == 0  # skipped steps are not counted


def test_upscaling_and_iterations(case):
    optimizer = _lso(case, initial_scale=2.0, dynamic_growth_steps=2)
    if optimizer is None:
        return
    v = keras.Variable(START)
    optimizer.build([v])
    prepare(case, optimizer.inner_optimizer, [v])
    for i in range(8):
        optimizer.apply([GRADS])  # built: gradients only, as Keras allows
        assert int(optimizer.iterations) == i + 1
    assert float(optimizer.scale_loss(1.0)) == 32.0


def test_overwrite_with_gradient_through_the_loss_scale(case, request):
    optimizer = _lso(case)
    if optimizer is None:
        return
    mark_known(request, case, "overwrite_with_gradient")
    v = keras.Variable(START)
    v.overwrite_with_gradient = True
    optimizer.apply([GRADS], [v])
    np.testing.assert_array_equal(v, GRADS)


def test_serialization(case):
    optimizer = LSO(case.make(), initial_scale=3.0, dynamic_growth_steps=2, name="lso")
    config = optimizer.get_config()
    again = LSO.from_config(copy.deepcopy(config))
    assert again.get_config() == config
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored.inner_optimizer) is type(optimizer.inner_optimizer)
    assert restored.inner_optimizer.get_config() == optimizer.inner_optimizer.get_config()
