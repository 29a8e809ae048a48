"""Issue 16's silent-nonsense constructors: now refused at construction.

Each case was accepted before (and trained to NaN or to an unregularised
model) or failed with a bare comparison `TypeError`.
"""

import keras
import numpy as np
import pytest

from tf_lowprec.optimizers import (
    GRDA,
    HALP,
    SVRG,
    LowPrecision,
    ProximalAdagrad,
    ProximalSGD,
)
from tf_lowprec.recipes import low_precision_sgd, swalp

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("optimizer_class, name, value", [
    (GRDA, "c", INF),
    (GRDA, "mu", INF),
    (GRDA, "c", NAN),
    (GRDA, "c", "0.1"),
    (GRDA, "mu", None),
    (ProximalSGD, "l1_regularization_strength", INF),
    (ProximalSGD, "l2_regularization_strength", INF),
    (ProximalAdagrad, "l1_regularization_strength", INF),
    (ProximalAdagrad, "l2_regularization_strength", NAN),
    (ProximalAdagrad, "initial_accumulator_value", NAN),
    (ProximalAdagrad, "initial_accumulator_value", "1"),
    (SVRG, "weight_decay", INF),
    (ProximalSGD, "weight_decay", INF),
    (GRDA, "clipnorm", NAN),
    (HALP, "seed", 2**32 + 5),  # was reduced modulo 2^32
    (HALP, "mu", "20"),
])
def test_optimizer_hyperparameters_are_refused(optimizer_class, name, value):
    with pytest.raises(ValueError) as info:
        optimizer_class(**{name: value})
    assert f"{name}={value!r}" in str(info.value)


@pytest.mark.parametrize("value", [NAN, INF, -INF, 0.0, -0.05, "0.05", None])
@pytest.mark.parametrize("factory", ["low_precision_sgd", "swalp"])
def test_swalp_learning_rates_are_refused(factory, value):
    if factory == "low_precision_sgd":
        def build():
            return low_precision_sgd(learning_rate=value)
    else:
        def build():
            model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
            return swalp(model, steps_per_epoch=2, swa_start=1, learning_rate=value)
    with pytest.raises(ValueError) as info:
        build()
    assert f"learning_rate={value!r}" in str(info.value)


def test_seeds_accept_numpy_integers_everywhere():
    optimizer = LowPrecision(keras.optimizers.SGD(0.1), seed=np.int64(7))
    assert optimizer.seed == 7 and type(optimizer.seed) is int
    assert HALP(seed=np.int32(7)).seed == 7
    for build in (lambda: LowPrecision(keras.optimizers.SGD(0.1), seed=2**31),
                  lambda: HALP(seed=-1)):
        with pytest.raises(ValueError, match="seed="):
            build()


def test_string_hyperparameter_is_not_a_bare_comparison_error():
    with pytest.raises(TypeError, match=r"Argument `mu`.*mu='0.7'"):
        GRDA(mu="0.7")
