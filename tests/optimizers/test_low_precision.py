"""LowPrecision: numpy oracle, identity with the inner optimizer, SWALP's torch
step, state slots, sparse gradients, serialization and resume, misuse."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.reference import quant_numpy
from tests.reference.low_precision_numpy import KerasLowPrecisionSGD, SwalpTorchSGD
from tf_lowprec.formats import BlockFloatingPoint, FixedPoint
from tf_lowprec.ops import rounding
from tf_lowprec.optimizers import LowPrecision
from tf_lowprec.optimizers import low_precision as lp

BFP8 = BlockFloatingPoint(8, axis=-1)
SHAPES = [(5, 4), (4,), (3, 3, 2, 3)]
STREAMS = {
    "gradient": lp.GRADIENT_STREAM,
    "accumulator": lp.ACCUMULATOR_STREAM,
    "weight": lp.WEIGHT_STREAM,
    "momentum": lp.MOMENTUM_STREAM,
}


def _problem(seed=0, steps=5):
    rng = np.random.default_rng(seed)
    init = [rng.normal(0, 0.5, s).astype(np.float32) for s in SHAPES]
    grads = [[rng.normal(0, 1, s).astype(np.float32) for s in SHAPES] for _ in range(steps)]
    return init, grads


def _bfp_oracle(fmt, mode, seed):
    """`q(name, i, x)` for the numpy oracles, with LowPrecision's draws."""

    def q(step):
        def quantize(name, i, x):
            u = None
            if mode == "stochastic":
                s = lp.rounding_seed(seed, step, i, STREAMS[name])
                u = rounding.uniform(x.shape, s).numpy()
            return quant_numpy.block_floating_point(
                x, fmt.word_length, fmt.axis, fmt.small_block_rank, mode, u
            )

        return quantize

    return q


def _run(optimizer, init, grads, graph=False):
    variables = [keras.Variable(w) for w in init]

    def step(gs):
        optimizer.apply(gs, variables)

    if graph:
        step = tf.function(step)
    for gs in grads:
        step([tf.constant(g) for g in gs])
    return variables


@pytest.mark.parametrize(
    "graph, mode, separate",
    [
        (False, "stochastic", False),
        (False, "nearest", True),
        (True, "stochastic", True),
        (True, "nearest", False),
    ],
    ids=["eager-stochastic-acc8", "eager-nearest-acc_fp32", "graph-stochastic-acc_fp32",
         "graph-nearest-acc8"],
)
def test_sgd_momentum_matches_numpy_oracle(graph, mode, separate):
    init, grads = _problem()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)
    q = (BFP8, mode)
    opt = LowPrecision(
        keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=0.01),
        weight_quantizer=q,
        gradient_quantizer=q,
        momentum_quantizer=q,
        accumulator_quantizer=None if separate else q,
        seed=11,
    )
    variables = _run(opt, init, grads, graph)
    assert opt.separate_accumulator == separate
    oracle = KerasLowPrecisionSGD(init, 0.9, weight_decay=0.01, separate_accumulator=separate)
    quantizer = _bfp_oracle(BFP8, mode, 11)
    for n, gs in enumerate(grads):

        def q_step(name, i, x, n=n):
            if name == "accumulator" and separate:
                return x  # full-precision accumulator
            return quantizer(n)(name, i, x)

        want = oracle.step(gs, float(schedule(n)), q_step)
    for var, w in zip(variables, want):
        np.testing.assert_array_equal(var.numpy(), w)
    if separate:
        for acc, a in zip(opt.accumulators, oracle.acc):
            np.testing.assert_array_equal(acc.numpy(), a)
        # the float accumulator is off the grid, the weights on it
        assert any(not np.array_equal(a.numpy(), v.numpy()) for a, v in zip(opt.accumulators, variables))
    momenta = opt.inner_optimizer.momentums
    for m, v in zip(momenta, oracle.v):
        np.testing.assert_array_equal(m.numpy(), v)


def test_matches_swalp_torch_step_for_power_of_two_learning_rate():
    """Keras's velocity v = -lr * buf: for lr = 2^-k and nearest rounding,
    Q(v) = -lr * Q(buf) exactly, so LowPrecision(SGD) is SWALP's step."""
    init, grads = _problem(1, steps=6)
    q = (BFP8, "nearest")
    opt = LowPrecision(
        keras.optimizers.SGD(2.0**-4, momentum=0.9),
        weight_quantizer=q, gradient_quantizer=q, momentum_quantizer=q,
        accumulator_quantizer=q, seed=0,
    )  # fmt: skip
    variables = _run(opt, init, grads)
    torch = SwalpTorchSGD(init, 0.9)
    quantizer = _bfp_oracle(BFP8, "nearest", 0)
    for n, gs in enumerate(grads):
        want = torch.step(gs, 2.0**-4, quantizer(n))
    for var, w in zip(variables, want):
        np.testing.assert_array_equal(var.numpy(), w)
    for m, buf in zip(opt.inner_optimizer.momentums, torch.buf):
        np.testing.assert_array_equal(m.numpy(), -(2.0**-4) * buf)


def test_differs_from_swalp_torch_step_only_at_rounding_level_for_other_rates():
    init, grads = _problem(2, steps=6)
    q = (BFP8, "nearest")
    opt = LowPrecision(
        keras.optimizers.SGD(0.05, momentum=0.9),
        weight_quantizer=q, gradient_quantizer=q, momentum_quantizer=q,
        accumulator_quantizer=q, seed=0,
    )  # fmt: skip
    variables = _run(opt, init, grads)
    torch = SwalpTorchSGD(init, 0.9)
    for n, gs in enumerate(grads):
        want = torch.step(gs, 0.05, _bfp_oracle(BFP8, "nearest", 0)(n))
    for var, w in zip(variables, want):
        ulp = 2.0 ** (np.floor(np.log2(np.max(np.abs(w)))) - 6)
        assert np.max(np.abs(var.numpy() - w)) <= 4 * ulp


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda: keras.optimizers.Adam(
            keras.optimizers.schedules.ExponentialDecay(0.01, 2, 0.5), clipnorm=0.5
        ),
        lambda: keras.optimizers.RMSprop(0.01, use_ema=True, ema_momentum=0.9),
    ],
    ids=["sgd_nesterov_wd", "adam_schedule_clip", "rmsprop_ema"],
)
def test_without_quantizers_is_bit_identical_to_the_inner_optimizer(make):
    init, grads = _problem(3)
    wrapped = LowPrecision(make())
    got = _run(wrapped, init, grads)
    want = _run(make(), init, grads)
    assert not wrapped.quantizes and not wrapped.separate_accumulator
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(wrapped.iterations) == len(grads)
    # no extra state beyond the inner optimizer's and the wrapper's 2 counters
    assert len(wrapped.variables) == len(wrapped.inner_optimizer.variables) + 2


def test_adam_moments_are_both_quantized_and_ema_is_not():
    init, grads = _problem(4)
    opt = LowPrecision(
        keras.optimizers.Adam(0.01, use_ema=True),
        momentum_quantizer=(BlockFloatingPoint(4, axis=None), "nearest"),
    )
    _run(opt, init[:1], [g[:1] for g in grads])
    slots = opt._refs.state_slots[0]
    assert sorted(s.name.rsplit("_", 1)[-1] for s in slots) == ["momentum", "velocity"]

    def on_grid(x):
        m = np.max(np.abs(x))
        ulp = 2.0 ** (np.floor(np.log2(m)) - 2)
        return np.array_equal(x / ulp, np.round(x / ulp))

    assert all(on_grid(s.numpy()) for s in slots)
    average = opt.inner_optimizer._model_variables_moving_average[0]
    assert not on_grid(average.numpy())


def test_weights_gradients_and_momentum_on_the_grid_after_fit():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)]
    )
    fx = FixedPoint(8, 5)
    opt = LowPrecision(
        keras.optimizers.SGD(0.1, momentum=0.9),
        weight_quantizer=fx, momentum_quantizer=fx, accumulator_quantizer=fx, seed=1,
    )  # fmt: skip
    model.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
    y = np.arange(32) % 3
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    for v in model.trainable_variables + opt.inner_optimizer.momentums:
        k = v.numpy() * 32
        np.testing.assert_array_equal(k, np.round(k))
    assert all(np.any(v.numpy() != 0) for v in opt.inner_optimizer.momentums)


def test_sparse_gradient_is_quantized_like_the_dense_one():
    table = np.random.default_rng(5).normal(size=(6, 4)).astype(np.float32)
    values = tf.constant(np.random.default_rng(6).normal(size=(4, 4)).astype(np.float32))
    indices = tf.constant([1, 3, 1, 5])  # duplicate row 1
    sparse = tf.IndexedSlices(values, indices, tf.constant([6, 4]))
    dense = tf.convert_to_tensor(sparse)
    fmt = (BlockFloatingPoint(5, axis=-1), "nearest")
    got, want = [], []
    for grad, out in ((sparse, got), (dense, want)):
        var = keras.Variable(table)
        opt = LowPrecision(keras.optimizers.SGD(0.5), gradient_quantizer=fmt)
        opt.apply([grad], [var])
        out.append(var.numpy())
    np.testing.assert_array_equal(got[0], want[0])


def test_inside_loss_scale_optimizer_and_under_xla():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    opt = keras.optimizers.LossScaleOptimizer(
        LowPrecision(keras.optimizers.SGD(0.1, momentum=0.9), weight_quantizer=BFP8, seed=2)
    )
    model.compile(opt, "mse", jit_compile=True)
    x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
    model.fit(x, np.zeros((32, 3), "float32"), batch_size=8, epochs=1, verbose=0)
    kernel = model.layers[0].kernel.numpy()
    ulp = 2.0 ** (np.floor(np.log2(np.max(np.abs(kernel), axis=0))) - 6)
    np.testing.assert_array_equal(kernel / ulp, np.round(kernel / ulp))
    assert int(opt.iterations) == 4


def _fit_model(optimizer, epochs, initial_epoch=0, model=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 6)).astype("float32")
    y = (np.arange(48) % 3).astype("int32")
    if model is None:
        keras.utils.set_random_seed(3)
        model = keras.Sequential(
            [keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)]
        )
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(12)
    model.fit(data, epochs=epochs, initial_epoch=initial_epoch, shuffle=False, verbose=0)
    return model


@pytest.mark.parametrize("separate", [False, True])
def test_keras_file_resume_is_bit_identical(tmp_path, separate):
    def make():
        q = (BFP8, "stochastic")
        return LowPrecision(
            keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=1e-3),
            weight_quantizer=q, gradient_quantizer=q, momentum_quantizer=q,
            accumulator_quantizer=None if separate else q, seed=5,
        )  # fmt: skip

    straight = _fit_model(make(), epochs=3)
    first = _fit_model(make(), epochs=1)
    path = str(tmp_path / "lp.keras")
    first.save(path)
    loaded = keras.models.load_model(path)
    opt = loaded.optimizer
    assert isinstance(opt, LowPrecision) and opt.separate_accumulator == separate
    assert opt.weight_quantizer == (BFP8, "stochastic") and opt.seed == 5
    resumed = _fit_model(None, epochs=3, initial_epoch=1, model=loaded)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(straight.optimizer.variables, resumed.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_config_round_trip():
    opt = LowPrecision(
        keras.optimizers.Adam(0.003),
        weight_quantizer=(BFP8, "nearest"),
        gradient_quantizer=FixedPoint(8, 6),
        seed=9,
        name="lp_adam",
    )
    config = keras.optimizers.serialize(opt)
    again = keras.optimizers.deserialize(config)
    assert isinstance(again, LowPrecision) and again.name == "lp_adam"
    assert again.weight_quantizer == (BFP8, "nearest")
    assert again.gradient_quantizer == (FixedPoint(8, 6), "stochastic")
    assert again.momentum_quantizer is None and again.seed == 9
    assert isinstance(again.inner_optimizer, keras.optimizers.Adam)
    assert float(again.inner_optimizer.learning_rate) == pytest.approx(0.003)
    assert again.separate_accumulator  # weights 8-bit, accumulator float


def test_learning_rate_and_iterations_are_the_inner_ones():
    opt = LowPrecision(keras.optimizers.SGD(0.1), weight_quantizer=BFP8)
    opt.learning_rate = 0.25
    assert float(opt.inner_optimizer.learning_rate) == 0.25
    var = keras.Variable(np.ones((3, 2), np.float32))
    opt.apply([tf.ones((3, 2))], [var])
    opt.apply([tf.ones((3, 2))])
    assert int(opt.iterations) == 2 == int(opt.inner_optimizer.iterations)


def test_weight_decay_exclusion_reaches_the_accumulators():
    kernel = keras.Variable(np.ones((2, 2), np.float32), name="kernel")
    bias = keras.Variable(np.ones((2,), np.float32), name="bias")
    opt = LowPrecision(keras.optimizers.SGD(0.5, weight_decay=0.5), weight_quantizer=BFP8)
    opt.exclude_from_weight_decay(var_list=[bias])
    opt.apply([tf.zeros((2, 2)), tf.zeros((2,))], [kernel, bias])
    np.testing.assert_array_equal(opt.accumulators[0].numpy(), 0.75)
    np.testing.assert_array_equal(opt.accumulators[1].numpy(), 1.0)
    with pytest.raises(ValueError, match="before the optimizer is built"):
        opt.exclude_from_weight_decay(var_names=["bias"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weight_quantizer": "bfp8"}, "weight_quantizer"),
        ({"gradient_quantizer": (BFP8, "up")}, "rounding"),
        ({"momentum_quantizer": (BFP8,)}, "momentum_quantizer"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"clipnorm": 1.0}, "clipnorm"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LowPrecision(keras.optimizers.SGD(), **kwargs)


def test_wrappers_cannot_be_wrapped():
    inner = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD())
    with pytest.raises(ValueError, match="LossScaleOptimizer is a wrapper"):
        LowPrecision(inner, weight_quantizer=BFP8)
    with pytest.raises(ValueError, match="optimizer"):
        LowPrecision("sgd")


def test_built_inner_optimizer_rejected_with_separate_accumulator():
    inner = keras.optimizers.SGD()
    var = keras.Variable(np.ones(3, np.float32))
    inner.build([var])
    with pytest.raises(ValueError, match="must not be built"):
        LowPrecision(inner, weight_quantizer=BFP8).build([var])


def test_reusing_one_wrapper_for_a_second_model_is_a_clear_error():
    """Regression: a LowPrecision built for one model, applied to another's
    variables, raised a bare KeyError."""
    opt = LowPrecision(keras.optimizers.SGD(0.1), weight_quantizer=BFP8, seed=1)
    first = keras.Variable(np.ones((2, 2), np.float32))
    opt.apply([tf.ones((2, 2))], [first])
    second = keras.Variable(np.ones((2, 2), np.float32), name="other_model_kernel")
    with pytest.raises(ValueError, match=r"(?s)built for other variables.*other_model_kernel"):
        opt.apply([tf.ones((2, 2))], [second])


def test_quantizer_objects_and_bare_formats_are_the_same_update():
    """`Quantizer(fmt, "stochastic")` is what a bare format means here; a
    quantizer's own seed replaces the optimizer's."""
    from tf_lowprec.quantizers import Quantizer

    init, grads = _problem(steps=2)
    bare = LowPrecision(keras.optimizers.SGD(0.1), weight_quantizer=BFP8,
                        gradient_quantizer=BFP8, seed=7)
    objects = LowPrecision(keras.optimizers.SGD(0.1), weight_quantizer=Quantizer(BFP8, "stochastic"),
                           gradient_quantizer=Quantizer(BFP8, "stochastic"), seed=7)
    own_seed = LowPrecision(keras.optimizers.SGD(0.1),
                            weight_quantizer=Quantizer(BFP8, "stochastic", seed=7),
                            gradient_quantizer=Quantizer(BFP8, "stochastic", seed=7), seed=8)
    other = LowPrecision(keras.optimizers.SGD(0.1), weight_quantizer=BFP8,
                         gradient_quantizer=BFP8, seed=8)
    results = [[v.numpy() for v in _run(o, init, grads)] for o in (bare, objects, own_seed, other)]
    for a, b, c in zip(*results[:3]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert any(not np.array_equal(a, d) for a, d in zip(results[0], results[3]))
    with pytest.raises(ValueError, match="weight_quantizer"):
        LowPrecision(keras.optimizers.SGD(), weight_quantizer=3)
