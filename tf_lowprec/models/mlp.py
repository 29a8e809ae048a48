"""Multi-layer perceptron: Flatten -> [Dense -> ReLU] * k -> Dense logits."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from tf_lowprec import validation


def mlp(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    hidden_units: Sequence[int] = (256,),
) -> keras.Model:
    """Builds a fully connected classifier that outputs logits.

    `hidden_units=()` is multinomial logistic (softmax) regression, a single Dense
    layer; `(256,)` is the classic one-hidden-layer MNIST network. Layers are named
    `flatten`, `hidden_1`, `relu_1`, ..., `logits`.

    The output is unnormalized LOGITS (no softmax): train with
    `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`.

    Args:
        input_shape: shape of one example. Defaults to `(28, 28, 1)`.
        num_classes: number of output logits, >= 2. Defaults to `10`.
        hidden_units: width of each hidden layer. Defaults to `(256,)`.

    Returns:
        An uncompiled `keras.Model` named `"mlp"`.

    Example:
        >>> model = mlp(hidden_units=())  # softmax regression, 7850 parameters
        >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    References:
        LeCun et al., "Gradient-based learning applied to document recognition",
        Proc. IEEE 1998 (the MNIST MLP baselines).
    """
    input_shape = validation.positive_int_tuple(input_shape, "input_shape", allow_empty=False)
    num_classes = validation.integer(num_classes, "num_classes", minimum=2)
    hidden_units = validation.positive_int_tuple(hidden_units, "hidden_units")

    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    for i, units in enumerate(hidden_units, start=1):
        x = keras.layers.Dense(units, name=f"hidden_{i}")(x)
        x = keras.layers.ReLU(name=f"relu_{i}")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="mlp")
