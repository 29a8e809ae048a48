"""Float vs int8 QAT vs int8 post-training quantization, deployed as TFLite, on Fashion-MNIST.

    nice -n 19 python examples/deploy_int8/deploy_int8.py --latency skip      # training part
    python examples/deploy_int8/deploy_int8.py --latency only                 # timing part
    python examples/deploy_int8/deploy_int8.py --epochs 1 --qat-epochs 1 --limit 2000  # smoke

For each model (a small MobileNet-style CNN: depthwise separable blocks +
BatchNormalization + ReLU6, and `tf_lowprec.models.cnn`):

1. train the float Keras model (`--epochs`, Adam);
2. export it to a float .tflite (plain converter) and, post-training, to a
   full-integer .tflite with `tf_lowprec.export.to_tflite(model, path,
   representative_data=x_train[:500])` (PTQ);
   also train a copy `--qat-epochs` more in float at `--qat-lr`
   (`float_finetuned`: the baseline with as much training as QAT);
3. make it quantization-aware with `tf_lowprec.layers.quantize_model(model,
   scheme="int8")`, fine-tune it from the float weights (`--qat-epochs`)
   and export it with `to_tflite` (QAT);
4. evaluate every .tflite with the TFLite interpreter on the full test set
   (10,000 images): accuracy, agreement of the argmax with the Keras model
   it came from, file size; the Keras accuracies too.

`--latency run|only` also measures single-thread batch-1 latency with the
TFLite interpreter (XNNPACK, the default delegate): median over
`--repeats` timed blocks of `--invokes` calls. Timing needs an idle
machine; `--latency only` reuses the .tflite files and CSV of an earlier
run. Results go to `--out` (default: this folder): `results.csv`,
`results.md` (table), `results.png` (plot), `tflite/*.tflite`.
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from tf_lowprec import data, export, layers, models
from tf_lowprec.export.tflite_ops import interpreter

HERE = os.path.dirname(os.path.abspath(__file__))
FIELDS = [
    "model",
    "variant",
    "keras_accuracy",
    "tflite_accuracy",
    "agreement_with_keras",
    "tflite_bytes",
    "size_vs_float",
    "int8_kernels",
    "latency_ms",
    "epochs",
    "train_images",
]


def mobilenet_small(
    input_shape=(28, 28, 1),
    num_classes=10,
    width=(64, 128, 256, 256),
    strides=(1, 2, 2, 1),
):
    """MobileNet-v1-style: a stride-2 3x3 stem (32 filters), then depthwise separable
    blocks (3x3 DW+BN+ReLU6, 1x1 PW+BN+ReLU6), global average pooling, Dense logits.
    28x28 -> 14 -> 14 -> 7 -> 4 -> 4; 120,586 parameters."""

    def conv_bn(x, filters, kernel, strides, name):
        x = keras.layers.Conv2D(
            filters, kernel, strides, padding="same", use_bias=False, name=name
        )(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x)

    inputs = keras.Input(input_shape, name="image")
    x = conv_bn(inputs, 32, 3, 2, "stem")
    for i, (filters, stride) in enumerate(zip(width, strides), start=1):
        x = keras.layers.DepthwiseConv2D(
            3, stride, padding="same", use_bias=False, name=f"dw_{i}"
        )(x)
        x = keras.layers.BatchNormalization(name=f"dw_{i}_bn")(x)
        x = keras.layers.ReLU(6.0, name=f"dw_{i}_relu6")(x)
        x = conv_bn(x, filters, 1, 1, f"pw_{i}")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="mobilenet_small")


def load(limit):
    meta = data.info("fashion_mnist")

    def normalized(split):
        x, y = data.load_numpy("fashion_mnist", split)
        x = (x.astype(np.float32) / 255.0 - np.float32(meta.mean)) / np.float32(
            meta.std
        )
        return x.astype(np.float32), y.astype(np.int32)

    x_train, y_train = normalized("train")
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    x_test, y_test = normalized("test")
    return x_train, y_train, x_test, y_test


def fit(model, x, y, epochs, lr, batch_size, seed):
    model.compile(
        keras.optimizers.Adam(lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    keras.utils.set_random_seed(seed)
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=2)
    return model


def float_tflite(model, path):
    """Plain float32 conversion (no optimization): the size and latency baseline."""
    with tempfile.TemporaryDirectory() as saved:
        model.export(saved, format="tf_saved_model", verbose=False)
        flatbuffer = tf.lite.TFLiteConverter.from_saved_model(saved).convert()
    with open(path, "wb") as file:
        file.write(flatbuffer)
    return path


def tflite_predict(path, x, batch=500):
    """Logits of the .tflite model on `x` (batched; int8 I/O handled)."""
    interp = interpreter(path)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.resize_tensor_input(inp["index"], [batch, *x.shape[1:]])
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    results = []
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        if len(chunk) < batch:
            chunk = np.concatenate(
                [chunk, np.zeros((batch - len(chunk), *x.shape[1:]), x.dtype)]
            )
        interp.set_tensor(inp["index"], chunk.astype(inp["dtype"]))
        interp.invoke()
        results.append(interp.get_tensor(out["index"]).copy())
    return np.concatenate(results)[: len(x)]


def latency_ms(path, sample, invokes, repeats):
    """Median over `repeats` of the mean batch-1 invoke time (1 thread, XNNPACK)."""
    interp = interpreter(path, num_threads=1)
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], sample.astype(inp["dtype"]))
    for _ in range(max(10, invokes // 10)):
        interp.invoke()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(invokes):
            interp.invoke()
        times.append((time.perf_counter() - start) / invokes * 1e3)
    return statistics.median(times)


def all_int8(path):
    rows = export.kernel_types(path)
    return all(r["input"] == r["weight"] == r["output"] == "int8" for r in rows)


def run_model(name, build, args, x_train, y_train, x_test, y_test, tflite_dir):
    keras.utils.set_random_seed(args.seed)
    model = fit(
        build(), x_train, y_train, args.epochs, args.lr, args.batch_size, args.seed
    )
    keras_float = model.predict(x_test, batch_size=1000, verbose=0)
    paths = {
        "float": float_tflite(model, os.path.join(tflite_dir, f"{name}_float.tflite")),
        "ptq_int8": export.to_tflite(
            model,
            os.path.join(tflite_dir, f"{name}_ptq_int8.tflite"),
            representative_data=x_train[: args.calibration],
        ),
    }
    # The fair float baseline for QAT: the same extra epochs, same learning rate, in float.
    tuned = keras.models.clone_model(model)
    tuned.set_weights(model.get_weights())

    def fine_tune(copy):
        return fit(
            copy,
            x_train,
            y_train,
            args.qat_epochs,
            args.qat_lr,
            args.batch_size,
            args.seed,
        )

    tuned = fine_tune(tuned)
    keras_tuned = tuned.predict(x_test, batch_size=1000, verbose=0)
    paths["float_finetuned"] = float_tflite(
        tuned, os.path.join(tflite_dir, f"{name}_float_finetuned.tflite")
    )
    qat = fine_tune(layers.quantize_model(model, scheme="int8"))
    keras_qat = qat.predict(x_test, batch_size=1000, verbose=0)
    paths["qat_int8"] = export.to_tflite(
        qat, os.path.join(tflite_dir, f"{name}_qat_int8.tflite")
    )
    if args.tfmot_python:
        tfmot_row = run_tfmot(
            name, model, x_train, y_train, x_test, y_test, args, tflite_dir
        )
    reference = {
        "float": keras_float,
        "ptq_int8": keras_float,
        "float_finetuned": keras_tuned,
        "qat_int8": keras_qat,
    }
    float_bytes = os.path.getsize(paths["float"])
    rows = []
    for variant, path in paths.items():
        logits = tflite_predict(path, x_test)
        keras_logits = reference[variant]
        rows.append(
            {
                "model": name,
                "variant": variant,
                "keras_accuracy": float(np.mean(keras_logits.argmax(1) == y_test)),
                "tflite_accuracy": float(np.mean(logits.argmax(1) == y_test)),
                "agreement_with_keras": float(
                    np.mean(logits.argmax(1) == keras_logits.argmax(1))
                ),
                "tflite_bytes": os.path.getsize(path),
                "size_vs_float": os.path.getsize(path) / float_bytes,
                "int8_kernels": all_int8(path) if variant.endswith("int8") else "",
                "latency_ms": "",
                "epochs": f"{args.epochs}+{args.qat_epochs}"
                if variant in ("qat_int8", "float_finetuned")
                else args.epochs,
                "train_images": len(x_train),
            }
        )
        print(rows[-1], flush=True)
    if args.tfmot_python:
        float_accuracy = rows[0]["keras_accuracy"]
        print(
            f"{name}: tf_keras float accuracy {tfmot_row['tf_keras_float_accuracy']:.4f} "
            f"(Keras 3 float {float_accuracy:.4f}: same weights)",
            flush=True,
        )
        tfmot_row.update(
            size_vs_float=tfmot_row["tflite_bytes"] / float_bytes,
            latency_ms="",
            epochs=f"{args.epochs}+{args.qat_epochs}",
            train_images=len(x_train),
        )
        print(tfmot_row, flush=True)
        rows.append({key: tfmot_row[key] for key in FIELDS})
    return rows


def run_tfmot(name, model, x_train, y_train, x_test, y_test, args, tflite_dir):
    """TFMOT QAT of the same float weights, in `--tfmot-python` (tf_keras, own process)."""
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "weights.npz")
        np.savez(weights, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
        arrays = os.path.join(tmp, "data.npz")
        np.savez(arrays, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        row_path = os.path.join(tmp, "row.json")
        command = [
            args.tfmot_python,
            os.path.join(HERE, "..", "..", "benchmarks", "tfmot_qat.py"),
            "--model", name,
            "--weights", weights,
            "--data", arrays,
            "--qat-epochs", str(args.qat_epochs),
            "--qat-lr", str(args.qat_lr),
            "--batch-size", str(args.batch_size),
            "--seed", str(args.seed),
            "--tflite", os.path.join(tflite_dir, f"{name}_tfmot_qat_int8.tflite"),
            "--out-json", row_path,
        ]  # fmt: skip
        subprocess.run(command, check=True)
        with open(row_path) as file:
            return json.load(file)


def write_table(rows, out):
    lines = [
        "| model | variant | Keras acc | TFLite acc | TFLite = Keras | .tflite bytes "
        + "| size vs float | all kernels int8 | latency ms (1 thread) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def pct(r, key):
        return f"{100 * float(r[key]):.2f}%"

    for r in rows:
        lat = (
            f"{float(r['latency_ms']):.3f}"
            if r["latency_ms"] not in ("", None)
            else "not run"
        )
        lines.append(
            f"| {r['model']} | {r['variant']} | {pct(r, 'keras_accuracy')} | {pct(r, 'tflite_accuracy')} "
            f"| {pct(r, 'agreement_with_keras')} | {int(r['tflite_bytes']):,} "
            f"| {float(r['size_vs_float']):.3f} | {r['int8_kernels']} | {lat} |"
        )
    with open(os.path.join(out, "results.md"), "w") as file:
        file.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(rows, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    markers = {
        "float": "o",
        "float_finetuned": "D",
        "ptq_int8": "s",
        "qat_int8": "^",
        "tfmot_qat_int8": "v",
    }
    for r in rows:
        ax.scatter(
            int(r["tflite_bytes"]) / 1024,
            100 * float(r["tflite_accuracy"]),
            marker=markers[r["variant"]],
            s=60,
            color="C0" if r["model"] == "cnn" else "C1",
        )
        ax.annotate(
            f"{r['model']} {r['variant']}",
            (int(r["tflite_bytes"]) / 1024, 100 * float(r["tflite_accuracy"])),
            fontsize=7,
            xytext=(4, 2),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    ax.set_xlabel(".tflite size (KiB, log)")
    ax.set_ylabel("TFLite test accuracy (%)")
    ax.set_title("Fashion-MNIST: float vs int8 PTQ vs int8 QAT (TFLite interpreter)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "results.png"), dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilenet_small,cnn")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--qat-epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--qat-lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--limit", type=int, default=None, help="training images (default all)"
    )
    parser.add_argument(
        "--calibration", type=int, default=500, help="PTQ calibration images"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--latency",
        choices=("skip", "run", "only", "report"),
        default="skip",
        help="skip: train and evaluate; run: also time; only: time the files of an earlier "
        "run; report: rewrite table and plot from results.csv",
    )
    parser.add_argument("--invokes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--out", default=HERE)
    parser.add_argument(
        "--tfmot-python",
        default=None,
        metavar="PYTHON",
        help="python of a venv with the [tfmot] extra: adds a TFMOT QAT row per model",
    )
    args = parser.parse_args(argv)
    tflite_dir = os.path.join(args.out, "tflite")
    os.makedirs(tflite_dir, exist_ok=True)
    csv_path = os.path.join(args.out, "results.csv")

    if args.latency in ("only", "report"):
        with open(csv_path) as file:
            rows = list(csv.DictReader(file))
    else:
        x_train, y_train, x_test, y_test = load(args.limit)
        builders = {"mobilenet_small": mobilenet_small, "cnn": models.cnn}
        rows = []
        for name in args.models.split(","):
            rows += run_model(
                name, builders[name], args, x_train, y_train, x_test, y_test, tflite_dir
            )
    if args.latency in ("run", "only"):
        sample = np.zeros((1, 28, 28, 1), np.float32)
        for r in rows:
            path = os.path.join(tflite_dir, f"{r['model']}_{r['variant']}.tflite")
            r["latency_ms"] = latency_ms(path, sample, args.invokes, args.repeats)
            print(r["model"], r["variant"], f"{r['latency_ms']:.3f} ms", flush=True)
    with open(csv_path, "w", newline="") as file:
        writer = csv.DictWriter(file, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    write_table(rows, args.out)
    plot(rows, args.out)


if __name__ == "__main__":
    main()
