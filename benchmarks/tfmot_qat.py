"""TFMOT baseline for examples/deploy_int8/deploy_int8.py: QAT + TFLite conversion in tf_keras.

    VENV/bin/python benchmarks/tfmot_qat.py --model cnn \
        --weights float_weights.npz --data data.npz --out-json row.json

Run by `deploy_int8.py --tfmot-python VENV/bin/python` (VENV: a virtual
environment with the `[tfmot]` extra, `tensorflow-model-optimization` and
`tf-keras`), in its own process. It sits here, beside the other TFMOT
baseline (`tfmot_prune.py`), to share that script's tf_keras cnn. TFMOT
switches `tf.keras` to tf_keras for the whole process,
so no Keras 3 model is built here: the script rebuilds the same
architectures in tf_keras (same layer order; the cnn is
`tfmot_prune.build_cnn`), starts from the float weights the Keras 3 run trained
(`--weights`), checks that the tf_keras float model gives the same test
predictions, then applies `tfmot.quantization.keras.quantize_model`,
fine-tunes it as deploy_int8.py fine-tunes its QAT model (Adam,
`--qat-epochs` at `--qat-lr`), converts it with the TFLite converter
(`Optimize.DEFAULT`) and evaluates the .tflite on the whole test set.
"""

import argparse
import json
import os
import tempfile

import numpy as np
import tensorflow as tf

# TFMOT first: it decides what tf.keras means in this process.
import tensorflow_model_optimization as tfmot
import tf_keras
from tfmot_prune import build_cnn

layers = tf_keras.layers


def mobilenet_small(
    input_shape=(28, 28, 1),
    num_classes=10,
    width=(64, 128, 256, 256),
    strides=(1, 2, 2, 1),
):
    """tf_keras copy of deploy_int8.mobilenet_small (same layers, names and order)."""

    def conv_bn(x, filters, kernel, stride, name):
        x = layers.Conv2D(
            filters, kernel, stride, padding="same", use_bias=False, name=name
        )(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu6")(x)

    inputs = tf_keras.Input(input_shape, name="image")
    x = conv_bn(inputs, 32, 3, 2, "stem")
    for i, (filters, stride) in enumerate(zip(width, strides), start=1):
        x = layers.DepthwiseConv2D(
            3, stride, padding="same", use_bias=False, name=f"dw_{i}"
        )(x)
        x = layers.BatchNormalization(name=f"dw_{i}_bn")(x)
        x = layers.ReLU(6.0, name=f"dw_{i}_relu6")(x)
        x = conv_bn(x, filters, 1, 1, f"pw_{i}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return tf_keras.Model(inputs, outputs, name="mobilenet_small")


def tflite_predict(path, x, batch=500):
    interp = tf.lite.Interpreter(model_path=path)
    index = interp.get_input_details()[0]["index"]
    interp.resize_tensor_input(index, [batch, *x.shape[1:]])
    interp.allocate_tensors()
    out = interp.get_output_details()[0]["index"]
    results = []
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        pad = batch - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *x.shape[1:]), x.dtype)])
        interp.set_tensor(index, chunk)
        interp.invoke()
        results.append(interp.get_tensor(out).copy())
    return np.concatenate(results)[: len(x)]


def int8_kernels(path):
    interp = tf.lite.Interpreter(
        model_path=path,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interp.allocate_tensors()
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    kinds = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    ops = [op for op in interp._get_ops_details() if op["op_name"] in kinds]
    return all(
        tensors[i]["dtype"] == np.int8
        for op in ops
        for i in (op["inputs"][0], op["inputs"][1], op["outputs"][0])
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mobilenet_small", "cnn"), required=True)
    parser.add_argument(
        "--weights", required=True, help="npz of the float Keras 3 weights"
    )
    parser.add_argument(
        "--data", required=True, help="npz: x_train, y_train, x_test, y_test"
    )
    parser.add_argument("--qat-epochs", type=int, default=1)
    parser.add_argument("--qat-lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tflite", required=True, help="where to write the .tflite")
    parser.add_argument("--out-json", required=True)
    args = parser.parse_args(argv)

    arrays = np.load(args.data)
    x_train, y_train = arrays["x_train"], arrays["y_train"]
    x_test, y_test = arrays["x_test"], arrays["y_test"]
    weights = np.load(args.weights)
    builders = {
        "mobilenet_small": mobilenet_small,
        "cnn": lambda: build_cnn((28, 28, 1), 10),
    }
    model = builders[args.model]()
    model.set_weights([weights[f"w{i}"] for i in range(len(weights.files))])
    float_logits = model.predict(x_test, batch_size=1000, verbose=0)

    tf_keras.utils.set_random_seed(args.seed)
    qat = tfmot.quantization.keras.quantize_model(model)
    qat.compile(
        tf_keras.optimizers.Adam(args.qat_lr),
        tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    qat.fit(
        x_train, y_train, batch_size=args.batch_size, epochs=args.qat_epochs, verbose=2
    )
    keras_logits = qat.predict(x_test, batch_size=1000, verbose=0)
    with tempfile.TemporaryDirectory():
        converter = tf.lite.TFLiteConverter.from_keras_model(qat)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        flatbuffer = converter.convert()
    with open(args.tflite, "wb") as file:
        file.write(flatbuffer)
    logits = tflite_predict(args.tflite, x_test)
    row = {
        "model": args.model,
        "variant": "tfmot_qat_int8",
        "keras_accuracy": float(np.mean(keras_logits.argmax(1) == y_test)),
        "tflite_accuracy": float(np.mean(logits.argmax(1) == y_test)),
        "agreement_with_keras": float(
            np.mean(logits.argmax(1) == keras_logits.argmax(1))
        ),
        "tflite_bytes": os.path.getsize(args.tflite),
        "int8_kernels": int8_kernels(args.tflite),
        "tf_keras_float_accuracy": float(np.mean(float_logits.argmax(1) == y_test)),
    }
    with open(args.out_json, "w") as file:
        json.dump(row, file)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
