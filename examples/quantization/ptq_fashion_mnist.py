"""Post-training weight quantization of a trained Fashion-MNIST CNN.

Trains `tf_lowprec.models.cnn()` for a few epochs, then compares on the
10k test images:
  * tf_lowprec `quantize_weights` with IntegerAffine 8-bit and 4-bit codes
    (int8 storage, 4-bit packed two per byte; per-channel and per-tensor),
  * Keras 3's own `model.quantize("int8")` / `("int4")` on the same model
    (Dense layers only: Keras skips Conv2D),
  * TFLite flatbuffers exported with `model.export(path, format="litert")`
    (float, our int8 and int4 models, and TFLite's own dynamic-range
    quantization), with their file sizes and interpreter accuracy.

Usage:
    nice python examples/quantization/ptq_fashion_mnist.py --epochs 3
Writes examples/quantization/results/ptq.csv and summary.md.
"""

import argparse
import csv
import os
import pathlib
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_lowprec import (
    data,  # noqa: E402
    models,  # noqa: E402
)
from tf_lowprec.formats import IntegerAffine  # noqa: E402
from tf_lowprec.layers import quantize_weights  # noqa: E402

RESULTS = pathlib.Path(__file__).parent / "results"

OURS = [
    ("tf_lowprec int8, per-channel", IntegerAffine(8, per_channel_axis=-1)),
    ("tf_lowprec int8, per-tensor", IntegerAffine(8)),
    ("tf_lowprec int4, per-channel", IntegerAffine(4, per_channel_axis=-1)),
    ("tf_lowprec int4 asym, per-channel", IntegerAffine(4, symmetric=False, per_channel_axis=-1)),
    ("tf_lowprec int4, per-tensor", IntegerAffine(4)),
]


def _nbytes(model):
    return int(sum(np.prod(v.shape) * np.dtype(v.dtype).itemsize for v in model.weights))


def _compile(model):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _accuracy(model, test):
    return float(_compile(model).evaluate(test, verbose=0)[1])


def _tflite(model, path, images, labels, **converter_options):
    model.export(str(path), format="litert", verbose=False, **converter_options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path))
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    batch = min(500, len(images))
    interpreter.resize_tensor_input(inp["index"], (batch,) + images.shape[1:])
    interpreter.allocate_tensors()
    correct = 0
    for start in range(0, len(images), batch):
        interpreter.set_tensor(inp["index"], images[start:start + batch])
        interpreter.invoke()
        logits = interpreter.get_tensor(out["index"])
        correct += int(np.sum(np.argmax(logits, 1) == labels[start:start + batch]))
    return os.path.getsize(path), correct / len(images)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--output-dir", default=str(RESULTS))
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N train/test images (smoke test)")
    args = parser.parse_args()
    out_dir = pathlib.Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    keras.utils.set_random_seed(0)
    train = data.load("fashion_mnist", "train", batch_size=args.batch_size, limit=args.limit)
    test = data.load("fashion_mnist", "test", batch_size=1000, limit=args.limit)
    images = np.concatenate([x.numpy() for x, _ in test])
    labels = np.concatenate([y.numpy() for _, y in test])

    model = _compile(models.cnn())
    start = time.time()
    model.fit(train, epochs=args.epochs, verbose=2)
    train_seconds = time.time() - start
    float_acc = _accuracy(model, test)
    float_bytes = _nbytes(model)
    rows = [{"method": "float32 (trained)", "accuracy": float_acc, "weight_bytes": float_bytes}]

    quantized = {}
    for name, fmt in OURS:
        qmodel, report = quantize_weights(model, fmt)
        quantized[name] = qmodel
        rows.append({"method": name, "accuracy": _accuracy(qmodel, test),
                     "weight_bytes": report.bytes_after})
        print(name, report, sep="\n")

    for mode in ("int8", "int4"):
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Layer Conv2D does not have a `quantize` method"
            clone.quantize(mode)
        done = [layer.name for layer in clone.layers if getattr(layer, "quantization_mode", None)]
        rows.append({"method": f"keras model.quantize('{mode}')", "accuracy": _accuracy(clone, test),
                     "weight_bytes": _nbytes(clone),
                     "note": f"Keras quantized {', '.join(done)}; Conv2D stays float32"})

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for name, target, options in [
            ("TFLite float32", model, {}),
            ("TFLite dynamic-range (Optimize.DEFAULT)", model, {"optimizations": [tf.lite.Optimize.DEFAULT]}),
            ("TFLite of tf_lowprec int8, per-channel", quantized["tf_lowprec int8, per-channel"], {}),
            ("TFLite of tf_lowprec int4, per-channel", quantized["tf_lowprec int4, per-channel"], {}),
        ]:
            size, acc = _tflite(target, tmp / "m.tflite", images, labels, **options)
            rows.append({"method": name, "accuracy": acc, "file_bytes": size})

    fields = ["method", "accuracy", "delta_pt", "weight_bytes", "file_bytes", "note"]
    for row in rows:
        row["delta_pt"] = round(100 * (row["accuracy"] - float_acc), 2)
        row["accuracy"] = round(row["accuracy"], 4)
    with open(out_dir / "ptq.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"Fashion-MNIST, tf_lowprec.models.cnn ({model.count_params()} params), "
        f"Adam 1e-3, batch {args.batch_size}, {args.epochs} epochs "
        f"({train_seconds:.0f} s), seed 0. Test accuracy on {len(images)} test images.",
        "",
        "| method | test accuracy | Δ vs float (pt) | weight bytes | file bytes | note |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['method']} | {100 * row['accuracy']:.2f}% | {row['delta_pt']:+.2f} | "
            f"{row.get('weight_bytes', '')} | {row.get('file_bytes', '')} | {row.get('note', '')} |"
        )
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
