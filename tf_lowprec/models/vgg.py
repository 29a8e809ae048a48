"""VGG-16 for CIFAR (32x32 inputs), as used by the SWA and SWALP experiments."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from tf_lowprec import validation

# Conv channels; "M" is a 2x2 max-pool (configuration "D" of Simonyan & Zisserman).
_CFG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
          512, 512, 512, "M", 512, 512, 512, "M")


def vgg16(
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    batch_norm: bool = False,
    width_multiplier: float = 1.0,
) -> keras.Model:
    """Builds the CIFAR VGG-16, which outputs logits.

    Thirteen 3x3 convolutions (with bias; `[BN ->]` ReLU after each) in five blocks
    of 64, 128, 256, 512, 512 channels, each block ending with a 2x2 max-pool
    (32x32 -> 1x1), then the classifier of the SWA/SWALP CIFAR VGG:
    Dropout(0.5), Dense 512, ReLU, Dropout(0.5), Dense 512, ReLU, Dense logits.
    Conv kernels are initialized N(0, 2 / (9 * out_channels)) with zero bias, as there.
    With 10 classes and no BN: 15,245,130 parameters.

    `width_multiplier` scales every conv and hidden Dense width (rounded, at
    least 1), e.g. 0.25 for a cheap benchmark network.

    The output is unnormalized LOGITS (no softmax): train with
    `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`.

    Args:
        input_shape: (height, width, channels), at least 32x32. Defaults to
            `(32, 32, 3)`.
        num_classes: number of output logits, >= 2. Defaults to `10`.
        batch_norm: add BatchNormalization after each conv ("VGG16BN").
            Defaults to `False`.
        width_multiplier: positive scale for all widths. Defaults to `1.0`.

    Returns:
        An uncompiled `keras.Model` named `"vgg16"` (or `"vgg16_bn"`); layers
        `block{b}_conv{i}`, `block{b}_pool`, `fc1`, `fc2`, `logits`.

    References:
        Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
        Recognition", ICLR 2015, arXiv:1409.1556.
        Izmailov et al., "Averaging Weights Leads to Wider Optima and Better
        Generalization" (SWA), UAI 2018; Yang et al., "SWALP: Stochastic Weight
        Averaging in Low-Precision Training", ICML 2019 (github.com/stevenygd/SWALP,
        models/vgg_low.py).
    """
    shape = validation.image_shape(input_shape, min_size=32)
    num_classes = validation.integer(num_classes, "num_classes", minimum=2)
    batch_norm = validation.boolean(batch_norm, "batch_norm")
    width_multiplier = validation.positive_float(width_multiplier, "width_multiplier")

    def scaled(channels):
        return max(1, int(round(channels * width_multiplier)))

    conv_init = keras.initializers.VarianceScaling(
        2.0, mode="fan_out", distribution="untruncated_normal")
    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    block, conv = 1, 1
    for v in _CFG16:
        if v == "M":
            x = keras.layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
            block, conv = block + 1, 1
            continue
        name = f"block{block}_conv{conv}"
        x = keras.layers.Conv2D(scaled(v), 3, padding="same",
                                kernel_initializer=conv_init, name=name)(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5,
                                                name=f"{name}_bn")(x)
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
        conv += 1
    x = keras.layers.Flatten(name="flatten")(x)
    for i in (1, 2):
        x = keras.layers.Dropout(0.5, name=f"fc{i}_dropout")(x)
        x = keras.layers.Dense(scaled(512), name=f"fc{i}")(x)
        x = keras.layers.ReLU(name=f"fc{i}_relu")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="vgg16_bn" if batch_norm else "vgg16")
