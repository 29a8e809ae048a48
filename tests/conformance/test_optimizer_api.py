"""Keras's generic optimizer tests, as properties, for every optimizer and wrapper.

Each test follows one test of `keras/src/optimizers/optimizer_test.py`,
`optimizer_sparse_test.py`, `sgd_test.py` or `adam_test.py` (Keras 3.15):
where Keras asserts SGD's numbers, this suite asserts the property those
numbers show (e.g. "clipping = the same optimizer fed the clipped gradient").
Cases and expected differences: `optimizer_table.py`. Eager, 2x2 variables.
"""

import copy
import pickle
import re
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.utils.naming import to_snake_case

from tests.conformance import optimizer_table as table
from tests.conformance.optimizer_table import (
    CASES,
    REJECTS,
    difference,
    mark_known,
    prepare,
    step,
)

G1 = np.array([[0.3, -0.2], [0.1, 0.4]], "float32")
G2 = np.array([[-0.1, 0.5], [0.2, -0.3]], "float32")
G3 = np.array([[0.2, 0.1], [-0.4, 0.2]], "float32")
W0 = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")


def var(value=W0, **kwargs):
    return keras.Variable(np.array(value, "float32"), **kwargs)


def values(variables):
    return [np.array(v) for v in variables]


def run(case, optimizer, grads_per_step, initial=(W0,)):
    """Fresh variables from `initial`, one step per entry of `grads_per_step`."""
    variables = [var(w) for w in initial]
    for grads in grads_per_step:
        step(case, optimizer, grads, variables)
    return variables


def rejected(case, **base):
    """Asserts the documented rejection of an argument in `base`, if listed.

    Returns whether one was listed (the test then stops: the feature is
    not supported, and refusing it clearly is the contract).
    """
    for argument in base:
        kind_reason = difference(case, argument)
        if kind_reason is not None and kind_reason[0] == REJECTS:
            with pytest.raises(ValueError, match=argument):
                case.make(**base)
            return True
    return False


pytestmark = pytest.mark.parametrize("case", CASES, ids=repr)


def test_iterations_counter(case):
    optimizer = case.make()
    assert int(optimizer.iterations) == 0
    variables = [var()]
    step(case, optimizer, [G1], variables)
    assert int(optimizer.iterations) == 1
    step(case, optimizer, [G1], variables)
    assert int(optimizer.iterations) == 2


def test_empty_gradients(case):
    with pytest.raises(ValueError, match="No gradients provided"):
        step(case, case.make(), [None], [var()])
    optimizer, reference = case.make(), case.make()
    frozen, moved = var(), var()
    with pytest.warns(UserWarning):
        step(case, optimizer, [None, G1], [frozen, moved])
    np.testing.assert_array_equal(frozen, W0)
    assert not np.array_equal(moved, W0)
    if not case.stochastic:  # random streams are per variable index
        (expected,) = run(case, reference, [[G1]])
        np.testing.assert_allclose(moved, expected, rtol=1e-6)


def _clip(grads, clip, sparse):
    grads = [np.array(g, "float64") for g in grads]
    if clip == "clipvalue":
        return [np.clip(g, -1.0, 1.0).astype("float32") for g in grads]
    if clip == "clipnorm":
        return [(g / np.linalg.norm(g)).astype("float32") for g in grads]
    total = np.sqrt(sum(np.sum(g * g) for g in grads))
    return [(g / total).astype("float32") for g in grads]


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "indexed_slices"])
@pytest.mark.parametrize("clip", ["clipnorm", "clipvalue", "global_clipnorm"])
def test_clipping(case, clip, sparse):
    if rejected(case, **{clip: 1.0}):
        return
    with pytest.raises(ValueError, match="Only one of"):
        case.make(clipnorm=1.0, clipvalue=1.0)
    big = [G1 * 100.0, G2 * 50.0]

    def as_grads(grads):
        if not sparse:
            return grads
        return [
            tf.IndexedSlices(tf.constant(g), tf.constant([1, 0]), dense_shape=(2, 2))
            for g in grads
        ]

    # Different scales per step, so that clipping changes scale-free
    # optimizers (Adam) too.
    steps = [big, [big[1] * 0.1, big[0] * 3.0]]
    initial = (W0, W0 * 0.5)
    result = run(case, case.make(**{clip: 1.0}), [as_grads(g) for g in steps], initial)
    expected = run(
        case, case.make(), [as_grads(_clip(g, clip, sparse)) for g in steps], initial
    )
    unclipped = run(case, case.make(), [as_grads(g) for g in steps], initial)
    # Stochastic rounding: the clipped gradient differs from the numpy one in
    # the last bit, which can move a rounding by one grid step (1/16 here).
    atol = 2 / 16 if case.stochastic else 1e-6
    for r, e in zip(result, expected):
        np.testing.assert_allclose(r, e, rtol=1e-5, atol=atol)
    assert any(not np.allclose(e, u) for e, u in zip(expected, unclipped))


def test_ema_and_overwrite_frequency(case):
    if rejected(case, use_ema=True):
        return
    optimizer = case.make(use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=3)
    reference = case.make()
    (v,), (r,) = [var()], [var()]
    averages = []
    for k, g in enumerate([G1, G2, G3]):
        step(case, optimizer, [g], [v])
        step(case, reference, [g], [r])
        inner = table.innermost(optimizer)
        (average,) = values(inner._model_variables_moving_average)
        (mine,) = values(table.tracked(optimizer, [v]))
        (theirs,) = values(table.tracked(reference, [r]))
        expected = theirs if k == 0 else 0.9 * averages[-1] + 0.1 * theirs
        np.testing.assert_allclose(average, expected, rtol=1e-6)
        averages.append(average)
        if k < 2:  # EMA does not change the trajectory ...
            np.testing.assert_allclose(mine, theirs, rtol=1e-6)
        else:  # ... until the third step overwrites the variables
            np.testing.assert_allclose(mine, average, rtol=1e-6)
    step(case, optimizer, [G1], [v])
    assert np.all(np.isfinite(v))


def test_constraints_are_applied(case, request):
    mark_known(request, case, "constraints")
    v = var(np.random.default_rng(0).random((2, 2)) - 1.0)
    v.constraint = keras.constraints.NonNeg()
    step(case, case.make(learning_rate=1e-4), [np.zeros((2, 2), "float32")], [v])
    assert np.min(v) >= 0.0


def test_static_loss_scaling(case):
    if rejected(case, loss_scale_factor=1024.0):
        return
    optimizer = case.make(loss_scale_factor=1024.0)
    assert float(optimizer.scale_loss(1.0)) == 1024.0
    (scaled,) = run(case, optimizer, [[G1 * 1024.0]] * 2)
    (plain,) = run(case, case.make(), [[G1]] * 2)
    np.testing.assert_array_equal(scaled, plain)


def test_set_weights_copies_all_state(case, request):
    mark_known(request, case, "set_weights")
    first = case.make()
    x = var()
    step(case, first, [G1], [x])
    step(case, first, [G2], [x])
    second = case.make()
    with pytest.raises(ValueError, match="You are calling"):
        second.set_weights(values(first.variables))
    y = var(np.array(x))
    prepare(case, second, [y])
    second.set_weights(values(first.variables))
    for a, b in zip(first.variables, second.variables):
        np.testing.assert_array_equal(a, b)
    step(case, first, [G3], [x])
    step(case, second, [G3], [y])
    np.testing.assert_array_equal(x, y)


def test_gradient_accumulation(case):
    if rejected(case, gradient_accumulation_steps=3):
        return
    optimizer = case.make(gradient_accumulation_steps=3)
    inner = table.innermost(optimizer)
    assert inner.gradient_accumulation_steps == 3
    v = var()
    for k, g in enumerate([G1, G2, G3]):
        step(case, optimizer, [g], [v])
        assert int(inner._iterations) == k + 1
        if k < 2:
            assert int(optimizer.iterations) == 0
            np.testing.assert_array_equal(v, W0)
    assert int(optimizer.iterations) == 1
    (expected,) = run(case, case.make(), [[(G1 + G2 + G3) / 3.0]])
    np.testing.assert_allclose(v, expected, rtol=1e-6, atol=1e-7)
    step(case, optimizer, [G1], [v])
    np.testing.assert_allclose(v, expected, rtol=1e-6, atol=1e-7)


def test_gradient_accumulation_with_weight_decay(case):
    if rejected(case, weight_decay=0.05, gradient_accumulation_steps=3):
        return
    kwargs = {"weight_decay": 0.05, "gradient_accumulation_steps": 3}
    one = case.make(weight_decay=0.05)
    three = case.make(**kwargs)
    v1, v3 = var([[0.9], [0.5]]), var([[0.9], [0.5]])
    rng = np.random.default_rng(0)
    for _ in range(8):
        grads = rng.random((3, 2, 1)).astype("float32")
        step(case, one, [grads.mean(axis=0)], [v1])
        for g in grads:
            step(case, three, [g], [v3])
    np.testing.assert_allclose(v1, v3, rtol=1e-5, atol=1e-6)


def test_weight_decay_and_exclusions(case, request):
    if rejected(case, weight_decay=0.004):
        return
    mark_known(request, case, "exclude_from_weight_decay")
    zero = np.zeros(2, "float32")

    def decayed(exclude, weight_decay=0.004):
        optimizer = case.make(learning_rate=1.0, weight_decay=weight_decay)
        v1 = var([2.0, 2.0], name="kept")
        v2 = var([2.0, 2.0], name="exclude")
        if exclude == "names":
            optimizer.exclude_from_weight_decay(var_names=["exclude"])
        elif exclude == "list":
            optimizer.exclude_from_weight_decay(var_list=[v2])
        step(case, optimizer, [zero, zero], [v1, v2])
        return np.array(v1), np.array(v2)

    plain1, plain2 = decayed(None, weight_decay=0.0)
    v1, v2 = decayed(None)
    assert not np.allclose(v1, plain1) and not np.allclose(v2, plain2)
    for exclude in ("names", "list"):
        v1, v2 = decayed(exclude)
        assert not np.allclose(v1, plain1)
        np.testing.assert_array_equal(v2, plain2)


def test_callable_learning_rate(case):
    (called,) = run(case, case.make(learning_rate=lambda: 0.1), [[G1], [G2]])
    (fixed,) = run(case, case.make(learning_rate=0.1), [[G1], [G2]])
    np.testing.assert_array_equal(called, fixed)


def test_schedule_learning_rate(case):
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([1], [0.1, 0.05])
    (scheduled,) = run(case, case.make(learning_rate=schedule), [[G1], [G2], [G3]])
    optimizer, v = case.make(learning_rate=0.1), var()
    step(case, optimizer, [G1], [v])
    step(case, optimizer, [G2], [v])
    optimizer.learning_rate = 0.05
    step(case, optimizer, [G3], [v])
    np.testing.assert_allclose(scheduled, v, rtol=1e-6)


def test_setting_lr_to_schedule_untracks_the_lr_variable(case):
    optimizer = case.make(learning_rate=0.001)
    before = len(optimizer.variables)
    optimizer.learning_rate = keras.optimizers.schedules.PolynomialDecay(0.1, 4)
    assert len(optimizer.variables) == before - 1
    (v,) = run(case, optimizer, [[G1]])
    assert not np.array_equal(v, W0)


def test_overwrite_with_gradient(case, request):
    mark_known(request, case, "overwrite_with_gradient")
    overwritten, normal = var(), var()
    overwritten.overwrite_with_gradient = True
    step(case, case.make(), [G1, G2], [overwritten, normal])
    np.testing.assert_array_equal(overwritten, G1)
    # The reference keeps the variable order (random streams are per index).
    _, expected = run(case, case.make(), [[G1, G2]], initial=(W0, W0))
    np.testing.assert_allclose(normal, expected, rtol=1e-6)


def test_overwrite_with_gradient_and_accumulation(case, request):
    if rejected(case, gradient_accumulation_steps=2):
        return
    mark_known(request, case, "overwrite_with_gradient")
    optimizer = case.make(gradient_accumulation_steps=2)
    overwritten, normal = var(), var()
    overwritten.overwrite_with_gradient = True
    step(case, optimizer, [G1, G1], [overwritten, normal])
    np.testing.assert_array_equal(overwritten, W0)
    step(case, optimizer, [G2, G2], [overwritten, normal])
    np.testing.assert_array_equal(overwritten, np.maximum(G1, G2))
    _, expected = run(case, case.make(), [[G1, (G1 + G2) / 2.0]], initial=(W0, W0))
    np.testing.assert_allclose(normal, expected, rtol=1e-6, atol=1e-7)


def test_pickle_round_trip(case):
    optimizer = case.make()
    again = pickle.loads(pickle.dumps(optimizer))
    assert type(again) is type(optimizer)
    assert again.get_config() == optimizer.get_config()


def test_config_round_trip(case):
    """Including a schedule and a clipping argument, where accepted."""
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 100, 0.5)
    if difference(case, "clipnorm"):
        optimizer = case.make(learning_rate=schedule)
    else:
        optimizer = case.make(learning_rate=schedule, clipnorm=1.0)
    config = optimizer.get_config()
    again = type(optimizer).from_config(copy.deepcopy(config))
    assert again.get_config() == config
    serialized = keras.optimizers.serialize(optimizer)
    restored = keras.optimizers.deserialize(serialized)
    assert type(restored) is type(optimizer)
    assert restored.get_config() == config


def test_mixed_with_tf_variables(case, request):
    mark_known(request, case, "tf_variables")
    optimizer = case.make()
    v, tf_v = var(), tf.Variable(W0)
    step(case, optimizer, [G1, G1], [v, tf_v])
    assert int(optimizer.iterations) == 1
    assert not np.array_equal(tf_v.numpy(), W0)
    with pytest.warns(UserWarning, match="Gradients do not exist for variables"):
        step(case, optimizer, [G1, None], [v, tf_v])
    assert int(optimizer.iterations) == 2


def test_automatic_naming(case, request):
    mark_known(request, case, "naming")
    first, second = case.make(), case.make()
    base = to_snake_case(type(first).__name__)
    for optimizer in (first, second):
        assert re.fullmatch(re.escape(base) + r"(_\d+)?", optimizer.name), optimizer.name
    assert first.name != second.name
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(second))
    assert restored.name == second.name
    if not rejected(case, name="custom"):
        assert case.make(name="custom").name == "custom"


def test_sparse_gradient_with_duplicate_indices(case):
    """A sparse gradient equals its dense sum (TF1 proximal: on touched rows)."""
    kind_reason = difference(case, "sparse") or (None, "")
    sparse_opt, dense_opt = case.make(), case.make()
    start = np.linspace(-1.0, 1.0, 10, dtype="float32").reshape(5, 2)
    v_sparse, v_dense = var(start), var(start)
    indices = tf.constant([0, 2, 0])
    for i in range(3):
        rows = np.full((3, 2), 1.0 - 0.25 * i, "float32") * [[1.0], [-0.5], [0.5]]
        gradient = tf.IndexedSlices(tf.constant(rows), indices, dense_shape=(5, 2))
        step(case, sparse_opt, [gradient], [v_sparse])
        step(case, dense_opt, [tf.convert_to_tensor(gradient)], [v_dense])
    touched = [0, 2]
    if kind_reason[0] == table.KERAS_LIMITATION:
        assert not np.allclose(v_sparse, v_dense, rtol=1e-6)  # still true?
    elif kind_reason[0] == table.TF1_SPARSE:
        np.testing.assert_allclose(
            np.array(v_sparse)[touched], np.array(v_dense)[touched], rtol=1e-6
        )
        np.testing.assert_array_equal(np.delete(np.array(v_sparse), touched, 0),
                                      np.delete(start, touched, 0))
    elif kind_reason[0] == table.SPARSE_ROUNDING:
        np.testing.assert_allclose(v_sparse, v_dense, atol=0.05)
    else:
        np.testing.assert_allclose(v_sparse, v_dense, rtol=1e-6, atol=1e-7)
    assert not np.allclose(np.array(v_sparse)[touched], start[touched])


def test_save_and_load_own_variables(case):
    first, x = case.make(), var()
    step(case, first, [G1], [x])
    store = {}
    first.save_own_variables(store)
    assert len(store) == len(first.variables)
    second, y = case.make(), var(np.array(x))
    prepare(case, second, [y])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a count mismatch only warns in Keras
        second.load_own_variables(store)
    for a, b in zip(first.variables, second.variables):
        np.testing.assert_array_equal(a, b)
    step(case, first, [G2], [x])
    step(case, second, [G2], [y])
    np.testing.assert_array_equal(x, y)
