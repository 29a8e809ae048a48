"""Small convolutional network: [Conv -> ReLU -> MaxPool] * k -> Dense -> ReLU -> Dense."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from tf_lowprec import validation


def cnn(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    filters: Sequence[int] = (32, 64),
    dense_units: int = 128,
) -> keras.Model:
    """Builds the quickstart CNN, which outputs logits.

    Each entry of `filters` adds a 3x3 "valid" convolution, a ReLU and a 2x2 max-pool
    (28x28 -> 13x13 -> 5x5 with the defaults); then Flatten, a Dense layer of
    `dense_units` with ReLU, and the Dense logits layer. With the defaults it has
    225,034 parameters: about 30 s per Fashion-MNIST epoch on 2 CPU cores at batch 128.
    This is the layout of the Keras "Simple MNIST convnet" example (without its
    dropout), plus a hidden Dense layer as in the TensorFlow CNN tutorials.

    The output is unnormalized LOGITS (no softmax): train with
    `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`.

    Args:
        input_shape: (height, width, channels). Defaults to `(28, 28, 1)`.
        num_classes: number of output logits, >= 2. Defaults to `10`.
        filters: output channels of each conv block. Defaults to `(32, 64)`.
        dense_units: width of the hidden Dense layer. Defaults to `128`.

    Returns:
        An uncompiled `keras.Model` named `"cnn"`, layers `conv_1`, `relu_1`,
        `pool_1`, ..., `flatten`, `dense`, `dense_relu`, `logits`.

    References:
        https://keras.io/examples/vision/mnist_convnet/
    """
    filters = validation.positive_int_tuple(filters, "filters", allow_empty=False)
    shape = validation.image_shape(input_shape)
    # Spatial size after each valid 3x3 conv (-2) and 2x2 pool (//2) must stay >= 1.
    size = min(shape[:2])
    for _ in filters:
        size = (size - 2) // 2
    if size < 1:
        raise ValueError(
            f"`input_shape` is too small for {len(filters)} conv blocks (each a valid "
            f"3x3 conv and a 2x2 pool). Received: input_shape={input_shape!r}"
        )
    num_classes = validation.integer(num_classes, "num_classes", minimum=2)
    dense_units = validation.positive_int(dense_units, "dense_units")

    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = keras.layers.Conv2D(f, 3, name=f"conv_{i}")(x)
        x = keras.layers.ReLU(name=f"relu_{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(dense_units, name="dense")(x)
    x = keras.layers.ReLU(name="dense_relu")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="cnn")
