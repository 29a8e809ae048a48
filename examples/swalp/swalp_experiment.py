"""SWALP vs SGD-LP vs SWA-FP vs SGD-FP (Yang et al., 2019), several seeds, two averaging rates.

    nice -n 19 python examples/swalp/swalp_experiment.py      # the study (see README)
    python examples/swalp/swalp_experiment.py --dataset cifar10 --model vgg16_bn \\
        --epochs 300 --swa-start 200 --lr 0.05 --swa-lr 0.01 --limit 50000 \\
        --averages-per-epoch 1                             # the paper's CIFAR setup

Two training runs per seed, as in SWALP's `train.py`, each on the SWALP
learning-rate schedule (`PaperPiecewise(lr, total=swa_start,
final_learning_rate=swa_lr)`, per epoch):

* `fp`: full-precision SGD with momentum 0.9. Its model after `swa_start`
  epochs is **SGD-FP**; the weight average of the rest of the run **SWA-FP**.
* `lp`: `tf_lowprec.recipes.swalp(..., average=False)`: 8-bit block
  floating point weights, gradients, momentum and accumulator, 8-bit
  activations and errors, stochastic rounding. After `swa_start` epochs:
  **SGD-LP**; its weight average: **SWALP**, evaluated as in the paper with
  full-precision activations (the averaged weights copied into the
  unquantized model).

Each run keeps two averages of the same trajectory, from the end of epoch
`swa_start` on: once per epoch (SWALP's rate; the first snapshot is the model
after epoch `swa_start`) and `--averages-per-epoch` times per epoch (evenly
spaced steps). Both are evaluated every `--eval-averages-every` epochs of the
averaging phase and after the last epoch.

Writes to `--out`: `runs.csv` (one row per run, seed and epoch: learning
rate, training loss and accuracy, test loss and accuracy of the training
("raw") weights and of both averages, seconds), `summary.csv` (one row per
run and seed), `summary.md` (mean ± sd over seeds) and `curves.png`. Every run
is checkpointed after each epoch in `--checkpoints` (default
`<out>/checkpoints`, git-ignored) and resumes identically.
"""

import argparse
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tf_lowprec import data, models
from tf_lowprec.data.loader import normalizer
from tf_lowprec.experiments.results_io import (
    read_csv,
    save_figure_atomic,
    write_csv_atomic,
)
from tf_lowprec.experiments.resumable import ResumableStudy, epoch_dataset
from tf_lowprec.experiments.seed_statistics import mean_sd, plot_band
from tf_lowprec.recipes import swalp
from tf_lowprec.training import recompute_batchnorm_statistics

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
AVERAGES = ("epoch", "fraction")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--model", default="cnn", choices=["cnn", "vgg16", "vgg16_bn"])
    p.add_argument("--width", type=float, default=1.0, help="VGG width multiplier")
    p.add_argument("--epochs", type=int, default=16)
    p.add_argument("--swa-start", type=int, default=6)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--swa-lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=None,
                   help="Keras decoupled weight decay (paper: 5e-4 coupled ~ 5e-3 here)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--word-length", type=int, default=8)
    p.add_argument("--averages-per-epoch", type=int, default=4,
                   help="snapshots per epoch of the second average")
    p.add_argument("--eval-averages-every", type=int, default=1,
                   help="evaluate the averages every this many epochs of the averaging "
                        "phase (and always after the last epoch)")
    p.add_argument("--limit", type=int, default=12800, help="training subset size")
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--precisions", nargs="+", default=["fp", "lp"], choices=["fp", "lp"])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                 "fashion_mnist"))
    p.add_argument("--checkpoints", default=None, help="default: <out>/checkpoints")
    p.add_argument("--verbose", type=int, default=1, help="0: no progress bar")
    args = p.parse_args(argv)
    if not 0 < args.swa_start < args.epochs:
        p.error(f"--swa-start must be in [1, epochs). Received: {args.swa_start}")
    if args.averages_per_epoch < 1:
        p.error(f"--averages-per-epoch must be >= 1. Received: {args.averages_per_epoch}")
    args.checkpoints = args.checkpoints or os.path.join(args.out, "checkpoints")
    return args


def build_model(args):
    meta = data.info(args.dataset)
    if args.model == "cnn":
        return models.cnn(meta.input_shape, meta.num_classes)
    return models.vgg16(meta.input_shape, meta.num_classes,
                        batch_norm=args.model == "vgg16_bn", width_multiplier=args.width)


class Averages(keras.callbacks.Callback):
    """Two running weight averages of one trajectory: per epoch and per fraction of an epoch.

    `avg_{n+1} = avg_n + (w - avg_n) / (n + 1)` (SWA's running mean). The
    per-epoch average takes the weights at the end of every epoch `e`
    (1-based) with `e >= swa_start`; the other one every `steps / k` steps
    from the end of epoch `swa_start` on. Averages and counts are Keras
    variables, so they are part of the run's checkpoint.
    """

    def __init__(self, weights, steps_per_epoch, swa_start, per_epoch):
        super().__init__()
        self.weights = list(weights)
        self.start_step = steps_per_epoch * swa_start
        self.every = max(1, steps_per_epoch // per_epoch)
        self.steps_per_epoch = steps_per_epoch
        self.averages = {k: [keras.Variable(np.zeros(w.shape, "float32"), trainable=False,
                                            name=f"average_{k}") for w in self.weights]
                         for k in AVERAGES}
        self.counts = {k: keras.Variable(0, dtype="int64", trainable=False, name=f"count_{k}")
                       for k in AVERAGES}

    @property
    def variables(self):
        return [v for k in AVERAGES for v in self.averages[k]] + [self.counts[k] for k in AVERAGES]

    def _update(self, kind):
        n = float(self.counts[kind].numpy())
        for average, weight in zip(self.averages[kind], self.weights):
            average.assign(average + (weight - average) / (n + 1.0))
        self.counts[kind].assign_add(1)

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step >= self.start_step and (step - self.start_step) % self.every == 0:
            self._update("fraction")
        if step >= self.start_step and step % self.steps_per_epoch == 0:
            self._update("epoch")


class Run:
    def __init__(self, args, precision, seed, x):
        steps = -(-len(x) // args.batch_size)
        setup = swalp(build_model(args), steps_per_epoch=steps, swa_start=args.swa_start,
                      learning_rate=args.lr, swa_lr=args.swa_lr,
                      weight_decay=args.weight_decay,
                      word_length=args.word_length if precision == "lp" else None,
                      average=False, seed=seed)
        self.seed = seed
        self.model = setup.model
        self.model.compile(setup.optimizer, LOSS, metrics=["accuracy"])
        self.model.optimizer.build(self.model.trainable_variables)
        self.averages = Averages(self.model.trainable_variables, steps, args.swa_start,
                                 args.averages_per_epoch)
        # The paper evaluates averages with full-precision activations.
        self.fp_model = build_model(args)
        self.fp_model.compile(loss=LOSS, metrics=["accuracy"])

    @property
    def variables(self):
        return (list(self.model.variables) + list(self.model.optimizer.variables)
                + self.averages.variables)

    def evaluate_average(self, kind, test, bn_data):
        for target, average in zip(self.fp_model.trainable_variables,
                                   self.averages.averages[kind]):
            target.assign(average)
        recompute_batchnorm_statistics(self.fp_model, bn_data)
        return self.fp_model.evaluate(test, verbose=0, return_dict=True)


def train_epoch(args, x, y, test, normalize):
    def step(run, epoch):
        ds = epoch_dataset(x, y, args.batch_size, run.seed, epoch, normalize)
        rate = float(keras.ops.convert_to_numpy(run.model.optimizer.learning_rate))
        start = time.perf_counter()
        history = run.model.fit(ds, initial_epoch=epoch, epochs=epoch + 1, verbose=0,
                                shuffle=False, callbacks=[run.averages])
        seconds = time.perf_counter() - start
        raw = run.model.evaluate(test, verbose=0, return_dict=True)
        row = {"lr": rate, "train_loss": history.history["loss"][0],
               "train_accuracy": history.history["accuracy"][0],
               "raw_test_loss": raw["loss"], "raw_test_accuracy": raw["accuracy"]}
        for kind in AVERAGES:
            count = int(run.averages.counts[kind].numpy())
            row[f"swa_{kind}_num_averaged"] = count
            due = (epoch + 1 - args.swa_start) % args.eval_averages_every == 0
            if count and (due or epoch + 1 == args.epochs):
                result = run.evaluate_average(kind, test, ds)
                row[f"swa_{kind}_test_loss"] = result["loss"]
                row[f"swa_{kind}_test_accuracy"] = result["accuracy"]
            else:
                row[f"swa_{kind}_test_loss"] = row[f"swa_{kind}_test_accuracy"] = ""
        row["seconds"] = seconds
        return row

    return step


def _error(accuracy):
    return 100.0 * (1.0 - float(accuracy))


def summarize(rows, args):
    """Per seed: the paper's four numbers (test error %) and the end-of-run raw model."""
    per_seed = []
    for precision in args.precisions:
        for seed in sorted({int(r["seed"]) for r in rows}):
            group = sorted((r for r in rows if r["run"] == precision and int(r["seed"]) == seed),
                           key=lambda r: int(r["epoch"]))
            if len(group) < args.epochs:
                continue
            final = group[args.epochs - 1]
            per_seed.append({
                "run": precision, "seed": seed,
                "sgd_test_error_at_swa_start": _error(group[args.swa_start - 1]["raw_test_accuracy"]),
                "sgd_test_error_at_end": _error(final["raw_test_accuracy"]),
                "swa_epoch_test_error": _error(final["swa_epoch_test_accuracy"]),
                "swa_fraction_test_error": _error(final["swa_fraction_test_accuracy"]),
                "swa_epoch_snapshots": int(final["swa_epoch_num_averaged"]),
                "swa_fraction_snapshots": int(final["swa_fraction_num_averaged"]),
                "seconds": sum(float(r["seconds"]) for r in group),
            })
    return per_seed


def summary_markdown(per_seed, args):
    columns = {}
    for r in per_seed:
        label = "FP" if r["run"] == "fp" else "LP"
        swa = "SWA-FP" if label == "FP" else "SWALP"
        columns.setdefault(f"SGD-{label}", []).append(r["sgd_test_error_at_swa_start"])
        columns.setdefault(f"{swa} (1/epoch)", []).append(r["swa_epoch_test_error"])
        columns.setdefault(f"{swa} ({args.averages_per_epoch}/epoch)", []).append(
            r["swa_fraction_test_error"])
        columns.setdefault(f"SGD-{label} at epoch {args.epochs}", []).append(
            r["sgd_test_error_at_end"])
    seeds = sorted({r["seed"] for r in per_seed})
    lines = [(f"Test error (%), mean ± sd over seeds {seeds}; {args.dataset} {args.model}, "
              f"{args.limit} training images, {args.epochs} epochs, averaging after epoch "
              f"{args.swa_start}."), "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
             "| " + " | ".join(mean_sd(v) for v in columns.values()) + " |"]
    # paired differences per seed (same seed = same initial weights and data order)
    by = {(r["run"], r["seed"]): r for r in per_seed}
    paired = []
    for seed in seeds:
        fp, lp = by.get(("fp", seed)), by.get(("lp", seed))
        if fp and lp:
            paired.append({
                "SWA-FP − SGD-FP": fp["swa_epoch_test_error"] - fp["sgd_test_error_at_swa_start"],
                "SGD-LP − SGD-FP": lp["sgd_test_error_at_swa_start"]
                - fp["sgd_test_error_at_swa_start"],
                "SWALP − SGD-LP": lp["swa_epoch_test_error"] - lp["sgd_test_error_at_swa_start"],
                "SWALP − SGD-FP": lp["swa_epoch_test_error"] - fp["sgd_test_error_at_swa_start"],
                f"SWALP ({args.averages_per_epoch}/epoch) − SGD-FP":
                    lp["swa_fraction_test_error"] - fp["sgd_test_error_at_swa_start"],
            })
    if paired:
        keys = list(paired[0])
        lines += ["", "Paired differences per seed (pt of test error, mean ± sd):", "",
                  "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys),
                  "| " + " | ".join(mean_sd([p[k] for p in paired]) for k in keys) + " |"]
    return "\n".join(lines) + "\n"


def plot(rows, args, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    curves = [("raw_test_accuracy", "SGD-{}"), ("swa_epoch_test_accuracy", "{} avg 1/epoch"),
              ("swa_fraction_test_accuracy", "{} avg " + f"{args.averages_per_epoch}/epoch")]
    for precision in args.precisions:
        label = "FP" if precision == "fp" else "LP"
        for column, name in curves:
            errors = [{"epoch": r["epoch"],
                       "error": _error(r[column]) if r.get(column, "") != "" else ""}
                      for r in rows if r["run"] == precision]
            plot_band(axis, errors, "error", name.format(label),
                      style="-" if precision == "fp" else "--", alpha=0.15)
    axis.axvline(args.swa_start, color="grey", lw=0.8)
    axis.set_xlabel("epoch")
    axis.set_ylabel("test error (%), mean ± sd over seeds")
    top = max((_error(r["raw_test_accuracy"]) for r in rows
               if int(r["epoch"]) >= max(1, args.swa_start - 2)), default=None)
    if top is not None:
        axis.set_ylim(top=top + 0.5)
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    axis.set_title(f"{args.dataset} {args.model}: SWALP schedule, averaging after epoch "
                   f"{args.swa_start}")
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def main(argv=None):
    args = parse_args(argv)
    x, y = data.load_numpy(args.dataset, "train", data_dir=args.data_dir)
    x, y = x[:args.limit], y[:args.limit]
    test = data.load(args.dataset, "test", 500, limit=args.test_limit, data_dir=args.data_dir)
    normalize = normalizer(args.dataset)
    csv_path = os.path.join(args.out, "runs.csv")
    study = ResumableStudy(csv_path, args.checkpoints,
                           total_epochs=len(args.seeds) * len(args.precisions) * args.epochs,
                           progress=args.verbose > 0)
    step = train_epoch(args, x, y, test, normalize)
    for seed in args.seeds:
        for precision in args.precisions:
            study.train(precision, seed, args.epochs,
                        lambda p=precision, s=seed: Run(args, p, s, x), step)
    study.close()
    rows = read_csv(csv_path)
    per_seed = summarize(rows, args)
    write_csv_atomic(os.path.join(args.out, "summary.csv"), per_seed)
    table = summary_markdown(per_seed, args)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(table)
    plot(rows, args, os.path.join(args.out, "curves.png"))
    print(table)
    return rows


if __name__ == "__main__":
    tf.config.experimental.enable_op_determinism()  # bit-identical resumes
    main()
