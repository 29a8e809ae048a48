"""int8 quantization-aware training (`quantize_model(model, scheme="int8")`).

Oracles: Keras's own float Conv/Dense + BatchNormalization for the folding,
NumPy for the per-channel weight grid and the moving-average ranges, and
TensorFlow's FakeQuant kernel for the nudged activation grid.
"""

import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_lowprec.layers import quantize_model
from tf_lowprec.layers.int8 import (
    ActivationQuantizer,
    Int8Fused,
    activation_quantizers,
    fake_quant,
)

RNG = np.random.default_rng(0)


def _random_batch_norm(channels, input_shape):
    bn = keras.layers.BatchNormalization(epsilon=1e-3)
    bn.build(input_shape[:-1] + (channels,))
    bn.set_weights(
        [
            RNG.uniform(0.5, 2.0, channels).astype("float32"),  # gamma
            RNG.normal(size=channels).astype("float32"),  # beta
            RNG.normal(size=channels).astype("float32"),  # moving mean
            RNG.uniform(0.2, 3.0, channels).astype("float32"),  # moving variance
        ]
    )
    return bn


LAYERS = {
    "conv2d": (lambda: keras.layers.Conv2D(6, 3, padding="same"), (2, 7, 7, 3), 6),
    "depthwise": (
        lambda: keras.layers.DepthwiseConv2D(3, depth_multiplier=2),
        (2, 7, 7, 3),
        6,
    ),
    "dense": (lambda: keras.layers.Dense(5), (4, 9), 5),
    "conv1d": (
        lambda: keras.layers.Conv1D(4, 3, strides=2, use_bias=False),
        (2, 11, 3),
        4,
    ),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_batch_norm_folding_equals_unfolded_float_forward_pass(kind):
    make, shape, channels = LAYERS[kind]
    x = RNG.normal(size=shape).astype("float32")
    layer = make()
    layer.build(shape)
    bn = _random_batch_norm(channels, layer.compute_output_shape(shape))
    expected = bn(layer(x), training=False)

    fused = Int8Fused(make(), batch_norm=keras.layers.BatchNormalization(epsilon=1e-3))
    fused.build(shape)
    fused.layer.set_weights(layer.get_weights())
    fused.batch_norm.set_weights(bn.get_weights())
    kernel, bias = fused.folded_weights()
    folded = fused._linear(tf.constant(x), kernel) + bias
    np.testing.assert_allclose(folded, expected, atol=1e-5, rtol=1e-5)


def test_weights_are_symmetric_per_output_channel_narrow_range():
    fused = Int8Fused(keras.layers.DepthwiseConv2D(3, depth_multiplier=2))
    fused.build((1, 5, 5, 3))
    kernel = RNG.normal(size=(3, 3, 3, 2)).astype("float32")
    quantized = fused._quantize_kernel(tf.constant(kernel)).numpy()
    # Output channel i * multiplier + m is kernel[..., i, m].
    flat_w, flat_q = kernel.reshape(9, 6), quantized.reshape(9, 6)
    scale = np.abs(flat_w).max(axis=0) / 127
    codes = flat_q / scale
    np.testing.assert_allclose(codes, np.round(codes), atol=2e-3)
    assert np.abs(np.round(codes)).max() == 127
    np.testing.assert_allclose(flat_q, np.round(flat_w / scale) * scale, atol=1e-6)


def test_training_output_is_batch_normalized():
    fused = Int8Fused(
        keras.layers.Conv2D(4, 3, use_bias=True),
        batch_norm=keras.layers.BatchNormalization(),
    )
    x = RNG.normal(size=(16, 8, 8, 3)).astype("float32")
    fused.build(x.shape)
    gamma, beta = np.float32([1.0, 2.0, 0.5, 1.5]), np.float32([0.0, 1.0, -1.0, 2.0])
    fused.batch_norm.gamma.assign(gamma)
    fused.batch_norm.beta.assign(beta)
    y = fused(x, training=True).numpy()
    step = fused.output_quantizer.nudged_range()[2]
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), beta, atol=step)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), gamma, atol=2 * step, rtol=1e-2)
    # Moving statistics moved from (0, 1) towards the batch ones (momentum 0.99).
    assert np.all(fused.batch_norm.moving_variance.numpy() != 1.0)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_training_pass_equals_keras_batch_norm_of_the_unfolded_layer(kind):
    """Oracle: z = op(x, FakeQuant(s W)) / s + b, then Keras's BatchNormalization(training=True)."""
    make, shape, channels = LAYERS[kind]
    x = tf.constant(RNG.normal(size=shape).astype("float32"))
    fused = Int8Fused(
        make(),
        batch_norm=keras.layers.BatchNormalization(epsilon=1e-3),
        quantize_output=False,
    )
    fused.build(shape)
    reference_bn = _random_batch_norm(channels, fused.compute_output_shape(shape))
    fused.batch_norm.set_weights(reference_bn.get_weights())
    gamma, _, _, variance = reference_bn.get_weights()
    scale = gamma / np.sqrt(variance + np.float32(1e-3))
    kernel = fused.layer.kernel.numpy()
    depthwise = kind == "depthwise"
    folded = kernel * (scale.reshape(kernel.shape[-2:]) if depthwise else scale)
    flat = folded.reshape(-1, channels)  # output channels last, as TFLite's
    bound = np.abs(flat).max(axis=0)
    quantized = tf.quantization.fake_quant_with_min_max_vars_per_channel(
        flat, -bound, bound, num_bits=8, narrow_range=True
    ).numpy()
    if kind == "dense":  # Dense kernels: one range per tensor
        quantized = tf.quantization.fake_quant_with_min_max_vars(
            flat, -bound.max(), bound.max(), num_bits=8, narrow_range=True
        ).numpy()
    quantized = quantized.reshape(kernel.shape)
    if kind == "conv1d":
        unfolded = keras.ops.conv(x, quantized, strides=2)
    else:
        reference = make()
        reference.build(shape)
        reference.set_weights([quantized] + fused.layer.get_weights()[1:])
        unfolded = reference(x)
        if reference.use_bias:
            unfolded = unfolded - reference.bias
    z = unfolded / scale
    if fused.layer.use_bias:
        z = z + fused.layer.bias
    expected = reference_bn(z, training=True)

    with tf.GradientTape() as tape:
        y = fused(x, training=True)
        loss = tf.reduce_sum(y * RNG.normal(size=y.shape).astype("float32"))
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5)
    for ours, theirs in (
        (fused.batch_norm.moving_mean, reference_bn.moving_mean),
        (fused.batch_norm.moving_variance, reference_bn.moving_variance),
    ):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-5, rtol=1e-5)
    if fused.layer.use_bias:  # b cancels in batch-normalized training
        bias_gradient = tape.gradient(loss, fused.layer.bias)
        np.testing.assert_array_equal(bias_gradient, np.zeros(channels, np.float32))


def test_activation_range_moving_average_then_frozen():
    quantizer = ActivationQuantizer()
    a = RNG.uniform(0.5, 3.0, size=(8, 4)).astype("float32")  # all positive
    b = RNG.uniform(-2.0, 5.0, size=(8, 4)).astype("float32")
    quantizer(a, training=True)
    # First batch: its extremes, widened to include 0.
    assert quantizer.range_min.numpy() == 0.0
    assert quantizer.range_max.numpy() == np.float32(a.max())
    quantizer(b, training=True)
    expected_min = np.float32(0.999) * 0 + np.float32(0.001) * b.min()
    expected_max = np.float32(0.999) * a.max() + np.float32(0.001) * b.max()
    np.testing.assert_allclose(quantizer.range_min.numpy(), expected_min, rtol=1e-6)
    np.testing.assert_allclose(quantizer.range_max.numpy(), expected_max, rtol=1e-6)
    frozen = (quantizer.range_min.numpy(), quantizer.range_max.numpy())
    quantizer(10 * b, training=False)
    assert (quantizer.range_min.numpy(), quantizer.range_max.numpy()) == frozen
    assert quantizer.updates.numpy() == 2


@pytest.mark.parametrize("activation", ["linear", "relu", "relu6"])
def test_fused_output_range_is_the_moving_average_of_the_activated_output(activation):
    """A ReLU output's range skips reading its minimum (it is 0): same range either way."""
    fused = Int8Fused(keras.layers.Dense(6), activation=activation)
    fused.build((32, 5))
    oracle = ActivationQuantizer()
    oracle.build((32, 6))
    for _ in range(3):
        x = tf.constant(RNG.normal(scale=4.0, size=(32, 5)).astype("float32"))
        fused(x, training=True)
        kernel = fake_quant.quantize_weights_per_tensor(fused.layer.kernel)
        outputs = tf.matmul(x, kernel) + fused.layer.bias
        if activation != "linear":
            outputs = getattr(tf.nn, activation)(outputs)
        oracle.update(outputs)
    assert (fused.output_quantizer.range_min.numpy() < 0) == (activation == "linear")
    np.testing.assert_array_equal(
        [fused.output_quantizer.range_min.numpy(), fused.output_quantizer.range_max.numpy()],
        [oracle.range_min.numpy(), oracle.range_max.numpy()],
    )


@pytest.mark.parametrize(
    "low, high", [(-0.37, 2.9), (0.0, 6.0), (-4.1, -0.2), (0.13, 0.9)]
)
def test_frozen_ranges_contain_zero_exactly(low, high):
    quantizer = ActivationQuantizer()
    quantizer(np.float32([[low, high]]), training=True)
    nudged_min, nudged_max, scale, zero_point = quantizer.nudged_range()
    assert nudged_min <= 0.0 <= nudged_max
    assert 0 <= zero_point <= 255
    assert nudged_min == np.float32(-zero_point * scale)
    # TensorFlow's kernel agrees: 0 maps to exactly 0, the ends to the nudged ends.
    out = quantizer(np.float32([[0.0, -100.0, 100.0]]), training=False).numpy()
    assert out[0, 0] == 0.0
    np.testing.assert_allclose(
        out[0, 1:], [nudged_min, nudged_max], rtol=1e-6, atol=1e-7
    )


def _block_model():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Add()([x, y])
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3)(x)
    return keras.Model(inputs, outputs)


def test_quantize_model_fuses_and_requantizes():
    model = quantize_model(_block_model(), scheme="int8")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "InputLayer",
        "ActivationQuantizer",  # the model input
        "Int8Fused",  # conv + BN + ReLU6
        "Int8Fused",  # depthwise + relu
        "Add",
        "ActivationQuantizer",
        "MaxPooling2D",
        "Flatten",
        "Int8Fused",
    ]
    fused = [layer for layer in model.layers if isinstance(layer, Int8Fused)]
    assert fused[0].batch_norm is not None and fused[0].activation == "relu6"
    assert fused[1].batch_norm is None and fused[1].activation == "relu"
    assert len(activation_quantizers(model)) == 5


def test_unsupported_layer_warns_and_stays_float():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(4, activation="tanh", name="tanh_dense")(inputs)
    x = keras.layers.LayerNormalization(name="norm")(x)
    outputs = keras.layers.Dense(2)(x)
    with pytest.warns(UserWarning) as record:
        model = quantize_model(keras.Model(inputs, outputs), scheme="int8")
    messages = " ".join(str(w.message) for w in record)
    assert "'tanh_dense'" in messages and "'norm'" in messages
    kinds = [type(layer).__name__ for layer in model.layers]
    assert "Dense" in kinds and "LayerNormalization" in kinds and "Int8Fused" in kinds


def test_bad_scheme_arguments():
    model = _block_model()
    with pytest.raises(ValueError, match="scheme='int4'"):
        quantize_model(model, scheme="int4")
    with pytest.raises(ValueError, match="config"):
        quantize_model(model, {"Dense": {}}, scheme="int8")
    with pytest.raises(ValueError, match="ema_decay"):
        ActivationQuantizer(ema_decay=1.0)


def _compiled_qat():
    keras.utils.set_random_seed(3)
    model = quantize_model(_block_model(), scheme="int8")
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def test_keras_save_load_mid_training_resumes_bit_identically(tmp_path):
    x = RNG.normal(size=(64, 8, 8, 2)).astype("float32")
    y = RNG.integers(0, 3, 64)
    model = _compiled_qat()
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    path = os.path.join(tmp_path, "qat.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    for before, after in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(before.numpy(), after.numpy())
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restored.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    assert len(model.weights) == len(restored.weights)
    for before, after in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(
            before.numpy(), after.numpy(), err_msg=before.path
        )
    np.testing.assert_array_equal(
        model.predict(x, verbose=0), restored.predict(x, verbose=0)
    )


def test_nudged_range_matches_tensorflow_kernel():
    lo, hi = np.float32(-1.234), np.float32(3.21)
    nudged_min, nudged_max, scale, _ = fake_quant.nudged_range(lo, hi)
    grid = tf.quantization.fake_quant_with_min_max_vars(
        tf.constant([-10.0, 10.0, scale * 0.5 + 1e-7]), lo, hi
    ).numpy()
    assert grid[0] == nudged_min and grid[1] == nudged_max
    np.testing.assert_allclose(grid[2], scale, rtol=1e-6)


def test_sequential_model_and_its_errors():
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)]
    )
    kinds = [type(layer).__name__ for layer in quantize_model(model, scheme="int8").layers]
    assert kinds == ["InputLayer", "ActivationQuantizer", "Int8Fused", "Int8Fused"]
    with pytest.raises(ValueError, match="keras.Input"):
        quantize_model(keras.Sequential([keras.layers.Dense(4)]), scheme="int8")
    with pytest.raises(ValueError, match="keras.Model"):
        quantize_model("model", scheme="int8")
