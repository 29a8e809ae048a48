"""Accuracy parity of 8-bit Adam and bfloat16 weights with stochastic rounding.

    nice -n 19 python examples/low_precision_memory/accuracy_study.py        # the study
    python examples/low_precision_memory/accuracy_study.py --epochs 1 --limit 512 \\
        --test-limit 500 --seeds 0 --out /tmp/lpm                              # smoke

Two tasks, five configurations, several seeds; every configuration of one
seed starts from the same initial weights (cast to bfloat16 for the bf16
runs) and sees the same data order:

* `fmnist_cnn`: `tf_lowprec.models.cnn(filters=(16, 32), dense_units=64)`
  (56,714 parameters) on the first `--limit` Fashion-MNIST training images,
  tested on the `--test-limit` first test images.
* `sequence`: a 2-layer transformer encoder (token + position embeddings
  of width 64, 4 heads of 16, feed-forward 128, post-LayerNorm, mean pool,
  Dense(3)) on a synthetic counting task: 24 tokens from {0..7}, the label
  is the most frequent of the tokens 1, 2, 3 (ties to the smaller). 20,000
  training and 5,000 test sequences from a fixed generator. (An LSTM is not
  an option for the bfloat16 runs: Keras's LSTM fails on CPU with
  bfloat16 variables, "Value for attr 'T' of bfloat16 is not in the list
  of allowed values".)

Configurations (all Adam, learning rate `--learning-rate` with a cosine
decay to 1% over the run, batch 128):

* `adam`: Keras Adam, float32 weights (the reference);
* `adam8bit`: `tf_lowprec.optimizers.Adam8bit` (block 256,
  `min_8bit_size=256`: these models are small, so only variables under
  256 entries, i.e. biases, norms and the first conv, keep float32 moments);
* `bf16_nearest`: bfloat16 variables (the "bfloat16" policy) and the same
  `Adam8bit`: its rule runs in float32 and each weight update is rounded
  to nearest bfloat16;
* `bf16_sr`: bfloat16 variables, `StochasticRounding(Adam8bit)`: 2 bytes
  of weights + ~2 bytes of state per parameter.

Keras's own Adam is no option for bfloat16 variables: it computes
`beta_2 ** t` in the variable's dtype, and 0.999 in bfloat16 is 1.0, so its
bias correction `sqrt(1 - beta_2 ** t)` is 0 and every update is exactly 0
(Keras 3.15; a smoke run of this script with it showed no learning at all).

Writes `--out/accuracy.csv` (one row per task, configuration, seed, epoch;
a finished run is skipped when the script is run again), `summary.md`
(final test accuracy mean ± sd over seeds, paired difference to `adam`,
bytes per parameter from `tf_lowprec.memory.report`), and prints each
configuration's memory report once.
"""

import argparse
import math
import os
import time

import keras
import numpy as np

from tf_lowprec import data, memory, models
from tf_lowprec.experiments.results_io import (
    read_csv,
    write_csv_atomic,
    write_text_atomic,
)
from tf_lowprec.optimizers import Adam8bit, StochasticRounding

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
CONFIGS = ("adam", "adam8bit", "bf16_nearest", "bf16_sr")
TASKS = ("fmnist_cnn", "sequence")
FIELDS = [
    "task",
    "config",
    "seed",
    "epoch",
    "train_loss",
    "test_loss",
    "test_accuracy",
    "seconds",
    "weight_bytes_per_param",
    "state_bytes_per_param",
]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument(
        "--limit", type=int, default=12000, help="Fashion-MNIST training images"
    )
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--sequence-train", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    return p.parse_args(argv)


def counting_task(n, seed, length=24, vocab=8):
    """Tokens in [0, vocab); label = argmax of the counts of tokens 1, 2, 3."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab, size=(n, length)).astype("int32")
    counts = np.stack([(x == t).sum(axis=1) for t in (1, 2, 3)], axis=1)
    return x, counts.argmax(axis=1).astype("int32")


def load_task(task, args):
    if task == "fmnist_cnn":
        x, y = data.load_numpy("fashion_mnist", "train", data_dir=args.data_dir)
        xt, yt = data.load_numpy("fashion_mnist", "test", data_dir=args.data_dir)
        x, y = x[: args.limit], y[: args.limit]
        if args.test_limit:
            xt, yt = xt[: args.test_limit], yt[: args.test_limit]
        def scale(a):
            return (a.astype("float32") / 255.0).reshape(-1, 28, 28, 1)

        return scale(x), y.astype("int32"), scale(xt), yt.astype("int32")
    x, y = counting_task(args.sequence_train, 0)
    test_n = args.test_limit or 5000
    xt, yt = counting_task(test_n, 1)
    return x, y, xt, yt


def build_model(task):
    if task == "fmnist_cnn":
        return models.cnn((28, 28, 1), 10, filters=(16, 32), dense_units=64)
    tokens = keras.Input((24,), dtype="int32")
    positions = keras.ops.arange(24)[None, :]
    x = keras.layers.Embedding(8, 64)(tokens)
    x = x + keras.layers.Embedding(24, 64)(positions)
    for _ in range(2):
        attended = keras.layers.MultiHeadAttention(4, 16)(x, x)
        x = keras.layers.LayerNormalization()(x + attended)
        hidden = keras.layers.Dense(128, activation="relu")(x)
        x = keras.layers.LayerNormalization()(x + keras.layers.Dense(64)(hidden))
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, keras.layers.Dense(3)(x))


def make_optimizer(config, schedule):
    if config == "adam":
        return keras.optimizers.Adam(schedule)
    optimizer = Adam8bit(schedule, min_8bit_size=256)
    if config == "bf16_sr":
        return StochasticRounding(optimizer, seed=17)
    return optimizer


def run(task, config, seed, args, arrays, writer):
    x, y, xt, yt = arrays
    keras.utils.set_random_seed(seed)
    reference = build_model(task)  # float32 initial weights of this seed
    initial = reference.get_weights()
    bf16 = config.startswith("bf16")
    keras.mixed_precision.set_global_policy("bfloat16" if bf16 else "float32")
    try:
        model = build_model(task)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.set_weights(initial)
    steps = args.epochs * math.ceil(len(x) / args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        args.learning_rate, steps, alpha=0.01
    )
    optimizer = make_optimizer(config, schedule)
    model.compile(optimizer=optimizer, loss=LOSS, metrics=["accuracy"])
    report = memory.report(model, optimizer)
    print(f"\n[{task} / {config}] memory report\n{report}", flush=True)
    order = np.random.default_rng(seed)
    for epoch in range(args.epochs):
        perm = order.permutation(len(x))
        start = time.perf_counter()
        history = model.fit(
            x[perm],
            y[perm],
            batch_size=args.batch_size,
            epochs=1,
            verbose=0,
            shuffle=False,
        )
        seconds = time.perf_counter() - start
        result = model.evaluate(xt, yt, batch_size=512, verbose=0, return_dict=True)
        row = {
            "task": task,
            "config": config,
            "seed": seed,
            "epoch": epoch + 1,
            "train_loss": history.history["loss"][0],
            "test_loss": result["loss"],
            "test_accuracy": result["accuracy"],
            "seconds": round(seconds, 1),
            "weight_bytes_per_param": round(report.per_parameter("weights"), 3),
            "state_bytes_per_param": round(report.per_parameter("optimizer"), 3),
        }
        writer(row)
        print(
            f"{task:10} {config:17} seed {seed} epoch {epoch + 1}: "
            f"test acc {row['test_accuracy']:.4f} loss {row['test_loss']:.4f} ({seconds:.0f} s)",
            flush=True,
        )


def summarize(rows, args):
    lines = [
        "# Low-precision memory study: accuracy",
        "",
        (
            f"{args.epochs} epochs, seeds {args.seeds}, Adam lr {args.learning_rate} "
            "(cosine decay to 1%), batch 128."
        ),
        "",
        (
            "| task | config | weight B/param | state B/param | final test accuracy (%) "
            "| paired diff vs adam (pt) | final test loss |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    final = {}
    for r in rows:
        key = (r["task"], r["config"], int(r["seed"]))
        if int(r["epoch"]) == args.epochs:
            final[key] = r
    for task in TASKS:
        for config in CONFIGS:
            runs = [final[k] for k in sorted(final) if k[0] == task and k[1] == config]
            if not runs:
                continue
            acc = np.array([100 * float(r["test_accuracy"]) for r in runs])
            loss = np.array([float(r["test_loss"]) for r in runs])
            diffs = [
                100
                * (
                    float(final[k]["test_accuracy"])
                    - float(final[(task, "adam", k[2])]["test_accuracy"])
                )
                for k in sorted(final)
                if k[0] == task and k[1] == config and (task, "adam", k[2]) in final
            ]

            def sd(v, digits=2):
                return f" ± {np.std(v, ddof=1):.{digits}f}" if len(v) > 1 else ""

            diff = f"{np.mean(diffs):+.2f}{sd(np.array(diffs))}" if diffs else "-"
            lines.append(
                f"| {task} | {config} | {runs[0]['weight_bytes_per_param']} "
                f"| {runs[0]['state_bytes_per_param']} | {acc.mean():.2f}{sd(acc)} "
                f"| {diff} | {loss.mean():.4f}{sd(loss, 4)} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "accuracy.csv")
    rows = read_csv(path) if os.path.exists(path) else []
    done = {
        (r["task"], r["config"], int(r["seed"]))
        for r in rows
        if int(r["epoch"]) == args.epochs
    }

    def writer(row):
        rows.append(row)
        write_csv_atomic(path, rows, FIELDS)

    for task in args.tasks.split(","):
        arrays = load_task(task, args)
        for seed in args.seeds:
            for config in args.configs.split(","):
                if (task, config, seed) in done:
                    continue
                rows[:] = [
                    r
                    for r in rows
                    if (r["task"], r["config"], int(r["seed"])) != (task, config, seed)
                ]
                run(task, config, seed, args, arrays, writer)
    summary = summarize(rows, args)
    write_text_atomic(os.path.join(args.out, "summary.md"), summary)
    print(summary)


if __name__ == "__main__":
    main()
