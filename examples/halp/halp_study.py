"""The HALP study (De Sa et al. 2018, ResNet-18/CIFAR-10) at Fashion-MNIST scale.

    nice -n 10 python examples/halp/halp_study.py                 # ~25 min, 2 CPU cores
    python examples/halp/halp_study.py --epochs 1 --limit 1280 --out /tmp/halp   # smoke

Same structure as torchhalp's `examples/cifar10` and `ResNet18_results.ipynb`:
SGD vs SVRG vs 8-bit HALP; a T sweep (0.5, 1, 3 epochs); a bits sweep
(2, 3, 4, 6, 8 at T = 1 epoch). Every run starts from the same initial
weights and sees the same data order; SVRG and HALP use the reference's
constant learning rate (0.1), mu = 20 and weight decay 5e-4 (on the weights;
one extra run puts it on the offset, as torchhalp does). The model is
`tf_lowprec.models.cnn(filters=(16, 32), dense_units=64)` (56,714 parameters)
trained on the first `--limit` Fashion-MNIST training images and evaluated on
the full test set after every epoch.

Writes to `--out`:
* `halp_study.csv`: one row per run per epoch (test accuracy, loss, time,
  snapshots taken, seconds spent in full-gradient passes).
* `iterations/<run>.csv`: the training loss of every iteration.
* `loss_and_accuracy_<group>.png`: running-mean training loss over
  iterations and test accuracy per epoch, for the groups `baseline`,
  `T_sweep` and `bits_sweep` (the notebook's figures).
* `summary.md`: the final-epoch table.

Runs are executed in order of importance and appended to the CSV as each
finishes; started again, the script skips runs already there.
"""

import argparse
import os
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from tf_lowprec import data, models  # noqa: E402
from tf_lowprec.experiments.results_io import read_csv  # noqa: E402
from tf_lowprec.experiments.results_io import save_figure_atomic  # noqa: E402
from tf_lowprec.experiments.results_io import write_csv_atomic  # noqa: E402
from tf_lowprec.experiments.run_grid import run_grid  # noqa: E402
from tf_lowprec.experiments.train_run import train_and_evaluate  # noqa: E402
from tf_lowprec.optimizers import HALP, SVRG  # noqa: E402
from tf_lowprec.training import FullGradientSnapshot, VarianceReduced  # noqa: E402

GROUPS = {
    "baseline": ["SGD", "SGD+momentum", "SVRG T=0.5", "HALP 8b T=0.5"],
    "T_sweep": ["SVRG T=0.5", "SVRG T=1", "HALP 8b T=0.5", "HALP 8b T=1", "HALP 8b T=3"],
    "bits_sweep": ["SVRG T=1", "HALP 8b T=1", "HALP 6b T=1", "HALP 4b T=1",
                   "HALP 3b T=1", "HALP 2b T=1"],
}


class IterationLoss(keras.callbacks.Callback):
    """Per-iteration training loss, recovered from Keras's running epoch mean."""

    def __init__(self):
        super().__init__()
        self.losses = []

    def on_epoch_begin(self, epoch, logs=None):
        self._mean, self._count = 0.0, 0

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        count = self._count + 1
        self.losses.append(count * mean - self._count * self._mean)
        self._mean, self._count = mean, count


def runs(args):
    """Name -> (optimizer factory, variance reduced?), most important first."""
    lr, mu, wd = args.learning_rate, args.mu, args.weight_decay
    steps = args.limit // args.batch_size
    table = {
        "SGD": (lambda: keras.optimizers.SGD(lr, weight_decay=wd), False),
        "SVRG T=0.5": (lambda: SVRG(lr, T="0.5epoch", weight_decay=wd), True),
        "HALP 8b T=0.5": (lambda: HALP(lr, T="0.5epoch", mu=mu, bits=8, seed=1,
                                       weight_decay=wd), True),
        "HALP 8b T=1": (lambda: HALP(lr, T="1epoch", mu=mu, bits=8, seed=1,
                                     weight_decay=wd), True),
        "HALP 2b T=1": (lambda: HALP(lr, T="1epoch", mu=mu, bits=2, seed=1,
                                     weight_decay=wd), True),
        "HALP 4b T=1": (lambda: HALP(lr, T="1epoch", mu=mu, bits=4, seed=1,
                                     weight_decay=wd), True),
        "HALP 8b T=3": (lambda: HALP(lr, T="3epochs", mu=mu, bits=8, seed=1,
                                     weight_decay=wd), True),
        "SVRG T=1": (lambda: SVRG(lr, T="1epoch", weight_decay=wd), True),
        "HALP 3b T=1": (lambda: HALP(lr, T="1epoch", mu=mu, bits=3, seed=1,
                                     weight_decay=wd), True),
        "HALP 6b T=1": (lambda: HALP(lr, T="1epoch", mu=mu, bits=6, seed=1,
                                     weight_decay=wd), True),
        # The reference SGD baseline: momentum 0.9, lr divided by 10 at 2/3.
        "SGD+momentum": (lambda: keras.optimizers.SGD(
            keras.optimizers.schedules.PiecewiseConstantDecay(
                [steps * (2 * args.epochs // 3)], [lr, lr / 10]),
            momentum=0.9, weight_decay=wd), False),
        # torchhalp's weight decay acts on the offset z, not on the weights.
        "HALP 8b T=0.5 decay-on-z": (lambda: HALP(
            lr, T="0.5epoch", mu=mu, bits=8, seed=1, weight_decay=wd,
            decay_on="offset"), True),
    }
    if args.runs:
        wanted = [name.strip() for name in args.runs.split(",")]
        table = {name: table[name] for name in wanted}
    return table


def make_run(args, name, make_optimizer, variance_reduced):
    def build():
        model = models.cnn((28, 28, 1), 10, filters=(16, 32), dense_units=64)
        return VarianceReduced(model) if variance_reduced else model

    def run():
        train = data.load("fashion_mnist", "train", args.batch_size, seed=args.seed,
                          limit=args.limit)
        test = data.load("fashion_mnist", "test", 1000)
        iterations = IterationLoss()
        callbacks = [iterations]
        snapshot = None
        if variance_reduced:
            snapshot = FullGradientSnapshot(train)
            callbacks.append(snapshot)
        optimizer = make_optimizer()
        _, rows = train_and_evaluate(build, optimizer, train, test, epochs=args.epochs,
                                     seed=args.seed, callbacks=callbacks, verbose=0)
        for row in rows:
            row.update({
                "optimizer": type(optimizer).__name__,
                "T": getattr(optimizer, "T", ""),
                "bits": getattr(optimizer, "bits", 32 if variance_reduced else ""),
                "mu": getattr(optimizer, "mu", ""),
                "snapshots": snapshot.snapshots if snapshot else 0,
                "snapshot_seconds_total": snapshot.seconds if snapshot else 0.0,
            })
        write_csv_atomic(
            os.path.join(args.out, "iterations", f"{_slug(name)}.csv"),
            [{"iteration": i + 1, "loss": loss} for i, loss in enumerate(iterations.losses)],
        )
        print(f"{name}: final test accuracy {rows[-1]['test_accuracy']:.4f}", flush=True)
        return rows

    return run


def _slug(name):
    return name.replace(" ", "_").replace("=", "").replace("+", "_")


def running_mean(values, window):
    values = np.asarray(values, float)
    if len(values) < window:
        window = max(1, len(values))
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def plot_group(args, rows, group, names):
    import matplotlib.pyplot as plt

    names = [n for n in names if any(r["run"] == n for r in rows)]
    if not names:
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name in names:
        losses = [float(r["loss"]) for r in read_csv(
            os.path.join(args.out, "iterations", f"{_slug(name)}.csv"))]
        smooth = running_mean(losses, args.window)
        left.plot(np.arange(len(smooth)) + args.window, smooth, label=name)
        epochs = sorted((r for r in rows if r["run"] == name), key=lambda r: int(r["epoch"]))
        right.plot([int(r["epoch"]) for r in epochs],
                   [100 * float(r["test_accuracy"]) for r in epochs], marker="o", label=name)
    left.set_yscale("log")
    left.set_xlabel("iteration")
    left.set_ylabel(f"training loss (running mean, {args.window} iterations)")
    right.set_xlabel("epoch")
    right.set_ylabel("test accuracy (%)")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    right.legend(fontsize="small")
    figure.suptitle(f"Fashion-MNIST CNN, {args.limit} training images: {group}")
    figure.tight_layout()
    path = os.path.join(args.out, f"loss_and_accuracy_{group}.png")
    save_figure_atomic(figure, path)
    plt.close(figure)
    return path


def summary(args, rows):
    lines = [
        "| run | final test acc (%) | best test acc (%) | train loss, last 100 iters "
        "| s/epoch | snapshots | full-gradient s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["run"] for r in rows):
        runs_rows = sorted((r for r in rows if r["run"] == name), key=lambda r: int(r["epoch"]))
        accs = [100 * float(r["test_accuracy"]) for r in runs_rows]
        losses = [float(r["loss"]) for r in read_csv(
            os.path.join(args.out, "iterations", f"{_slug(name)}.csv"))]
        seconds = np.median([float(r["seconds"]) for r in runs_rows])
        last = runs_rows[-1]
        lines.append(
            f"| {name} | {accs[-1]:.2f} | {max(accs):.2f} | {np.mean(losses[-100:]):.4f} "
            f"| {seconds:.1f} | {last['snapshots']} | {float(last['snapshot_seconds_total']):.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--limit", type=int, default=12800)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--mu", type=float, default=20.0)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--runs", default="", help="comma-separated subset of run names")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)

    grid = {name: make_run(args, name, make, vr) for name, (make, vr) in runs(args).items()}
    rows = run_grid(grid, os.path.join(args.out, "halp_study.csv"), progress=False)
    for group, names in GROUPS.items():
        plot_group(args, rows, group, names)
    table = summary(args, rows)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
