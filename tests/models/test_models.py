"""Model builders: shapes, exact parameter counts, serialization, a training step."""

import keras
import numpy as np
import pytest

from tf_lowprec import models


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_mlp_parameter_counts_and_names():
    # softmax regression: 784 * 10 + 10
    reg = models.mlp(hidden_units=())
    assert reg.count_params() == 7850
    assert [layer.name for layer in reg.layers] == ["image", "flatten", "logits"]
    # 784 * 256 + 256 + 256 * 10 + 10
    assert models.mlp().count_params() == 203530
    deep = models.mlp((8, 8, 3), 5, hidden_units=[32, 16])
    assert deep.count_params() == (192 * 32 + 32) + (32 * 16 + 16) + (16 * 5 + 5)
    assert "hidden_2" in [layer.name for layer in deep.layers]
    assert deep.output_shape == (None, 5)


def test_cnn_parameter_count_and_shape():
    model = models.cnn()
    # conv 3*3*1*32+32, conv 3*3*32*64+64, 28->26->13->11->5: dense 5*5*64*128+128, 128*10+10
    assert model.count_params() == 320 + 18496 + 204928 + 1290
    assert model.get_layer("pool_2").output.shape[1:] == (5, 5, 64)
    assert model.output_shape == (None, 10)
    small = models.cnn((32, 32, 3), 100, filters=(4,), dense_units=8)
    assert small.count_params() == (27 * 4 + 4) + (15 * 15 * 4 * 8 + 8) + (8 * 100 + 100)


def test_resnet18_standard_width_matches_reference_count():
    model = models.resnet18()
    assert _trainable(model) == 11_173_962  # the figure quoted for CIFAR-10 ResNet-18
    assert model.count_params() == 11_173_962 + 2 * 4800  # + BN moving mean/var
    assert model.output_shape == (None, 10)
    assert model.get_layer("stage4_block2_out").output.shape[1:] == (4, 4, 512)
    # projection shortcuts only where the shape changes: stages 2-4, first block
    shortcuts = [layer.name for layer in model.layers if "shortcut_conv" in layer.name]
    assert shortcuts == [f"stage{s}_block1_shortcut_conv" for s in (2, 3, 4)]


def test_resnet18_narrow():
    model = models.resnet18((32, 32, 3), 100, width=16)
    assert model.output_shape == (None, 100)
    assert model.get_layer("stage1_block1_2_conv").output.shape[-1] == 16
    assert model.get_layer("stage4_block1_1_conv").output.shape[-1] == 128


@pytest.mark.parametrize("batch_norm, total, trainable", [
    (False, 15_245_130, 15_245_130),
    (True, 15_245_130 + 4 * 4224, 15_245_130 + 2 * 4224),
])
def test_vgg16_counts(batch_norm, total, trainable):
    model = models.vgg16(batch_norm=batch_norm)
    assert model.count_params() == total
    assert _trainable(model) == trainable
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 13 and len([layer for layer in model.layers
                                     if isinstance(layer, keras.layers.Dense)]) == 3
    assert model.get_layer("block5_pool").output.shape[1:] == (1, 1, 512)
    assert model.get_layer("fc1").units == 512


def test_vgg16_width_multiplier():
    model = models.vgg16(num_classes=100, width_multiplier=0.125)
    assert model.get_layer("block1_conv1").filters == 8
    assert model.get_layer("block5_conv3").filters == 64
    assert model.get_layer("fc2").units == 64
    assert model.output_shape == (None, 100)


def test_outputs_are_logits_not_probabilities():
    x = np.random.default_rng(0).normal(size=(4, 28, 28, 1)).astype("float32") * 5
    out = models.mlp()(x).numpy()
    assert not np.allclose(out.sum(axis=1), 1.0)
    assert (out < 0).any()


@pytest.mark.parametrize("name, kwargs, shape", [
    ("mlp", dict(hidden_units=(16,)), (28, 28, 1)),
    ("cnn", dict(filters=(4, 8), dense_units=16), (28, 28, 1)),
    ("resnet18", dict(width=4), (32, 32, 3)),
    ("vgg16", dict(batch_norm=True, width_multiplier=1 / 16), (32, 32, 3)),
])
def test_save_load_and_fit_step(tmp_path, name, kwargs, shape):
    model = models.get(name, input_shape=shape, num_classes=3, **kwargs)
    x = np.random.default_rng(1).normal(size=(8,) + shape).astype("float32")
    y = np.arange(8) % 3
    model.compile(keras.optimizers.SGD(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, w.numpy())
               for a, w in zip(before, model.trainable_weights))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.name == model.name


def test_get_rejects_unknown_names():
    assert models.get("CNN").name == "cnn"
    with pytest.raises(ValueError, match=r"name='alexnet'.*mlp, cnn, resnet18, vgg16"):
        models.get("alexnet")


@pytest.mark.parametrize("build, match", [
    (lambda: models.mlp(num_classes=1), r"num_classes=1"),
    (lambda: models.cnn(num_classes=True), r"num_classes=True"),
    (lambda: models.mlp(hidden_units=(0,)), r"hidden_units=\(0,\)"),
    (lambda: models.mlp(hidden_units=256), r"hidden_units=256"),
    (lambda: models.cnn(filters=()), r"filters=\(\)"),
    (lambda: models.cnn(dense_units=-3), r"dense_units=-3"),
    (lambda: models.cnn((8, 8, 1), filters=(4, 4)), r"too small.*input_shape=\(8, 8, 1\)"),
    (lambda: models.cnn((28, 28)), r"input_shape=\(28, 28\)"),
    (lambda: models.resnet18(width=0), r"width=0"),
    (lambda: models.vgg16((16, 16, 3)), r">= 32.*input_shape=\(16, 16, 3\)"),
    (lambda: models.vgg16(width_multiplier=0), r"width_multiplier=0"),
    (lambda: models.vgg16(batch_norm="yes"), r"batch_norm='yes'"),
    (lambda: models.get("mlp", num_classes=0), r"num_classes=0"),
])
def test_bad_arguments_name_argument_and_value(build, match):
    with pytest.raises(ValueError, match=match):
        build()
