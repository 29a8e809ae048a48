"""The HALP study (De Sa et al. 2018) at Fashion-MNIST scale, several seeds.

    nice -n 19 python examples/halp/halp_study.py                   # the study (see README)
    python examples/halp/halp_study.py --epochs 2 --limit 512 --test-limit 500 \\
        --seeds 0 --runs "SGD,HALP 8b T=1" --out /tmp/halp               # smoke

The structure of torchhalp's `examples/cifar10` / `ResNet18_results.ipynb`:
SGD vs SVRG vs HALP; a bits sweep (2, 3, 4, 6, 8 bits at T = 1 epoch) and a
T sweep (0.5, 1, 3 epochs at 8 bits). Every run of one seed starts from the
seed's initial weights and sees the seed's data order; SVRG and HALP use the
reference's constant learning rate 0.1, mu = 20 and weight decay 5e-4 (on
the weights), SGD the same rate and decay. The model is
`tf_lowprec.models.cnn(filters=(16, 32), dense_units=64)` (56,714 parameters)
on the first `--limit` Fashion-MNIST training images (the full gradient is
taken over the same images), evaluated on the test set after every epoch.

Writes to `--out`: `halp_study.csv` (one row per run, seed and epoch: training
loss (mean over the epoch's iterations) and accuracy, test loss and
accuracy, seconds), `summary.md` (mean ± sd over seeds of the final and best
test accuracy and of the training loss over the last 100 iterations, plus
paired differences to SVRG T=1), `curves_<group>.png`. Each run is
checkpointed after every epoch in `--checkpoints` (default
`<out>/checkpoints`, git-ignored) and resumes identically.
"""

import argparse
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tf_lowprec import data, models
from tf_lowprec.data.loader import normalizer
from tf_lowprec.experiments.results_io import read_csv, save_figure_atomic
from tf_lowprec.experiments.resumable import ResumableStudy, epoch_dataset
from tf_lowprec.experiments.seed_statistics import mean_sd, plot_band
from tf_lowprec.optimizers import HALP, SVRG
from tf_lowprec.training import FullGradientSnapshot, VarianceReduced

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
BITS = (8, 6, 4, 3, 2)
T_VALUES = ("0.5", "1", "3")
GROUPS = {
    "bits_sweep": ["SGD", "SVRG T=1"] + [f"HALP {b}b T=1" for b in BITS],
    "T_sweep": ["SVRG T=1"] + [f"HALP 8b T={t}" for t in T_VALUES],
}
REFERENCE = "SVRG T=1"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=16)
    p.add_argument("--limit", type=int, default=6400)
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument("--mu", type=float, default=20.0)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--runs", default="", help="comma-separated subset of run names")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    p.add_argument("--checkpoints", default=None, help="default: <out>/checkpoints")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    args.checkpoints = args.checkpoints or os.path.join(args.out, "checkpoints")
    return args


def run_table(args):
    """Name -> optimizer factory (`None`: plain SGD), in the order they are trained."""
    lr, mu, wd = args.learning_rate, args.mu, args.weight_decay

    def epochs(t):
        return f"{t}epoch" if t in ("0.5", "1") else f"{t}epochs"

    table = {"SGD": None, "SVRG T=1": lambda seed: SVRG(lr, T="1epoch", weight_decay=wd)}
    for bits in BITS:
        table[f"HALP {bits}b T=1"] = (lambda seed, bits=bits: HALP(
            lr, T="1epoch", mu=mu, bits=bits, seed=seed, weight_decay=wd))
    for t in T_VALUES:
        if t != "1":
            table[f"HALP 8b T={t}"] = (lambda seed, t=t: HALP(
                lr, T=epochs(t), mu=mu, bits=8, seed=seed, weight_decay=wd))
    if args.runs:
        wanted = [name.strip() for name in args.runs.split(",")]
        unknown = [n for n in wanted if n not in table]
        if unknown:
            raise ValueError(f"Unknown run names {unknown}; known: {list(table)}")
        table = {name: table[name] for name in wanted}
    return table


class Run:
    def __init__(self, args, make_optimizer, seed, full_data):
        self.seed = seed
        model = models.cnn((28, 28, 1), 10, filters=(16, 32), dense_units=64)
        self.callbacks = []
        if make_optimizer is None:
            optimizer = keras.optimizers.SGD(args.learning_rate, weight_decay=args.weight_decay)
        else:
            model = VarianceReduced(model)
            optimizer = make_optimizer(seed)
            self.callbacks = [FullGradientSnapshot(full_data)]
        self.model = model
        model.compile(optimizer=optimizer, loss=LOSS, metrics=["accuracy"])
        optimizer.build(model.trainable_variables)

    @property
    def variables(self):
        return list(self.model.variables) + list(self.model.optimizer.variables)


def train_epoch(args, x, y, test, normalize):
    def step(run, epoch):
        ds = epoch_dataset(x, y, args.batch_size, run.seed, epoch, normalize)
        start = time.perf_counter()
        history = run.model.fit(ds, initial_epoch=epoch, epochs=epoch + 1, verbose=0,
                                shuffle=False, callbacks=run.callbacks)
        seconds = time.perf_counter() - start
        result = run.model.evaluate(test, verbose=0, return_dict=True)
        loss = history.history["loss"][0]
        return {"train_loss": loss, "train_accuracy": history.history["accuracy"][0],
                "test_loss": result["loss"], "test_accuracy": result["accuracy"],
                "diverged": not math.isfinite(loss), "seconds": seconds}

    return step


def per_run_seed(rows, args):
    """`{(run, seed): stats}` for finished runs; the last-100-iteration loss is the mean of the
    per-epoch mean losses of the final `ceil(100 / steps_per_epoch)` epochs (equal-size batches)."""
    steps = math.ceil(args.limit / args.batch_size)
    last = max(1, math.ceil(100 / steps))
    stats = {}
    for key in dict.fromkeys((r["run"], int(r["seed"])) for r in rows):
        group = sorted((r for r in rows if (r["run"], int(r["seed"])) == key),
                       key=lambda r: int(r["epoch"]))
        if len(group) < args.epochs:
            continue
        group = group[:args.epochs]
        accuracy = [100 * float(r["test_accuracy"]) for r in group]
        stats[key] = {"final": accuracy[-1], "best": max(accuracy),
                      "last3": float(np.mean(accuracy[-3:])),
                      "loss": float(np.mean([float(r["train_loss"]) for r in group[-last:]]))}
    return stats, last * steps


def summary_markdown(rows, args):
    stats, iterations = per_run_seed(rows, args)
    names = list(dict.fromkeys(r["run"] for r in rows))
    lines = [
        (f"Fashion-MNIST, `cnn(filters=(16, 32), dense_units=64)`, first {args.limit} "
         f"training images, {args.epochs} epochs, batch {args.batch_size}, lr "
         f"{args.learning_rate}; mean ± sd over seeds (n). Δ: paired difference to "
         f"{REFERENCE} (same seed), mean ± sd."), "",
        (f"| run | n | final test acc (%) | best test acc (%) | mean acc, last 3 epochs (%) | "
         f"train loss, last {iterations} iters | Δ final acc vs SVRG (pt) | "
         "Δ train loss vs SVRG |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        seeds = sorted(s for (n, s) in stats if n == name)
        if not seeds:
            continue
        cell = [stats[(name, s)] for s in seeds]
        ref = [(stats[(name, s)], stats[(REFERENCE, s)]) for s in seeds
               if (REFERENCE, s) in stats]
        delta_acc = mean_sd([a["final"] - b["final"] for a, b in ref]) if ref else ""
        delta_loss = mean_sd([a["loss"] - b["loss"] for a, b in ref], digits=4) if ref else ""
        lines.append(
            f"| {name} | {len(seeds)} | {mean_sd([c['final'] for c in cell])} | "
            f"{mean_sd([c['best'] for c in cell])} | {mean_sd([c['last3'] for c in cell])} | "
            f"{mean_sd([c['loss'] for c in cell], digits=4)} | {delta_acc} | {delta_loss} |")
    return "\n".join(lines) + "\n"


def plot_group(rows, args, group, names, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in names if any(r["run"] == n for r in rows)]
    if not names:
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name in names:
        group_rows = [r for r in rows if r["run"] == name]
        for axis, column, scale in ((left, "train_loss", 1), (right, "test_accuracy", 100)):
            plot_band(axis, group_rows, column, name, scale, alpha=0.15)
    left.set_yscale("log")
    left.set_ylabel("training loss (epoch mean)")
    right.set_ylabel("test accuracy (%)")
    for axis in (left, right):
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    right.legend(fontsize="small")
    figure.suptitle(f"HALP study, {group}: Fashion-MNIST CNN, {args.limit} training images; "
                    "mean ± sd over seeds")
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)
    return path


def main(argv=None):
    args = parse_args(argv)
    x, y = data.load_numpy("fashion_mnist", "train", data_dir=args.data_dir)
    x, y = x[:args.limit], y[:args.limit]
    test = data.load("fashion_mnist", "test", 1000, limit=args.test_limit,
                     data_dir=args.data_dir)
    normalize = normalizer("fashion_mnist")
    full_data = tf.data.Dataset.from_tensor_slices((x, y)).batch(500).map(normalize)
    table = run_table(args)
    csv_path = os.path.join(args.out, "halp_study.csv")
    study = ResumableStudy(csv_path, args.checkpoints,
                           total_epochs=len(table) * len(args.seeds) * args.epochs,
                           progress=not args.no_progress)
    step = train_epoch(args, x, y, test, normalize)
    for seed in args.seeds:
        for name, make in table.items():
            study.train(name, seed, args.epochs,
                        lambda make=make, seed=seed: Run(args, make, seed, full_data), step)
    study.close()
    rows = read_csv(csv_path)
    for group, names in GROUPS.items():
        plot_group(rows, args, group, names, os.path.join(args.out, f"curves_{group}.png"))
    summary = summary_markdown(rows, args)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(summary)
    print(summary)
    return rows


if __name__ == "__main__":
    tf.config.experimental.enable_op_determinism()  # bit-identical resumes
    main()
