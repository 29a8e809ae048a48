"""ResNet-18, CIFAR variant: 3x3 stem, no max-pool, four stages of two BasicBlocks."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from tf_lowprec import validation

_BN = dict(momentum=0.9, epsilon=1e-5)  # PyTorch BatchNorm2d defaults, as in the references


def _conv_bn(x, filters, kernel, strides, name):
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same",
                            use_bias=False, kernel_initializer="he_normal",
                            name=f"{name}_conv")(x)
    return keras.layers.BatchNormalization(**_BN, name=f"{name}_bn")(x)


def _basic_block(x, filters, strides, name):
    """conv3x3(stride)-BN-ReLU-conv3x3-BN, plus a shortcut, then ReLU.

    The shortcut is the identity, or a 1x1 conv (with `strides`) + BN when the shape
    changes ("option B" of He et al.).
    """
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, strides, f"{name}_shortcut")
    y = _conv_bn(x, filters, 3, strides, f"{name}_1")
    y = keras.layers.ReLU(name=f"{name}_1_relu")(y)
    y = _conv_bn(y, filters, 3, 1, f"{name}_2")
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def resnet18(
    input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 10, width: int = 64
) -> keras.Model:
    """Builds the CIFAR ResNet-18, which outputs logits.

    Stem: 3x3 conv (stride 1, `width` channels), BN, ReLU, no max-pool. Then four
    stages of two BasicBlocks with `width * (1, 2, 4, 8)` channels and strides
    1, 2, 2, 2 (32x32 -> 4x4), 1x1 projection shortcuts with BN where the shape
    changes, global average pooling and a Dense logits layer. Convolutions have no
    bias (BN follows). With `width=64` and 10 classes: 11,173,962 trainable
    parameters (the number usually quoted) plus 9,600 BN moving statistics.
    `width=16` gives a ~0.7M-parameter network for quick benchmarks.

    The output is unnormalized LOGITS (no softmax): train with
    `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`.

    Args:
        input_shape: (height, width, channels). Defaults to `(32, 32, 3)`.
        num_classes: number of output logits, >= 2. Defaults to `10`.
        width: channels of the stem and first stage. Defaults to `64`.

    Returns:
        An uncompiled `keras.Model` named `"resnet18"`; blocks are named
        `stage{s}_block{b}_*`.

    References:
        He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition",
        CVPR 2016, arXiv:1512.03385.
        The CIFAR adaptation follows kuangliu/pytorch-cifar (models/resnet.py).
    """
    shape = validation.image_shape(input_shape, min_size=8)
    num_classes = validation.integer(num_classes, "num_classes", minimum=2)
    width = validation.positive_int(width, "width")

    inputs = keras.Input(shape=shape, name="image")
    x = _conv_bn(inputs, width, 3, 1, "stem")
    x = keras.layers.ReLU(name="stem_relu")(x)
    for stage, (mult, strides) in enumerate(zip((1, 2, 4, 8), (1, 2, 2, 2)), start=1):
        for block in (1, 2):
            x = _basic_block(x, width * mult, strides if block == 1 else 1,
                             f"stage{stage}_block{block}")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="resnet18")
