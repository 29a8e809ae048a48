"""HALP: validation, integer storage, quantizer vectors, numpy oracle, SVRG equivalence."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.reference import svrg_problems as problems
from tests.reference.halp_numpy import halp as halp_oracle
from tf_lowprec import optimizers
from tf_lowprec.ops.scaled_integer import scaled_integer_codes
from tf_lowprec.optimizers import HALP, SVRG
from tf_lowprec.optimizers.halp import offset_dtype, scale_for
from tf_lowprec.training import VarianceReduced


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bits": 1}, "bits"),
        ({"bits": 0}, "bits"),
        ({"bits": 33}, "bits"),
        ({"bits": 8.0}, "bits"),
        ({"T": 0}, "T"),
        ({"T": "-1epoch"}, "T"),
        ({"mu": 0.0}, "mu"),
        ({"mu": -1.0}, "mu"),
        ({"mu": float("nan")}, "mu"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1e-3}, "learning_rate"),
        ({"rounding": "floor"}, "rounding"),
        ({"decay_on": "z"}, "decay_on"),
        ({"seed": 1.5}, "seed"),
        ({"use_ema": True}, "use_ema"),
        ({"clipvalue": 1.0}, "clipvalue"),
    ],
)
def test_invalid_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HALP(**{"learning_rate": 0.1, "T": 10, **kwargs})


def test_offset_storage_is_integer_of_the_right_width():
    assert [offset_dtype(b) for b in (2, 8, 9, 16, 17, 32)] == [
        "int8", "int8", "int16", "int16", "int32", "int32"]
    variables = [keras.Variable(np.zeros((3, 4), "float32")), keras.Variable(np.zeros(4, "float32"))]
    for bits, dtype in [(4, "int8"), (8, "int8"), (12, "int16"), (24, "int32")]:
        opt = HALP(0.1, T=5, bits=bits)
        opt.build(variables)
        assert [opt.offset(v).dtype for v in variables] == [dtype, dtype]
        assert opt.offset(variables[0]).shape == (3, 4)
        assert opt.scale(variables[1]).shape == ()


def test_quantizer_reference_vectors():
    # algorithms.md §2.2: delta = 0.01, b = 4, round to nearest; the clamp
    # is two's complement (+7 / -8).
    x = tf.constant([0.013, -0.013, 0.5, -0.5, 0.0049], tf.float64)
    codes = scaled_integer_codes(x, tf.constant(0.01, tf.float64), 4, "nearest")
    np.testing.assert_array_equal(codes.numpy(), [1, -1, 7, -8, 0])
    assert scale_for(5.0, 20.0, 8) == pytest.approx(0.0019685, abs=1e-7)


def test_quantizer_zero_scale_gives_zero_codes_not_nan():
    x = tf.constant([0.3, -2.0, 0.0])
    for rounding in ("nearest", "stochastic"):
        codes = scaled_integer_codes(x, tf.constant(0.0), 8, rounding, tf.constant([1, 2]))
        np.testing.assert_array_equal(codes.numpy(), [0, 0, 0])


def test_stochastic_rounding_is_unbiased_and_on_neighbouring_codes():
    v = np.linspace(-3.0, 3.0, 13)
    x = tf.constant(np.repeat(v[None], 20000, axis=0) * 0.01, tf.float32)
    codes = scaled_integer_codes(x, tf.constant(0.01), 8, "stochastic", tf.constant([7, 11])).numpy()
    assert np.all((codes == np.floor(v * 1.0 + 1e-6)) | (codes == np.ceil(v - 1e-6)) | (codes == np.round(v)))
    np.testing.assert_allclose(codes.mean(axis=0), v, atol=0.02)


def test_config_round_trip_and_registry():
    opt = HALP(0.05, T="0.5epoch", mu=4.0, bits=6, rounding="nearest", seed=3,
               weight_decay=1e-4, decay_on="offset")
    clone = HALP.from_config(opt.get_config())
    assert clone.get_config() == opt.get_config()
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(restored, HALP) and restored.bits == 6 and restored.seed == 3
    halp = optimizers.get("halp", learning_rate=0.1, T=3, bits=4)
    assert isinstance(halp, HALP) and isinstance(halp, SVRG)


def test_unseeded_optimizers_store_their_drawn_seed():
    keras.utils.set_random_seed(5)
    a = HALP(0.1, T=3)
    keras.utils.set_random_seed(5)
    b = HALP(0.1, T=3)
    assert a.seed == b.seed == a.get_config()["seed"]


def test_plain_model_fails_at_once_with_what_to_add():
    x, y = problems.least_squares()
    model = problems.dense_model(4, 1)
    model.compile(optimizer=HALP(0.1, T=3), loss="mse")
    with pytest.raises(ValueError, match=r"(?s)HALP needs .*VarianceReduced\(model\)"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)


def _fit(x, y, units, opt, epochs, loss="mse", batch_size=8):
    model = VarianceReduced(problems.dense_model(x.shape[1], units))
    init = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=opt, loss=loss)
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    return model, init


@pytest.mark.parametrize(
    "bits, mu, weight_decay, decay_on",
    [(8, 4.0, None, "weights"), (4, 8.0, None, "weights"), (3, 4.0, 2.0**-5, "weights"),
     (8, 4.0, 2.0**-5, "offset")],
)
def test_matches_numpy_oracle_step_by_step(float64, bits, mu, weight_decay, decay_on):
    # Two tensors (kernel, bias) with their own scale; a short last batch;
    # T = 3 steps, not aligned with the 4-step epochs; a learning-rate drop.
    x, y = problems.least_squares(n=30, d=4, units=2)
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([6], [0.125, 0.0625])
    opt = HALP(schedule, T=3, mu=mu, bits=bits, rounding="nearest",
               weight_decay=weight_decay, decay_on=decay_on)
    model, init = _fit(x, y, 2, opt, epochs=3)
    trajectory, state = halp_oracle(
        init, problems.batches(x, y, 8), problems.mse_grad,
        lr=lambda t: 0.125 if t <= 6 else 0.0625, T=3, steps=12, mu=mu, bits=bits,
        weight_decay=weight_decay or 0.0, decay_on=decay_on,
    )
    for got, want in zip(model.get_weights(), trajectory[-1]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    variables = model.trainable_variables
    for i, v in enumerate(variables):
        np.testing.assert_array_equal(opt.offset(v).numpy(), state["codes"][i])
        np.testing.assert_allclose(float(opt.scale(v).numpy()), state["delta"][i], rtol=1e-12)
        np.testing.assert_allclose(opt.center(v).numpy(), state["center"][i], rtol=1e-9)
    # The codes really use the low-precision range.
    assert max(np.abs(opt.offset(v).numpy()).max() for v in variables) > 0


def test_matches_numpy_oracle_softmax_regression(float64):
    x, y = problems.softmax_data(n=30, d=4, classes=3)
    opt = HALP(0.5, T="1epoch", mu=1.0, bits=4, rounding="nearest")
    model, init = _fit(x, y, 3, opt, epochs=3,
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    trajectory, _ = halp_oracle(init, problems.batches(x, y, 8), problems.softmax_grad,
                                lr=0.5, T=4, steps=12, mu=1.0, bits=4)
    for got, want in zip(model.get_weights(), trajectory[-1]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
def test_many_bits_equals_svrg(float64, rounding):
    x, y = problems.least_squares(n=30, d=4, units=2)
    halp, _ = _fit(x, y, 2, HALP(0.125, T=3, mu=1.0, bits=32, rounding=rounding,
                                  weight_decay=2.0**-6), epochs=3)
    svrg, _ = _fit(x, y, 2, SVRG(0.125, T=3, weight_decay=2.0**-6), epochs=3)
    for a, b in zip(halp.get_weights(), svrg.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)


def test_stochastic_rounding_keeps_weights_on_the_grid():
    x, y = problems.least_squares(n=30, d=4, units=2)
    opt = HALP(0.1, T=5, mu=2.0, bits=3)
    model, _ = _fit(x.astype("float32"), y.astype("float32"), 2, opt, epochs=2)
    for v in model.trainable_variables:
        codes = opt.offset(v).numpy()
        assert codes.min() >= -4 and codes.max() <= 3
        # w = w~ + delta * k, up to the one rounding an FMA saves.
        scale = opt.scale(v).numpy()
        expected = opt.center(v).numpy().astype("float64") + codes * np.float64(scale)
        np.testing.assert_allclose(v.numpy(), expected, rtol=2**-23, atol=2**-24 * scale)


def test_eight_bits_reaches_the_least_squares_optimum(float64):
    # mu = 1 is below the strong convexity of this problem (the smallest
    # Hessian eigenvalue is 1.40), so ||w~ - w*|| <= ||g~|| / mu: the optimum
    # lies inside the range of the offset around every center.
    x, y = problems.least_squares(n=64, d=4, noise=0.3, seed=3)
    kernel, bias = problems.lstsq_solution(x, y)
    opt = HALP(0.05, T="1epoch", mu=1.0, bits=8)
    model, _ = _fit(x, y, 1, opt, epochs=24, batch_size=4)
    k, b = model.get_weights()
    error = np.abs(np.r_[k.ravel() - kernel.ravel(), b - bias])
    # Bit centering shrinks the grid with the full gradient, so 8-bit codes
    # reach the optimum to within the last grid's range (127 steps of the
    # last delta), which is itself tiny; like SVRG, to ~1e-10 here.
    deltas = [float(opt.scale(v).numpy()) for v in model.trainable_variables]
    assert error.max() <= 127 * max(deltas)
    assert error.max() < 1e-8


def test_zero_full_gradient_freezes_the_tensor_without_nan(float64):
    # Start at the least-squares optimum: the full gradient is zero for
    # every tensor, delta = 0, and HALP must stay put (torchhalp: 0/0 = NaN).
    x, y = problems.least_squares(n=32, d=4)
    kernel, bias = problems.lstsq_solution(x, y)
    model = VarianceReduced(problems.dense_model(4, 1))
    model.set_weights([kernel, bias])
    opt = HALP(0.1, T=4, mu=1.0, bits=8)
    model.compile(optimizer=opt, loss="mse")
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    for v, want in zip(model.trainable_variables, [kernel, bias]):
        assert float(opt.scale(v).numpy()) < 1e-12
        np.testing.assert_allclose(v.numpy(), want, atol=1e-12)


def test_zero_gradient_tensor_in_float32_model_stays_finite():
    # A tensor with no gradient at all (a Dense layer whose output is
    # multiplied by zero) gets delta = 0; everything stays finite.
    inputs = keras.Input((4,))
    dead = keras.layers.Dense(1, name="dead")(inputs)
    out = keras.layers.Dense(1)(inputs) + 0.0 * dead
    model = VarianceReduced(keras.Model(inputs, out))
    opt = HALP(0.05, T=2, mu=2.0, bits=4)
    model.compile(optimizer=opt, loss="mse")
    x, y = problems.least_squares(n=16, d=4)
    before = model.inner.get_layer("dead").kernel.numpy().copy()
    model.fit(x.astype("float32"), y.astype("float32"), batch_size=8, epochs=2, verbose=0)
    dead_kernel = model.inner.get_layer("dead").kernel
    assert float(opt.scale(dead_kernel).numpy()) == 0.0
    np.testing.assert_array_equal(dead_kernel.numpy(), before)
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_offset_quantizer_is_the_same_grid_as_bits_and_rounding():
    from tf_lowprec.formats import ScaledInteger
    from tf_lowprec.quantizers import Quantizer

    q = Quantizer(ScaledInteger(6), "nearest", seed=3)
    a = HALP(0.1, T=3, offset_quantizer=q)
    b = HALP(0.1, T=3, bits=6, rounding="nearest", seed=3)
    assert a.offset_quantizer == b.offset_quantizer == q
    assert (a.bits, a.rounding, a.seed) == (6, "nearest", 3)
    assert HALP.from_config(a.get_config()).offset_quantizer == q
    with pytest.raises(ValueError, match="not both"):
        HALP(0.1, T=3, bits=4, offset_quantizer=q)
    with pytest.raises(ValueError, match="offset_quantizer"):
        HALP(0.1, T=3, offset_quantizer=6)
