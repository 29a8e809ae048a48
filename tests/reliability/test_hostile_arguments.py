"""Hostile arguments to every public constructor: a clear error, or a working object.

Each example takes one public constructor, keeps its other arguments valid,
and gives one argument a hostile value (NaN, +-inf, negative, zero, huge,
a string, None, a bool, a NumPy scalar, a tensor, an array). The property:

* either construction raises `ValueError` or `TypeError` whose message names
  the argument (never a bare comparison `TypeError`, never an `AttributeError`
  or `KeyError` from deep inside);
* or the object works: an optimizer takes one eager gradient step and its
  weights stay finite; a format or quantizer quantizes a small tensor to
  finite values; a layer runs forward and backward to finite values; a
  schedule gives finite positive values; a loss gives a finite value.

Two documented exceptions to "at construction": an axis is checked against
the tensor it meets (a ValueError naming it, at first use), and a size too
big for memory (`units`, `num_classes` of 2^40) fails when allocated, as in
Keras.

Cost: the "works" check runs eagerly on a 2x2 variable (no compiled train
step per object), so every accepted example is exercised; SVRG/HALP need
`VarianceReduced` and its compiled step, so for them only construction is
checked here (their training is tested in tests/optimizers).
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tf_lowprec import formats as F
from tf_lowprec import layers, optimizers, pruning, quantizers, recipes, training

HOSTILE = [
    float("nan"), float("inf"), float("-inf"), -1.0, -1, 0, 0.0, 1e6, 2**40, -(2**40),
    "0.1", "", None, True, False, np.float32("nan"), np.float64(0.5), np.int64(3),
    np.int64(-2), np.float32(1e-3), np.array([1.0, 2.0]),
]


def _tensor_values():
    return [tf.constant(0.1), tf.constant([1, 2])]


def _sgd():
    return keras.optimizers.SGD(0.1)


# name -> (factory(**overrides), kind, attacked arguments). Defaults are valid.
SPECS = {
    "GRDA": (lambda **kw: optimizers.GRDA(**{"learning_rate": 0.1, **kw}), "optimizer",
             ["learning_rate", "c", "mu", "clipnorm"]),
    "ProximalSGD": (lambda **kw: optimizers.ProximalSGD(**kw), "optimizer",
                    ["learning_rate", "l1_regularization_strength", "l2_regularization_strength",
                     "weight_decay"]),
    "ProximalAdagrad": (lambda **kw: optimizers.ProximalAdagrad(**kw), "optimizer",
                        ["learning_rate", "initial_accumulator_value",
                         "l1_regularization_strength", "l2_regularization_strength"]),
    "SVRG": (lambda **kw: optimizers.SVRG(**kw), "construct", ["learning_rate", "T", "weight_decay"]),
    "HALP": (lambda **kw: optimizers.HALP(**kw), "construct",
             ["learning_rate", "T", "mu", "bits", "seed"]),
    "LowPrecision": (lambda **kw: optimizers.LowPrecision(_sgd(), **kw), "optimizer",
                     ["seed", "weight_quantizer", "gradient_quantizer"]),
    "StochasticRounding": (lambda **kw: optimizers.StochasticRounding(_sgd(), **kw), "optimizer",
                           ["seed"]),
    "SGD8bit": (lambda **kw: optimizers.SGD8bit(**kw), "optimizer",
                ["learning_rate", "momentum", "block_size", "min_8bit_size"]),
    "Adam8bit": (lambda **kw: optimizers.Adam8bit(**kw), "optimizer",
                 ["learning_rate", "beta_1", "beta_2", "epsilon", "block_size"]),
    "low_precision_sgd": (lambda **kw: recipes.low_precision_sgd(**kw), "optimizer",
                          ["learning_rate", "momentum", "word_length", "seed"]),
    "FixedPoint": (lambda **kw: F.FixedPoint(**{"word_length": 8, "fractional_length": 4, **kw}),
                   "format", ["word_length", "fractional_length"]),
    "BlockFloatingPoint": (lambda **kw: F.BlockFloatingPoint(**{"word_length": 8, **kw}), "format",
                           ["word_length", "axis", "small_block_rank"]),
    "FloatingPoint": (lambda **kw: F.FloatingPoint(**{"exponent_bits": 5, "mantissa_bits": 2, **kw}),
                      "format", ["exponent_bits", "mantissa_bits"]),
    "IntegerAffine": (lambda **kw: F.IntegerAffine(**{"bits": 8, **kw}), "format",
                      ["bits", "symmetric", "per_channel_axis"]),
    "Quantizer": (lambda **kw: quantizers.Quantizer(**{"format": F.FixedPoint(8, 4), **kw}),
                  "quantizer", ["format", "rounding", "seed"]),
    "Quantize": (lambda **kw: layers.Quantize(**{"forward_quantizer": F.FixedPoint(8, 4), **kw}),
                 "layer", ["forward_quantizer", "rounding", "seed"]),
    "QuantizedDense": (lambda **kw: layers.QuantizedDense(**{"units": 2, **kw}), "layer",
                       ["units", "weight_quantizer", "rounding", "seed"]),
    "MultiStep": (lambda **kw: training.MultiStep(**{"initial_learning_rate": 0.1,
                                                     "milestones": [2, 4], **kw}),
                  "schedule", ["initial_learning_rate", "milestones", "gamma", "steps_per_epoch"]),
    "ConstantAndDrop": (lambda **kw: training.ConstantAndDrop(**{"initial_learning_rate": 0.1,
                                                                 "drop_at": 3, **kw}),
                        "schedule", ["initial_learning_rate", "drop_at", "drop_factor", "repeat"]),
    "PaperPiecewise": (lambda **kw: training.PaperPiecewise(**{"initial_learning_rate": 0.1,
                                                               "total": 10, **kw}),
                       "schedule", ["initial_learning_rate", "total", "steps_per_epoch",
                                    "final_learning_rate"]),
    "LinearBatchSize": (lambda **kw: training.LinearBatchSize(**{"initial": 4, **kw}),
                        "batch_schedule", ["initial", "increment", "maximum"]),
    "ConstantSparsity": (lambda **kw: pruning.ConstantSparsity(**{"target_sparsity": 0.5, **kw}),
                         "sparsity_schedule", ["target_sparsity", "begin_step", "end_step",
                                               "frequency"]),
    "PolynomialDecay": (lambda **kw: pruning.PolynomialDecay(**{
        "initial_sparsity": 0.0, "final_sparsity": 0.5, "begin_step": 0, "end_step": 10, **kw}),
        "sparsity_schedule", ["initial_sparsity", "final_sparsity", "begin_step", "end_step",
                              "power", "frequency"]),
    "SigmoidFocalCrossentropy": (lambda **kw: training.SigmoidFocalCrossentropy(**kw), "loss",
                                 ["alpha", "gamma", "from_logits"]),
    "WeightedBinaryCrossentropy": (lambda **kw: training.WeightedBinaryCrossentropy(**kw), "loss",
                                   ["pos_weight"]),
    "WeightedKappaLoss": (lambda **kw: training.WeightedKappaLoss(**{"num_classes": 3, **kw}),
                          "loss", ["num_classes", "weightage", "epsilon"]),
}
# Checked against the tensor at first use (a ValueError naming the argument).
USE_TIME_ARGS = {"axis", "per_channel_axis"}
# Legal sizes that may not fit in memory.
SIZE_ARGS = {"units", "num_classes"}
CASES = [(name, arg) for name, (_, _, args) in SPECS.items() for arg in args]


def _finite(values):
    return all(np.isfinite(np.asarray(v, np.float64)).all() for v in values)


def _exercise(kind, obj):
    """Runs the accepted object once; asserts finite results."""
    if kind == "construct":
        return
    if kind == "optimizer":
        var = keras.Variable(np.array([[0.5, -0.25], [1.0, 2.0]], np.float32))
        obj.apply([tf.constant([[0.1, -0.2], [0.3, 0.05]])], [var])
        assert _finite([var.numpy()]), var.numpy()
    elif kind in ("format", "quantizer"):
        from tf_lowprec.ops import quantize

        x = tf.constant([[0.3, -1.7], [4.0, 0.0]])
        out = obj(x) if kind == "quantizer" else quantize(x, obj)
        assert _finite([out.numpy()])
    elif kind == "layer":
        x = tf.constant([[0.3, -1.7], [4.0, 0.5]])
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = obj(x, training=True)
        grads = tape.gradient(y, [x, *obj.trainable_variables])
        assert _finite([y.numpy(), *[g.numpy() for g in grads if g is not None]])
    elif kind == "schedule":
        values = [float(obj(step)) for step in (0, 1, 7, 1000)]
        assert all(math.isfinite(v) and v >= 0 for v in values), values  # may underflow
    elif kind == "batch_schedule":
        assert all(int(obj(epoch)) >= 1 for epoch in (0, 1, 5))
    elif kind == "sparsity_schedule":
        for step in (0, 1, 10, 1000):
            prune, sparsity = obj(step)
            assert isinstance(bool(prune), bool) and 0.0 <= sparsity < 1.0
    elif kind == "loss":
        y_true = tf.constant([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        if isinstance(obj, training.WeightedKappaLoss):
            y_true = tf.constant([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        y_pred = tf.constant([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
        assert _finite([obj(y_true, y_pred).numpy()])


def _check(name, arg, value):
    factory, kind, _ = SPECS[name]
    try:
        obj = factory(**{arg: value})
    except (ValueError, TypeError) as error:
        message = str(error)
        assert arg in message, f"{name}({arg}={value!r}): {type(error).__name__}: {message}"
        return
    try:
        _exercise(kind, obj)
    except ValueError as error:
        if arg not in USE_TIME_ARGS or arg not in str(error):
            raise
    except tf.errors.ResourceExhaustedError:
        if arg not in SIZE_ARGS:
            raise


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(CASES), value=st.sampled_from(HOSTILE))
def test_hostile_value_is_refused_by_name_or_works(case, value):
    _check(*case, value)


@pytest.mark.parametrize("name, arg", CASES, ids=[f"{n}.{a}" for n, a in CASES])
def test_tensor_values_are_refused_by_name_or_work(name, arg):
    for value in _tensor_values():
        _check(name, arg, value)
