"""swalp(): the paper's composition; quantize_activations; low_precision_sgd."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_lowprec import models, optimizers
from tf_lowprec.formats import BlockFloatingPoint
from tf_lowprec.layers import Quantize
from tf_lowprec.optimizers import LowPrecision, quantize_activations, swalp, swalp_formats
from tf_lowprec.training import SWA, StochasticWeightAveraging

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _images(n=32, batch=8):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 12, 12, 1)).astype("float32")
    y = (np.arange(n) % 4).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def _small_cnn():
    return models.cnn(input_shape=(12, 12, 1), num_classes=4, filters=(4,), dense_units=8)


def test_formats_are_swalps_small_block_bfp():
    weights, activations = swalp_formats()
    assert weights == BlockFloatingPoint(8, axis=-1, small_block_rank=1)
    assert activations == BlockFloatingPoint(8, axis=None)


def test_quantize_activations_after_every_relu_but_not_the_logits():
    base = _small_cnn()
    fmt = BlockFloatingPoint(8, axis=None)
    q = quantize_activations(base, fmt, fmt, seed=5)
    names = [layer.name for layer in q.layers]
    assert names == ["image", "conv_1", "relu_1", "relu_1_quantize", "pool_1", "flatten",
                     "dense", "dense_relu", "dense_relu_quantize", "logits"]  # fmt: skip
    quantizers = [layer for layer in q.layers if isinstance(layer, Quantize)]
    assert [layer.seed for layer in quantizers] == [5, 6]
    assert all(layer.forward_format == fmt and layer.rounding == "stochastic" for layer in quantizers)
    for a, b in zip(base.get_weights(), q.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert q.layers[0] is not base.layers[0]  # a copy, not shared layers
    x = np.random.default_rng(1).normal(size=(2, 12, 12, 1)).astype("float32")
    assert q(x).shape == (2, 4)


def test_quantize_activations_on_sequential_and_builtin_activation():
    model = keras.Sequential([
        keras.Input((5,)),
        keras.layers.Dense(6, activation="relu"),
        keras.layers.Dense(4),
        keras.layers.Activation("linear"),
        keras.layers.Dense(3, activation="relu"),
    ])  # fmt: skip
    fmt = BlockFloatingPoint(6, axis=None)
    q = quantize_activations(model, fmt)
    kinds = [type(layer).__name__ for layer in q.layers]
    assert kinds == ["Dense", "Quantize", "Dense", "Activation", "Dense"]
    # forward values on the 6-bit grid of each tensor
    x = np.random.default_rng(2).normal(size=(3, 5)).astype("float32")
    h = keras.Model(q.inputs, q.layers[1].output)(x).numpy()
    ulp = 2.0 ** (np.floor(np.log2(np.abs(h).max())) - 4)
    np.testing.assert_array_equal(h / ulp, np.round(h / ulp))


def test_setup_is_the_paper_composition():
    train = _images()
    setup = swalp(_small_cnn(), steps_per_epoch=4, swa_start=2, learning_rate=0.05,
                  swa_lr=0.01, data=train, seed=1)  # fmt: skip
    opt = setup.optimizer
    assert isinstance(opt, SWA) and isinstance(opt.inner_optimizer, LowPrecision)
    lp = opt.inner_optimizer
    weights, _ = swalp_formats()
    for name in ("weight", "gradient", "momentum", "accumulator"):
        assert getattr(lp, f"{name}_quantizer") == (weights, "stochastic")
    assert not lp.separate_accumulator
    sgd = lp.inner_optimizer
    assert sgd.momentum == 0.9
    rates = [float(sgd._learning_rate(step)) for step in (0, 4, 7, 8, 100)]
    np.testing.assert_allclose(rates, [0.05, 0.05, 0.05, 0.01, 0.01], rtol=1e-6)
    (callback,) = setup.callbacks
    assert isinstance(callback, StochasticWeightAveraging) and callback.start_epoch == 2
    assert sum(isinstance(layer, Quantize) for layer in setup.model.layers) == 2


def test_setup_trains_saves_and_reloads(tmp_path):
    train = _images()
    setup = swalp(_small_cnn(), steps_per_epoch=4, swa_start=1, data=train, seed=2)
    setup.model.compile(setup.optimizer, LOSS, metrics=["accuracy"])
    history = setup.model.fit(train, epochs=3, validation_data=train, callbacks=setup.callbacks, verbose=0)
    assert history.history["swa_num_averaged"] == [1, 2, 3]
    assert np.isfinite(history.history["val_loss"]).all()
    path = str(tmp_path / "swalp.keras")
    setup.model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.optimizer.num_averaged == 3
    for a, b in zip(setup.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # the averaged weights go into the full-precision model (SWALP's evaluation)
    fp = _small_cnn()
    fp.set_weights(loaded.get_weights())
    fp.compile(loss=LOSS, metrics=["accuracy"])
    assert np.isfinite(fp.evaluate(train, verbose=0)[0])


@pytest.mark.parametrize("word_length, average", [(None, True), (None, False), (8, False)])
def test_baselines_on_the_same_schedule(word_length, average):
    base = _small_cnn()
    setup = swalp(base, steps_per_epoch=4, swa_start=2, word_length=word_length, average=average)
    inner = setup.optimizer.inner_optimizer if average else setup.optimizer
    if word_length is None:
        assert type(inner) is keras.optimizers.SGD
        assert setup.model is base
    else:
        assert isinstance(inner, LowPrecision)
        assert setup.model is not base
    assert bool(setup.callbacks) == average


def test_low_precision_sgd_is_registered():
    opt = optimizers.get("low_precision_sgd", learning_rate=0.1, word_length=6, seed=3)
    assert isinstance(opt, LowPrecision) and opt.seed == 3
    assert opt.weight_quantizer[0] == BlockFloatingPoint(6, axis=-1)
    var = keras.Variable(np.ones((2, 3), np.float32))
    opt.apply([tf.ones((2, 3))], [var])
    assert int(opt.iterations) == 1


@pytest.mark.slow
def test_example_script_runs_on_generated_cifar_files(tmp_path):
    """examples/swalp/swalp_experiment.py end to end on CIFAR-10-format files
    (generated, 4 images per batch file), with the CNN (a VGG16 here costs
    minutes of tracing and XLA compiles of the quantizers on 2 cores)."""
    import importlib.util
    import os

    from tests.data.formats import cifar_members, write_cifar_archive

    data_dir = tmp_path / "data"
    write_cifar_archive(data_dir / "cifar-10-python.tar.gz", cifar_members("cifar10", n=4))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(
        "swalp_experiment", os.path.join(root, "examples", "swalp", "swalp_experiment.py")
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "out"
    rows = script.main([
        "--dataset", "cifar10", "--model", "cnn",
        "--epochs", "3", "--swa-start", "2", "--batch-size", "8",
        "--data-dir", str(data_dir), "--out", str(out), "--verbose", "0",
    ])  # fmt: skip
    assert {(r["run"], r["seed"]) for r in rows} == {("fp", "0"), ("lp", "0")}
    assert len(rows) == 6
    for name in ("runs.csv", "summary.csv", "summary.md", "curves.png"):
        assert (out / name).stat().st_size > 0
    summary = (out / "summary.md").read_text()
    assert "SGD-FP" in summary and "SWALP" in summary


def test_recipe_takes_quantizers():
    from tf_lowprec.formats import FixedPoint
    from tf_lowprec.quantizers import Quantizer
    from tf_lowprec.recipes import low_precision_sgd
    from tf_lowprec.recipes import swalp as recipe_swalp

    q = Quantizer(FixedPoint(8, 6), "nearest")
    opt = low_precision_sgd(0.1, quantizer=q, seed=1)
    assert opt.weight_quantizer == opt.momentum_quantizer == q
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)])
    setup = recipe_swalp(model, steps_per_epoch=2, swa_start=1, optimizer_quantizer=q,
                         activation_quantizer=Quantizer(FixedPoint(8, 4), "stochastic"), seed=2)
    inserted = [layer for layer in setup.model.layers if layer.name.endswith("_quantize")]
    assert len(inserted) == 1 and inserted[0].forward_quantizer == Quantizer(FixedPoint(8, 4), "stochastic")
    assert setup.optimizer.inner_optimizer.gradient_quantizer == q
