"""Full-integer TFLite export (`tf_lowprec.export.to_tflite`), read back with the TFLite interpreter.

One small QAT model (Conv+BN+ReLU6, depthwise, 1x1 conv, Add, Concatenate,
pooling, Dense) is trained briefly and exported once per module; the float
model it came from is exported post-training. The interpreter's op and
tensor details are the oracle for the integer kernels; the Keras QAT
model's predictions are the oracle for the integer arithmetic.
"""

import os

import keras
import numpy as np
import pytest

from tf_lowprec import export
from tf_lowprec.export.tflite_ops import interpreter
from tf_lowprec.layers import quantize_model
from tf_lowprec.layers.int8 import activation_quantizers

RNG = np.random.default_rng(1)
X = RNG.normal(size=(256, 10, 10, 2)).astype("float32")
Y = (X[:, :5, :, 0].mean(axis=(1, 2)) > 0).astype("int32") + 2 * (
    X[:, :, :5, 1].mean(axis=(1, 2)) > 0
).astype("int32")


def _float_model():
    inputs = keras.Input((10, 10, 2))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU()(y)
    y = keras.layers.Conv2D(8, 1)(y)
    x = keras.layers.Add()([x, y])
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(8, 1, activation="relu")(x)
    a = keras.layers.Conv2D(4, 1)(x)
    a = keras.layers.BatchNormalization()(a)
    b = keras.layers.AveragePooling2D(1)(x)
    b = keras.layers.Conv2D(4, 1, activation="relu")(b)
    x = keras.layers.Concatenate()([a, b])
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4)(x)
    return keras.Model(inputs, outputs)


def _fit(model, epochs):
    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,  # 16 tiny steps: faster than tracing the train step
    )
    model.fit(X, Y, batch_size=32, epochs=epochs, verbose=0)
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("tflite")
    float_model = _fit(_float_model(), 2)
    qat = _fit(quantize_model(float_model, scheme="int8"), 2)
    return {
        "float": float_model,
        "qat": qat,
        "qat_path": export.to_tflite(qat, os.path.join(folder, "qat.tflite")),
        "ptq_path": export.to_tflite(
            float_model, os.path.join(folder, "ptq.tflite"), representative_data=X[:64]
        ),
        "int8_io_path": export.to_tflite(
            qat, os.path.join(folder, "qat_int8_io.tflite"), io_dtype="int8"
        ),
        "folder": folder,
    }


def _predict(path, x):
    interp = interpreter(path)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.resize_tensor_input(inp["index"], list(x.shape))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    if inp["dtype"] == np.int8:
        scale, zero = inp["quantization"]
        x = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    y = interp.get_tensor(out["index"])
    if out["dtype"] == np.int8:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y, out


@pytest.mark.parametrize("which", ["qat_path", "ptq_path", "int8_io_path"])
def test_every_kernel_is_int8_with_int32_bias(exported, which):
    rows = export.kernel_types(exported[which])
    ops = sorted({row["op"] for row in rows})
    assert ops == ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"]
    assert len(rows) == 7
    for row in rows:
        assert (row["input"], row["weight"], row["output"]) == ("int8",) * 3, row
        assert row["bias"] in ("int32", None), row


def test_io_types(exported):
    for key, dtype in (("qat_path", np.float32), ("int8_io_path", np.int8)):
        interp = interpreter(exported[key])
        assert interp.get_input_details()[0]["dtype"] == dtype
        assert interp.get_output_details()[0]["dtype"] == dtype


def test_integer_model_agrees_with_keras_qat_model(exported):
    x = RNG.normal(size=(200, 10, 10, 2)).astype("float32")
    keras_logits = exported["qat"].predict(x, verbose=0)
    for key in ("qat_path", "int8_io_path"):
        tflite_logits, _ = _predict(exported[key], x)
        step = exported["qat"].layers[-1].output_quantizer.nudged_range()[2]
        # Integer requantization rounds differently from float FakeQuant by a
        # step here and there; the logits stay within a few output steps.
        assert np.abs(tflite_logits - keras_logits).max() <= 4 * step + 1e-6
        agreement = np.mean(tflite_logits.argmax(1) == keras_logits.argmax(1))
        assert agreement >= 0.97, (key, agreement)


def test_tflite_output_grid_is_the_frozen_nudged_range(exported):
    qat = exported["qat"]
    _, _, scale, zero_point = qat.layers[-1].output_quantizer.nudged_range()
    out = interpreter(exported["int8_io_path"]).get_output_details()[0]
    tflite_scale, tflite_zero = out["quantization"]
    np.testing.assert_allclose(tflite_scale, scale, rtol=1e-6)
    assert tflite_zero == zero_point - 128


def test_post_training_model_agrees_with_float_model(exported):
    x = X[64:]
    keras_logits = exported["float"].predict(x, verbose=0)
    tflite_logits, _ = _predict(exported["ptq_path"], x)
    assert np.mean(tflite_logits.argmax(1) == keras_logits.argmax(1)) >= 0.9


def test_untrained_qat_model_is_refused(exported):
    fresh = quantize_model(exported["float"], scheme="int8")
    assert len(activation_quantizers(fresh)) == 10
    with pytest.raises(ValueError, match="never learned"):
        export.to_tflite(fresh, os.path.join(exported["folder"], "fresh.tflite"))


def test_float_model_without_calibration_data_is_refused(exported):
    with pytest.raises(ValueError, match="representative_data"):
        export.to_tflite(
            exported["float"], os.path.join(exported["folder"], "f.tflite")
        )


def test_bad_arguments(exported):
    path = os.path.join(exported["folder"], "x.tflite")
    with pytest.raises(ValueError, match="io_dtype"):
        export.to_tflite(exported["qat"], path, io_dtype="uint8")
    with pytest.raises(ValueError, match="calibration_samples"):
        export.to_tflite(exported["qat"], path, calibration_samples=0)
    with pytest.raises(ValueError, match="path"):
        export.to_tflite(exported["qat"], 3)
