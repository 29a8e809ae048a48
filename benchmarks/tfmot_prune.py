"""TFMOT baseline for benchmarks/pruning_comparison.py: one run, tf_keras, separate process.

    python benchmarks/tfmot_prune.py --init-weights init.npz --out-json run.json \
        --final-sparsity 0.9 --end-step 700 --frequency 50

Needs the `[tfmot]` extra (tensorflow-model-optimization + tf-keras). TFMOT
switches `tf.keras` to tf_keras for the whole process, so this script runs
alone in its own interpreter (`pruning_comparison.py` and `pruning_timing.py`
launch it with their `--tfmot-python`: a virtual environment with tf_lowprec
and its `[tfmot]` extra installed, `pip install -e ".[tfmot]"`); it never
shares a process with Keras 3 models. Only `tf_lowprec.data` (tf.data + numpy, no
Keras) is imported from tf_lowprec, and the training batches come from
`tfmot_shared_data.fixed_order_train`, as in the Keras 3 runs: the same
batches in the same order.

The model is the `tf_lowprec.models.cnn` layout rebuilt with tf_keras and
started from the same initial weights (`--init-weights`, written by the
comparison from the Keras 3 model). Without `--final-sparsity` it trains the
plain model (the tf_keras SGD baseline for the time ratio).

Writes a JSON list with one row per epoch (`test_accuracy`, `seconds`, ...);
the last row adds `kernel_sparsity` and `sparsity/<layer>` measured on the
stripped model.
"""

import argparse
import json
import os
import sys
import time

# TFMOT first: it decides what tf.keras means in this process.
import tensorflow_model_optimization as tfmot

# isort: split
import numpy as np
import tf_keras
from harness import interleave, paired_summary, step_timer  # no Keras inside
from tfmot_shared_data import fixed_order_train

from tf_lowprec import data  # tf.data + numpy only; installed in this venv too


class _EpochTimer(tf_keras.callbacks.Callback):
    """Seconds from epoch begin to the last training batch (as tf_lowprec's EpochTimer)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._end = time.perf_counter(), None

    def on_train_batch_end(self, batch, logs=None):
        self._end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["seconds"] = (self._end or time.perf_counter()) - self._start


def build_cnn(input_shape, num_classes, filters=(32, 64), dense_units=128):
    """tf_keras copy of tf_lowprec.models.cnn (same layers, names and order)."""
    layers = tf_keras.layers
    inputs = tf_keras.Input(shape=input_shape, name="image")
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, 3, name=f"conv_{i}")(x)
        x = layers.ReLU(name=f"relu_{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, name="dense")(x)
    x = layers.ReLU(name="dense_relu")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return tf_keras.Model(inputs, outputs, name="cnn")


def _compiled(model, learning_rate, momentum=0.0):
    model.compile(
        optimizer=tf_keras.optimizers.SGD(learning_rate, momentum=momentum),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def time_steps(args):
    """Seconds per training step of tf_keras SGD and of TFMOT pruning, interleaved.

    Both models train on the same `--time-steps` batches (one `fit` epoch per
    timed call); after one warm-up call each, `--time-repeats` rounds
    alternate between them (`harness.interleave`, so load from other
    processes hits both alike). Writes `{name: harness.paired_summary row}`
    (baseline tf_keras SGD) to `--out-json`.
    """
    meta = data.info(args.dataset)
    train, _ = fixed_order_train(args.dataset, args.batch_size, args.seed,
                                 args.time_steps * args.batch_size)
    train = train.cache()
    with np.load(args.init_weights) as f:
        weights = [f[f"arr_{i}"] for i in range(len(f.files))]
    plain, base = (build_cnn(meta.input_shape, meta.num_classes) for _ in range(2))
    plain.set_weights(weights)
    base.set_weights(weights)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=args.initial_sparsity, final_sparsity=args.final_sparsity or 0.9,
        begin_step=args.begin_step, end_step=args.end_step, power=args.power,
        frequency=args.frequency)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(base, pruning_schedule=schedule)
    runs = {"tf_keras SGD": (_compiled(plain, args.learning_rate, args.momentum), []),
            "TFMOT": (_compiled(pruned, args.learning_rate, args.momentum),
                      [tfmot.sparsity.keras.UpdatePruningStep()])}
    timers = {
        name: step_timer(lambda model=model, callbacks=callbacks: model.fit(
            train, epochs=1, verbose=0, callbacks=callbacks).history["loss"][-1],
            units=args.time_steps)
        for name, (model, callbacks) in runs.items()
    }
    summary = paired_summary(interleave(timers, args.time_repeats, warmup=1), "tf_keras SGD")
    with open(args.out_json, "w") as f:
        json.dump({row["variant"]: row for row in summary}, f)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init-weights", required=True)
    parser.add_argument("--out-json", required=True)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--final-sparsity", type=float, default=None)
    parser.add_argument("--initial-sparsity", type=float, default=0.0)
    parser.add_argument("--begin-step", type=int, default=0)
    parser.add_argument("--end-step", type=int, default=1000)
    parser.add_argument("--power", type=float, default=3)
    parser.add_argument("--frequency", type=int, default=100)
    parser.add_argument("--time-steps", type=int, default=0,
                        help="instead of training: time this many steps of tf_keras SGD "
                             "and of TFMOT pruning, interleaved (see time_steps)")
    parser.add_argument("--time-repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.time_steps:
        return time_steps(args)

    meta = data.info(args.dataset)
    tf_keras.utils.set_random_seed(args.seed)
    train, _ = fixed_order_train(args.dataset, args.batch_size, args.seed, args.limit)
    test = data.load(args.dataset, "test", 1000)
    tf_keras.utils.set_random_seed(args.seed)

    model = build_cnn(meta.input_shape, meta.num_classes)
    with np.load(args.init_weights) as f:
        model.set_weights([f[f"arr_{i}"] for i in range(len(f.files))])
    callbacks = [_EpochTimer()]
    if args.final_sparsity is not None:
        schedule = tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=args.initial_sparsity, final_sparsity=args.final_sparsity,
            begin_step=args.begin_step, end_step=args.end_step, power=args.power,
            frequency=args.frequency)
        model = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
        callbacks.insert(0, tfmot.sparsity.keras.UpdatePruningStep())
    _compiled(model, args.learning_rate, args.momentum)
    history = model.fit(train, validation_data=test, epochs=args.epochs, callbacks=callbacks,
                        verbose=2)

    rows = []
    for i in range(len(history.history["loss"])):
        rows.append({
            "epoch": i + 1,
            "train_loss": history.history["loss"][i],
            "train_accuracy": history.history["accuracy"][i],
            "test_loss": history.history["val_loss"][i],
            "test_accuracy": history.history["val_accuracy"][i],
            "seconds": history.history["seconds"][i],
        })
    stripped = (tfmot.sparsity.keras.strip_pruning(model)
                if args.final_sparsity is not None else model)
    zeros = total = 0
    for layer in stripped.layers:
        kernels = [w for w in layer.get_weights() if w.ndim >= 2]
        if kernels:
            z = sum(int(np.sum(k == 0)) for k in kernels)
            n = sum(k.size for k in kernels)
            rows[-1][f"sparsity/{layer.name}"] = z / n
            zeros, total = zeros + z, total + n
    rows[-1]["kernel_sparsity"] = zeros / total
    stripped.compile(loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                     metrics=["accuracy"])
    rows[-1]["stripped_test_accuracy"] = float(stripped.evaluate(test, verbose=0)[1])
    rows[-1]["tf_keras_version"] = tf_keras.__version__
    rows[-1]["tfmot_version"] = tfmot.__version__
    tmp = args.out_json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rows, f)
    os.replace(tmp, args.out_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
