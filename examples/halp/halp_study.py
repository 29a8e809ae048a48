"""The HALP study (De Sa et al. 2018) at Fashion-MNIST scale, several seeds.

    nice -n 19 python examples/halp/halp_study.py                   # the study (see README)
    python examples/halp/halp_study.py --epochs 2 --limit 512 --test-limit 500 \\
        --seeds 0 --runs "SGD,HALP 8b T=1" --out /tmp/halp               # smoke

The structure of torchhalp's `examples/cifar10` / `ResNet18_results.ipynb`:
SGD vs SVRG vs HALP; a bits sweep (2, 3, 4, 6, 8 bits at T = 1 epoch) and a
T sweep (0.5, 1, 3 epochs at 8 bits, with SVRG at the same three T).
Every run of one seed starts from the
seed's initial weights and sees the seed's data order; SVRG and HALP use the
reference's constant learning rate 0.1, mu = 20 and weight decay 5e-4 (on
the weights), SGD the same rate and decay. The model is
`tf_lowprec.models.cnn(filters=(16, 32), dense_units=64)` (56,714 parameters)
on the first `--limit` Fashion-MNIST training images (the full gradient is
taken over the same images), evaluated on the test set after every epoch.

Writes to `--out`: `halp_study.csv` (one row per run, seed and epoch: training
loss (mean over the epoch's iterations) and accuracy, test loss and
accuracy, seconds), `summary.md` (mean ± sd over seeds of the final and best
test accuracy and of the training loss over the last 100 iterations (mean, and the
median of those epochs' means, robust to single loss spikes), the
loss's relative decrease per epoch at the end (convergence: below
`--converge-tol` in every seed), paired differences to SVRG, and paired
contrasts with a paired t-test), `curves_<group>.png` and `deltas.png`
(paired loss differences per epoch). Each run is checkpointed after every
epoch in `--checkpoints` (default `<out>/checkpoints`, git-ignored) and
resumes identically; `--round R` trains all runs to R, 2R, ... epochs in turn,
so a study stopped early leaves every run at the same length (summarize it
by running the same command with `--epochs` set to the last finished round).
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
    "T_sweep": [f"SVRG T={t}" for t in T_VALUES] + [f"HALP 8b T={t}" for t in T_VALUES],
}
REFERENCE = "SVRG T=1"


def same_t_reference(name):
    """The SVRG run with the same `T` as HALP run `name` (`None` for SGD and SVRG runs)."""
    if not name.startswith("HALP"):
        return None
    return "SVRG " + name.split()[-1]


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
    p.add_argument("--eval-every", type=int, default=1,
                   help="evaluate on the test set every EVAL_EVERY epochs and at the end of "
                        "every round (the other rows leave the test columns empty)")
    p.add_argument("--round", type=int, default=0,
                   help="train every run to ROUND, 2*ROUND, ... epochs in turn (0: each run to "
                        "the end), so that a study stopped early has all runs at one length")
    p.add_argument("--converge-window", type=int, default=10,
                   help="epochs over which the summary measures the training loss's decrease")
    p.add_argument("--converge-tol", type=float, default=0.01,
                   help="converged: the training loss falls by less than this fraction per "
                        "epoch (log-linear fit over --converge-window epochs) in every seed")
    args = p.parse_args(argv)
    if args.eval_every < 1:
        raise ValueError(f"--eval-every must be >= 1. Received: {args.eval_every}")
    if args.round < 0:
        raise ValueError(f"--round must be >= 0. Received: {args.round}")
    if args.converge_window < 2:
        raise ValueError(f"--converge-window must be >= 2. Received: {args.converge_window}")
    args.checkpoints = args.checkpoints or os.path.join(args.out, "checkpoints")
    return args


def epoch_targets(epochs, round_):
    """The lengths every run is trained to in turn: `round_, 2 round_, ..., epochs`."""
    if round_ <= 0 or round_ >= epochs:
        return [epochs]
    return list(range(round_, epochs, round_)) + [epochs]


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
    for t in T_VALUES:  # last: the 10-epoch study in results/seeds/ predates them
        if t != "1":
            table[f"SVRG T={t}"] = (lambda seed, t=t: SVRG(lr, T=epochs(t), weight_decay=wd))
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
    targets = set(epoch_targets(args.epochs, args.round))

    def step(run, epoch):
        ds = epoch_dataset(x, y, args.batch_size, run.seed, epoch, normalize)
        start = time.perf_counter()
        history = run.model.fit(ds, initial_epoch=epoch, epochs=epoch + 1, verbose=0,
                                shuffle=False, callbacks=run.callbacks)
        seconds = time.perf_counter() - start
        result = {"loss": "", "accuracy": ""}
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 in targets:
            result = run.model.evaluate(test, verbose=0, return_dict=True)
        loss = history.history["loss"][0]
        return {"train_loss": loss, "train_accuracy": history.history["accuracy"][0],
                "test_loss": result["loss"], "test_accuracy": result["accuracy"],
                "diverged": not math.isfinite(loss), "seconds": seconds}

    return step


def per_run_seed(rows, args):
    """`{(run, seed): stats}` for finished runs; the last-100-iteration loss is the mean of the
    per-epoch mean losses of the final `ceil(100 / steps_per_epoch)` epochs (equal-size batches).
    `rate` is the training loss's relative decrease per epoch over the last
    `--converge-window` epochs W: `1 - exp(b)`, `b` the least-squares slope of the log of the
    epoch-mean loss against the epoch over those W epochs (robust to one noisy epoch)."""
    steps = math.ceil(args.limit / args.batch_size)
    last = min(max(1, math.ceil(100 / steps)), args.epochs)
    stats = {}
    for key in dict.fromkeys((r["run"], int(r["seed"])) for r in rows):
        group = sorted((r for r in rows if (r["run"], int(r["seed"])) == key),
                       key=lambda r: int(r["epoch"]))
        if len(group) < args.epochs:
            continue
        group = group[:args.epochs]
        accuracy = [100 * float(r["test_accuracy"]) for r in group if r["test_accuracy"] != ""]
        if group[-1]["test_accuracy"] == "":
            continue  # the last epoch was not evaluated (a study stopped between rounds)
        losses = [float(r["train_loss"]) for r in group]
        tail = np.array(losses[-args.converge_window:])
        rate = (1 - math.exp(np.polyfit(np.arange(len(tail)), np.log(tail), 1)[0])
                if len(tail) >= 2 and np.all(tail > 0) else float("nan"))
        stats[key] = {"final": accuracy[-1], "best": max(accuracy),
                      "last3": float(np.mean(accuracy[-3:])),
                      "loss": float(np.mean(losses[-last:])),
                      "median_loss": float(np.median(losses[-last:])), "rate": rate}
    return stats, last * steps


# two-sided 5 % critical values of Student's t, by degrees of freedom (n - 1)
T_CRITICAL = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365,
              8: 2.306, 9: 2.262}

CONTRASTS = [  # (a, b): a - b paired by seed; the notebook's claims first
    ("HALP 8b T=1", "SVRG T=1"), ("HALP 6b T=1", "SVRG T=1"), ("HALP 4b T=1", "SVRG T=1"),
    ("HALP 3b T=1", "SVRG T=1"), ("HALP 2b T=1", "SVRG T=1"),
    ("HALP 2b T=1", "HALP 4b T=1"), ("HALP 2b T=1", "HALP 3b T=1"),
    ("HALP 4b T=1", "HALP 8b T=1"),
    ("HALP 8b T=3", "HALP 8b T=1"), ("HALP 8b T=1", "HALP 8b T=0.5"),
    ("SVRG T=3", "SVRG T=1"), ("SVRG T=1", "SVRG T=0.5"),
    ("HALP 8b T=0.5", "SVRG T=0.5"), ("HALP 8b T=3", "SVRG T=3"),
    ("SVRG T=1", "SGD"),
]


def paired(values, digits=2):
    """`"m ± s (k/n > 0, t = ..)"` of paired differences, plus whether they exceed the seed
    spread: a two-sided paired t-test at 5 % (|t| above `T_CRITICAL[n - 1]`)."""
    values = [v for v in values if math.isfinite(v)]
    if len(values) < 2:
        return mean_sd(values, digits=digits), False
    mean, sd = float(np.mean(values)), float(np.std(values, ddof=1))
    t = mean / (sd / math.sqrt(len(values))) if sd > 0 else math.copysign(math.inf, mean)
    significant = abs(t) > T_CRITICAL.get(len(values) - 1, 1.96)
    above = sum(v > 0 for v in values)
    return (f"{mean:+.{digits}f} ± {sd:.{digits}f} ({above}/{len(values)} > 0, t = {t:+.1f})",
            significant)


def _delta_cells(stats, a, b, digits):
    seeds = sorted(s for (n, s) in stats if n == a and (b, s) in stats)
    return {key: paired([stats[(a, s)][key] - stats[(b, s)][key] for s in seeds],
                        digits=4 if key.endswith("loss") else digits)
            for key in ("loss", "median_loss", "final", "best")}, len(seeds)


def summary_markdown(rows, args):
    stats, iterations = per_run_seed(rows, args)
    names = list(dict.fromkeys(r["run"] for r in rows))
    lines = [
        (f"Fashion-MNIST, `cnn(filters=(16, 32), dense_units=64)`, first {args.limit} "
         f"training images, {args.epochs} epochs, batch {args.batch_size}, lr "
         f"{args.learning_rate}, mu {args.mu}, weight decay {args.weight_decay}; mean ± sd "
         f"over seeds (n). Δ: paired difference (same seed), mean ± sd. Decrease/epoch: the "
         f"training loss's relative decrease per epoch over the last {args.converge_window} "
         f"epochs (log-linear least-squares fit; mean over seeds, largest seed); converged: below "
         f"{100 * args.converge_tol:g} % in every seed."), "",
        (f"| run | n | final test acc (%) | best test acc (%) | mean acc, last 3 evaluations (%) | "
         f"train loss, last {iterations} iters | median epoch loss, same epochs | "
         "Δ train loss vs SVRG T=1 | "
         "Δ train loss vs SVRG, same T | loss decrease/epoch (%) | converged |"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        seeds = sorted(s for (n, s) in stats if n == name)
        if not seeds:
            continue
        cell = [stats[(name, s)] for s in seeds]
        rates = [100 * c["rate"] for c in cell]
        converged = all(r < 100 * args.converge_tol for r in rates)
        deltas = []
        for ref in (REFERENCE, same_t_reference(name)):
            if ref is None or ref == name:
                deltas.append("")
                continue
            values = [stats[(name, s)]["loss"] - stats[(ref, s)]["loss"] for s in seeds
                      if (ref, s) in stats]
            deltas.append(mean_sd(values, digits=4) if values else "")
        lines.append(
            f"| {name} | {len(seeds)} | {mean_sd([c['final'] for c in cell])} | "
            f"{mean_sd([c['best'] for c in cell])} | {mean_sd([c['last3'] for c in cell])} | "
            f"{mean_sd([c['loss'] for c in cell], digits=4)} | "
            f"{mean_sd([c['median_loss'] for c in cell], digits=4)} | {deltas[0]} | {deltas[1]} | "
            f"{np.mean(rates):.2f} (max {max(rates):.2f}) | {'yes' if converged else 'no'} |")
    lines += [
        "", ("Paired contrasts `a − b` (same seed): mean ± sd, seeds with a positive "
             "difference, paired t; **bold**: exceeds the seed spread (two-sided paired t-test "
             f"at 5 %, critical |t| = {T_CRITICAL.get(len(args.seeds) - 1, 1.96)} for "
             f"{len(args.seeds)} seeds)."), "",
        ("| a − b | n | Δ train loss, last iters | Δ median epoch loss | Δ final test acc (pt) | "
         "Δ best test acc (pt) |"),
        "|---|---|---|---|---|---|",
    ]
    for a, b in CONTRASTS:
        cells, n = _delta_cells(stats, a, b, 2)
        if n == 0:
            continue
        text = [f"**{c}**" if significant else c
                for c, significant in (cells[k] for k in ("loss", "median_loss", "final", "best"))]
        lines.append(f"| {a} − {b} | {n} | " + " | ".join(text) + " |")
    return "\n".join(lines) + "\n"


def plot_group(rows, args, group, names, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in names if any(r["run"] == n for r in rows)]
    if not names:
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if group == "T_sweep":  # one colour per T: SVRG dashed, HALP solid
        for axis in (left, right):
            axis.set_prop_cycle(color=plt.rcParams["axes.prop_cycle"].by_key()["color"][:3] * 2)
    for name in names:
        group_rows = [r for r in rows if r["run"] == name]
        for axis, column, scale in ((left, "train_loss", 1), (right, "test_accuracy", 100)):
            plot_band(axis, group_rows, column, name, scale, alpha=0.15,
                      style="--" if name.startswith("SVRG") and group == "T_sweep" else "-")
    left.set_yscale("log")
    left.set_ylim(bottom=0.5 * min(line.get_ydata().min() for line in left.get_lines()))
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


def plot_deltas(rows, path):
    """Per epoch, each HALP run's training loss minus that of SVRG at the same T (SGD: minus
    SVRG T=1), paired by seed; mean ± sd over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss = {(r["run"], r["seed"], r["epoch"]): float(r["train_loss"]) for r in rows}
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    drawn = False
    for axis, (group, names) in zip(axes, GROUPS.items()):
        for name in names:
            ref = REFERENCE if name == "SGD" else same_t_reference(name)
            if ref is None:
                continue
            delta = [{"epoch": e, "delta": value - loss[(ref, s, e)]}
                     for (n, s, e), value in loss.items() if n == name and (ref, s, e) in loss]
            drawn |= plot_band(axis, delta, "delta", f"{name} − {ref}", alpha=0.15) is not None
        axis.axhline(0, color="black", linewidth=0.8)
        axis.set_title(group)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize="x-small")
    axes[0].set_ylabel("Δ training loss (epoch mean), paired by seed")
    figure.tight_layout()
    if drawn:
        save_figure_atomic(figure, path)
    plt.close(figure)
    return path if drawn else None


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
    for target in epoch_targets(args.epochs, args.round):
        for seed in args.seeds:
            for name, make in table.items():
                study.train(name, seed, target,
                            lambda make=make, seed=seed: Run(args, make, seed, full_data), step)
    study.close()
    rows = [r for r in read_csv(csv_path) if int(r["epoch"]) <= args.epochs]
    for group, names in GROUPS.items():
        plot_group(rows, args, group, names, os.path.join(args.out, f"curves_{group}.png"))
    plot_deltas(rows, os.path.join(args.out, "deltas.png"))
    summary = summary_markdown(rows, args)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(summary)
    print(summary)
    return rows


if __name__ == "__main__":
    tf.config.experimental.enable_op_determinism()  # bit-identical resumes
    main()
