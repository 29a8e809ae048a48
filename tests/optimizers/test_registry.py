"""optimizers.get / available / register: the named baseline set."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_lowprec import optimizers
from tf_lowprec.optimizers import registry

BASELINE = [
    "sgd", "momentum", "nesterov", "adam", "rmsprop", "rmsprop_centered",
    "adagrad", "adadelta", "ftrl", "proximal_sgd", "proximal_adagrad", "grda",
]  # fmt: skip


def test_baseline_set_is_available():
    assert set(BASELINE) <= set(optimizers.available())


@pytest.mark.parametrize("name", BASELINE)
def test_each_name_builds_and_takes_a_step(name):
    opt = optimizers.get(name, learning_rate=0.1)
    assert isinstance(opt, keras.optimizers.Optimizer)
    var = keras.Variable([1.0, -2.0])
    opt.apply([tf.constant([0.5, -0.5])], [var])
    assert int(opt.iterations) == 1
    assert np.all(np.isfinite(var.numpy()))
    assert not np.array_equal(var.numpy(), [1.0, -2.0])


@pytest.mark.parametrize(
    "name, cls, attrs",
    [
        ("sgd", keras.optimizers.SGD, {"momentum": 0.0, "nesterov": False}),
        ("momentum", keras.optimizers.SGD, {"momentum": 0.9, "nesterov": False}),
        ("nesterov", keras.optimizers.SGD, {"momentum": 0.9, "nesterov": True}),
        ("rmsprop_centered", keras.optimizers.RMSprop, {"centered": True}),
        ("ftrl", keras.optimizers.Ftrl, {}),
        ("grda", optimizers.GRDA, {}),
    ],
)
def test_names_map_to_keras_builtins_with_fixed_defaults(name, cls, attrs):
    opt = optimizers.get(name)
    assert type(opt) is cls
    for key, value in attrs.items():
        assert getattr(opt, key) == value


def test_overrides_win_and_names_are_normalized():
    opt = optimizers.get(" Proximal-SGD ", learning_rate=0.3, l1_regularization_strength=0.01)
    assert isinstance(opt, optimizers.ProximalSGD)
    assert opt.l1_regularization_strength == 0.01
    assert optimizers.get("momentum", momentum=0.5).momentum == 0.5


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="Unknown optimizer 'adamw2'.*adagrad, adam"):
        optimizers.get("adamw2")


def test_bad_override_key_is_named():
    with pytest.raises(ValueError, match=r"'adam' does not take argument\(s\) \['beta1'\]"):
        optimizers.get("adam", beta1=0.9)


def test_instance_and_config_dict_pass_through():
    opt = optimizers.ProximalAdagrad(0.2, l2_regularization_strength=0.1)
    assert optimizers.get(opt) is opt
    with pytest.raises(ValueError, match="instance"):
        optimizers.get(opt, learning_rate=0.1)
    rebuilt = optimizers.get(keras.optimizers.serialize(opt), learning_rate=0.5)
    assert isinstance(rebuilt, optimizers.ProximalAdagrad)
    assert rebuilt.l2_regularization_strength == 0.1
    assert float(rebuilt.learning_rate) == 0.5


def test_register_adds_a_name_and_refuses_silent_overwrite(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    optimizers.register("heavy_ball", keras.optimizers.SGD, {"momentum": 0.99})
    assert optimizers.get("heavy_ball").momentum == 0.99
    assert "heavy_ball" in optimizers.available()
    with pytest.raises(ValueError, match="already registered"):
        optimizers.register("heavy_ball", keras.optimizers.Adam)
    optimizers.register("heavy_ball", keras.optimizers.Adam, overwrite=True)
    assert isinstance(optimizers.get("heavy_ball"), keras.optimizers.Adam)


def test_non_string_identifier_raises():
    with pytest.raises(ValueError, match="identifier=3"):
        optimizers.get(3)


@pytest.mark.parametrize("name", ["grda", "proximal_sgd", "adam8bit", "sgd"])
def test_get_accepts_keras_base_arguments_forwarded_through_kwargs(name):
    # tf_lowprec optimizers take Keras's base arguments as `**kwargs`; the
    # registry's keyword check must still see them (and still catch typos).
    assert registry.get(name, clipnorm=1.0).clipnorm == 1.0
    with pytest.raises(ValueError, match="clipnorn"):
        registry.get(name, clipnorn=1.0)
