"""
Title: Quantization-aware training to a full-integer TFLite model
Author: tf_lowprec contributors
Date created: 2026/12/01
Last modified: 2026/12/01
Description: Fine-tune a Keras model with int8 fake quantization, export it as a full-integer TFLite flatbuffer and evaluate it with the TFLite interpreter, against post-training quantization.
Accelerator: None
"""

"""
## Introduction

Microcontrollers, phone NPUs and Edge TPUs run **full-integer** models: int8
weights (one scale per output channel), int8 activations, int32 biases. There
are two ways to get there from a trained float model:

* **Post-training quantization (PTQ)**: the TFLite converter measures each
  activation's range on a few hundred *representative* inputs and rounds
  everything. Quick, and usually good, but nothing adapts to the rounding.
* **Quantization-aware training (QAT)**: insert *fake quantization* (round to
  the int8 grid in the forward pass, straight-through gradient in the
  backward pass) and fine-tune, so the weights learn to live on the grid and
  the activation ranges are learned during training.

`tf_lowprec.layers.quantize_model(model, scheme="int8")` does the second for
Keras 3 models (BatchNorm folded into the convolutions, as the converter
will), and `tf_lowprec.export.to_tflite` converts either kind of model to a
full-integer `.tflite` file.

Set `TF_LOWPREC_SMOKE=1` to run it on a few hundred images.
"""

"""
## Setup
"""

import os

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from tf_lowprec import data, export, layers
from tf_lowprec.experiments.charts import accuracy_bars

try:  # the TFLite interpreter's new home; tf.lite.Interpreter is deprecated
    from ai_edge_litert.interpreter import Interpreter
except ImportError:
    Interpreter = tf.lite.Interpreter

SMOKE = os.environ.get("TF_LOWPREC_SMOKE") == "1"
TRAIN_IMAGES = 256 if SMOKE else 20_000
TEST_IMAGES = 300 if SMOKE else 10_000
EPOCHS = 1 if SMOKE else 3
QAT_EPOCHS = 1

"""
## Data

The TFLite interpreter takes numpy arrays, so this time we load the
images as arrays (`data.load_numpy`) and normalize them with the dataset's
mean and standard deviation (`data.info`).
"""

meta = data.info("fashion_mnist")


def arrays(split, limit):
    x, y = data.load_numpy("fashion_mnist", split)
    x = (x[:limit].astype("float32") / 255.0 - meta.mean) / meta.std
    return x.astype("float32"), y[:limit]


x_train, y_train = arrays("train", TRAIN_IMAGES)
x_test, y_test = arrays("test", TEST_IMAGES)
print(x_train.shape, x_test.shape)

"""
## A float model

A small CNN with BatchNormalization (which QAT folds into the convolution
weights, as TFLite does at conversion).
"""


def build_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = inputs
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 3, use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def compile_and_fit(model, epochs, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, batch_size=128, epochs=epochs, verbose=2)
    return model


float_model = compile_and_fit(build_model(), EPOCHS, 1e-3)

"""
## Baseline: post-training quantization

Without quantization-aware layers, `to_tflite` needs representative inputs to
calibrate the activation ranges (500 training images here).
"""

os.makedirs("tflite", exist_ok=True)
export.to_tflite(float_model, "tflite/ptq_int8.tflite", representative_data=x_train[:500])

"""
## Quantization-aware fine-tuning

`quantize_model(model, scheme="int8")` returns a new model with the same
weights, in which every convolution (with its BatchNorm folded in) and dense
layer uses fake-quantized int8 weights and every activation passes through a
fake quantizer that learns its range. Fine-tune it briefly with a smaller
learning rate.
"""

qat_model = layers.quantize_model(float_model, scheme="int8")
qat_model = compile_and_fit(qat_model, QAT_EPOCHS, 1e-4)

"""
The QAT model carries its own ranges, so no calibration data is needed:
"""

export.to_tflite(qat_model, "tflite/qat_int8.tflite")

"""
`export.kernel_types` reads the flatbuffer back: every convolution and
fully connected op has int8 inputs, weights and outputs, and int32 biases.
"""

for row in export.kernel_types("tflite/qat_int8.tflite"):
    print(row)

"""
## Evaluate with the TFLite interpreter

This is the model a device would run, in the TFLite interpreter (from the
`ai-edge-litert` package when it is installed, else TensorFlow's own). The exported models take and return
float32 (the first op quantizes the input, the last dequantizes the logits);
`to_tflite(..., io_dtype="int8")` gives int8 inputs and outputs instead.
"""


def tflite_accuracy(path, x, y, batch=100):
    interpreter = Interpreter(model_path=path)
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    interpreter.resize_tensor_input(input_index, [batch, *x.shape[1:]])
    interpreter.allocate_tensors()
    correct = 0
    for start in range(0, len(x) - batch + 1, batch):
        interpreter.set_tensor(input_index, x[start:start + batch])
        interpreter.invoke()
        logits = interpreter.get_tensor(output_index)
        correct += int(np.sum(np.argmax(logits, axis=1) == y[start:start + batch]))
    return correct / (len(x) // batch * batch)


results = {
    "Keras float32": float_model.evaluate(x_test, y_test, verbose=0)[1],
    "TFLite int8, post-training": tflite_accuracy("tflite/ptq_int8.tflite", x_test, y_test),
    "TFLite int8, QAT": tflite_accuracy("tflite/qat_int8.tflite", x_test, y_test),
}
sizes = {
    "TFLite int8, post-training": os.path.getsize("tflite/ptq_int8.tflite"),
    "TFLite int8, QAT": os.path.getsize("tflite/qat_int8.tflite"),
}
for name, accuracy in results.items():
    size = f"{sizes[name]:>8,} bytes" if name in sizes else ""
    print(f"{name:28} accuracy {accuracy:.2%}  {size}")

accuracy_bars(results)
plt.show()

"""
Post-training quantization usually costs only a fraction of a point on a
small CNN like this one (the study `examples/deploy_int8/` measures a
MobileNet-style network too, where it loses more). Here the QAT model also
had one more epoch of training (its fine-tuning), so part of its lead over
the float model is that extra epoch; what matters is that its int8 TFLite
model keeps what the Keras QAT model learned. The `.tflite` files hold one
byte per weight, about 4x smaller than float32 flatbuffers.

## Where to go from here

* `quantize_model(model, config)` with your own `Quantizer`s simulates other
  formats (4-bit weights, block floating point) during training.
* `tf_lowprec.layers.quantize_weights` stores a trained model's weights as
  int8 or packed int4 inside Keras, without TFLite.
"""
