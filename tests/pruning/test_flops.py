"""FLOPs counter against hand computation."""

import keras
import pytest

from tf_lowprec import models
from tf_lowprec.pruning import ConstantSparsity, count_flops, prune_low_magnitude


def test_quickstart_cnn_macs_by_hand():
    report = count_flops(models.cnn())
    # conv_1: 26x26 outputs x 32 filters x 3*3*1; conv_2: 11x11 x 64 x 3*3*32;
    # dense: 1600 -> 128; logits: 128 -> 10.
    expected = {"conv_1": 26 * 26 * 32 * 9, "conv_2": 11 * 11 * 64 * 288,
                "dense": 1600 * 128, "logits": 1280}
    assert report.layers == expected
    assert report.macs == sum(expected.values()) == 2_631_040
    assert report.flops == 2 * report.macs
    assert "total" in str(report)


def test_other_convolutions_by_hand():
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", groups=2, name="grouped")(inputs)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise")(x)
    x = keras.layers.SeparableConv2D(5, 1, name="separable")(x)
    x = keras.layers.Conv2DTranspose(3, 2, strides=2, name="transpose")(x)
    seq = keras.layers.Dense(7, name="dense_3d")(keras.layers.Reshape((4, 12))(x))
    report = count_flops(keras.Model(inputs, seq))
    assert report.layers == {
        "grouped": 4 * 4 * (3 * 3 * 2 * 6),        # 4x4 outputs, C_in/groups = 2
        "depthwise": 2 * 2 * (3 * 3 * 6 * 2),      # 2x2 outputs
        "separable": 2 * 2 * (1 * 1 * 12 * 1 + 12 * 5),
        "transpose": 2 * 2 * (2 * 2 * 3 * 5),      # per input pixel, whole kernel
        "dense_3d": 4 * 7 * 12,
    }


def test_masks_do_not_change_the_count():
    model = models.cnn((12, 12, 1), 3, filters=(4,), dense_units=5)
    pruned = prune_low_magnitude(model, ConstantSparsity(0.9))
    assert count_flops(pruned).layers == count_flops(model).layers


def test_shared_layer_is_reported_by_name():
    shared = keras.layers.Dense(3, name="shared")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, shared(shared(inputs)))  # called twice: no single output
    with pytest.raises(ValueError, match="shared"):
        count_flops(model)
