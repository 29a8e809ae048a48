"""Stochastic weight averaging: the SWA wrapper, the callback, the BatchNorm recompute."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_lowprec.formats import BlockFloatingPoint
from tf_lowprec.optimizers import LowPrecision
from tf_lowprec.training import (
    SWA,
    PaperPiecewise,
    StochasticWeightAveraging,
    recompute_batchnorm_statistics,
)

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _data(n=48, batch=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (np.arange(n) % 3).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def _model(batch_norm=False, seed=3):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((6,)), keras.layers.Dense(8)]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    layers += [keras.layers.ReLU(), keras.layers.Dense(3)]
    return keras.Sequential(layers)


class _Snapshots(keras.callbacks.Callback):
    """Training weights at every epoch end (placed after the SWA callback)."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([v.numpy().copy() for v in self.model.trainable_variables])


@pytest.mark.parametrize("start, frequency", [(2, 1), (1, 2), (0, 3)])
def test_average_is_the_mean_of_the_per_epoch_iterates(start, frequency):
    model = _model()
    model.compile(SWA(keras.optimizers.SGD(0.1, momentum=0.9)), LOSS)
    swa = StochasticWeightAveraging(start_epoch=start, frequency=frequency)
    snaps = _Snapshots()
    history = model.fit(_data(), epochs=6, callbacks=[swa, snaps], verbose=0)
    chosen = [e for e in range(6) if swa.averages_after(e)]
    assert chosen == [e for e in range(6) if e + 1 >= start and (e + 1 - start) % frequency == 0]
    assert history.history["swa_num_averaged"][-1] == len(chosen)
    for i, var in enumerate(model.trainable_variables):
        mean = np.mean([snaps.weights[e][i] for e in chosen], axis=0, dtype=np.float64)
        np.testing.assert_allclose(var.numpy(), mean, rtol=0, atol=2e-7)
        np.testing.assert_allclose(model.optimizer.averages[i].numpy(), mean, rtol=0, atol=2e-7)


def test_swa_wrapper_trains_exactly_like_its_inner_optimizer():
    def fit(optimizer):
        model = _model()
        model.compile(optimizer, LOSS)
        model.fit(_data(), epochs=2, verbose=0)
        return model

    wrapped = fit(SWA(keras.optimizers.Adam(0.01, weight_decay=0.01)))
    plain = fit(keras.optimizers.Adam(0.01, weight_decay=0.01))
    for a, b in zip(wrapped.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(wrapped.optimizer.iterations) == 8
    assert all(a.dtype == "float32" for a in wrapped.optimizer.averages)


def test_swa_lr_switches_the_rate_at_start_epoch():
    rates = []
    model = _model()
    model.compile(SWA(keras.optimizers.SGD(0.1)), LOSS)
    record = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: rates.append(float(model.optimizer.learning_rate))
    )
    swa = StochasticWeightAveraging(start_epoch=2, swa_lr=0.02)
    model.fit(_data(), epochs=4, callbacks=[swa, record], verbose=0)
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.02, 0.02])


def test_swa_lr_with_a_schedule_is_refused():
    model = _model()
    model.compile(SWA(keras.optimizers.SGD(PaperPiecewise(0.1, total=4))), LOSS)
    swa = StochasticWeightAveraging(start_epoch=2, swa_lr=0.02)
    with pytest.raises(ValueError, match="swa_lr"):
        model.fit(_data(), epochs=1, callbacks=[swa], verbose=0)


def test_callback_needs_the_swa_wrapper_and_batchnorm_data():
    model = _model()
    model.compile(keras.optimizers.SGD(0.1), LOSS)
    with pytest.raises(ValueError, match="tf_lowprec.training.SWA"):
        model.fit(_data(), epochs=1, callbacks=[StochasticWeightAveraging(1)], verbose=0)
    model = _model(batch_norm=True)
    model.compile(SWA(keras.optimizers.SGD(0.1)), LOSS)
    with pytest.raises(ValueError, match="data"):
        model.fit(_data(), epochs=1, callbacks=[StochasticWeightAveraging(1)], verbose=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"start_epoch": -1}, "start_epoch"),
        ({"start_epoch": 1, "frequency": 0}, "frequency"),
        ({"start_epoch": 1, "swa_lr": -0.1}, "swa_lr"),
        ({"start_epoch": 1.5}, "start_epoch"),
        ({"start_epoch": 1, "batchnorm_steps": 0}, "batchnorm_steps"),
    ],
)
def test_bad_callback_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StochasticWeightAveraging(**kwargs)


def test_recompute_batchnorm_is_the_mean_of_batch_statistics():
    model = _model(batch_norm=True)
    model.build((None, 6))
    bn = model.layers[1]
    xs = [np.random.default_rng(i).normal(i, 1 + i, size=(n, 6)).astype("float32")
          for i, n in enumerate([10, 10, 4])]  # fmt: skip
    data = tf.data.Dataset.from_tensor_slices(np.concatenate(xs)).batch(10)
    seen = recompute_batchnorm_statistics(model, data)
    assert seen == 24
    means, variances = [], []
    for x in xs:
        h = x @ model.layers[0].kernel.numpy() + model.layers[0].bias.numpy()
        means.append(h.mean(0) * len(x))
        variances.append(h.var(0) * len(x))
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.sum(means, 0) / 24, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.sum(variances, 0) / 24, rtol=1e-5)
    assert bn.momentum == 0.99  # restored
    assert recompute_batchnorm_statistics(_model(), data) == 0  # no BatchNorm: nothing to do


def test_evaluation_sees_the_average_and_training_is_unaffected():
    """val_* metrics are those of the averaged model (with recomputed BN), and
    the training trajectory is the same with and without validation."""
    train = _data()

    def fit(validation):
        model = _model(batch_norm=True)
        model.compile(SWA(keras.optimizers.SGD(0.1, momentum=0.9)), LOSS)
        swa = StochasticWeightAveraging(start_epoch=1, data=train, swap_at_end=False)
        history = model.fit(
            train, epochs=3, validation_data=_data(seed=1) if validation else None,
            callbacks=[swa], verbose=0,
        )  # fmt: skip
        return model, history

    model, history = fit(True)
    plain, _ = fit(False)
    for a, b in zip(model.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    # the last val_loss is the averaged model's (BN recomputed) loss
    model.optimizer.assign_average()
    recompute_batchnorm_statistics(model, train)
    val_loss = model.evaluate(_data(seed=1), verbose=0)
    assert history.history["val_loss"][-1] == pytest.approx(val_loss, rel=1e-5)


def test_at_the_end_the_model_holds_the_average_with_recomputed_batchnorm():
    train = _data()
    model = _model(batch_norm=True)
    model.compile(SWA(keras.optimizers.SGD(0.1, momentum=0.9)), LOSS)
    model.fit(train, epochs=3, callbacks=[StochasticWeightAveraging(1, data=train)], verbose=0)
    for var, avg in zip(model.trainable_variables, model.optimizer.averages):
        np.testing.assert_array_equal(var.numpy(), avg.numpy())
    bn = model.layers[1]
    mean = bn.moving_mean.numpy().copy()
    recompute_batchnorm_statistics(model, train)
    np.testing.assert_allclose(bn.moving_mean.numpy(), mean, rtol=1e-6)


@pytest.mark.parametrize("low_precision", [False, True], ids=["fp", "lp"])
def test_resume_from_keras_file_mid_averaging_keeps_the_average(tmp_path, low_precision):
    def optimizer():
        inner = keras.optimizers.SGD(0.1, momentum=0.9)
        if low_precision:
            q = (BlockFloatingPoint(8, axis=-1), "stochastic")
            inner = LowPrecision(inner, weight_quantizer=q, gradient_quantizer=q,
                                 momentum_quantizer=q, accumulator_quantizer=q, seed=4)  # fmt: skip
        return SWA(inner)

    train = _data()
    straight = _model()
    straight.compile(optimizer(), LOSS)
    straight.fit(train, epochs=4, callbacks=[StochasticWeightAveraging(1)], verbose=0)

    first = _model()
    first.compile(optimizer(), LOSS)
    path = str(tmp_path / "e{epoch}.keras")
    checkpoint = keras.callbacks.ModelCheckpoint(path)
    first.fit(train, epochs=4, callbacks=[StochasticWeightAveraging(1), checkpoint], verbose=0)
    loaded = keras.models.load_model(str(tmp_path / "e2.keras"))  # after 2 epochs: 2 snapshots
    assert loaded.optimizer.num_averaged == 2
    loaded.fit(train, epochs=4, initial_epoch=2, callbacks=[StochasticWeightAveraging(1)], verbose=0)
    assert loaded.optimizer.num_averaged == 4
    for a, b in zip(straight.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(straight.optimizer.averages, loaded.optimizer.averages):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_swa_config_round_trip():
    opt = SWA(keras.optimizers.SGD(0.3, momentum=0.5), name="my_swa")
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(again, SWA) and again.name == "my_swa"
    assert again.inner_optimizer.momentum == 0.5
    with pytest.raises(ValueError, match="optimizer"):
        SWA("sgd")
    with pytest.raises(ValueError, match="clipnorm"):
        SWA(keras.optimizers.SGD(), clipnorm=1.0)
