"""ElasticNetProximal, the shared base of ProximalSGD and ProximalAdagrad: argument checks."""

import pytest

from tf_lowprec.optimizers import ProximalAdagrad, ProximalSGD


@pytest.mark.parametrize(
    "optimizer_class, kwargs, message",
    [
        (ProximalSGD, {"learning_rate": 0.0}, "learning_rate=0.0"),
        (ProximalSGD, {"learning_rate": -1.0}, "learning_rate=-1.0"),
        (ProximalSGD, {"l1_regularization_strength": -0.1}, "l1_regularization_strength=-0.1"),
        (ProximalSGD, {"l2_regularization_strength": -2}, "l2_regularization_strength=-2"),
        (ProximalAdagrad, {"learning_rate": 0.0}, "learning_rate=0.0"),
        (ProximalAdagrad, {"initial_accumulator_value": 0.0}, "initial_accumulator_value=0.0"),
        (ProximalAdagrad, {"initial_accumulator_value": -1}, "initial_accumulator_value=-1"),
        (ProximalAdagrad, {"l1_regularization_strength": -0.1}, "l1_regularization_strength=-0.1"),
        (ProximalAdagrad, {"l2_regularization_strength": -2}, "l2_regularization_strength=-2"),
    ],
)
def test_invalid_arguments_raise(optimizer_class, kwargs, message):
    with pytest.raises(ValueError, match=message):
        optimizer_class(**kwargs)
