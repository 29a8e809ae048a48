"""gRDA directional pruning: SGD vs GRDA at several mu, several seeds, plus the "same valley" check.

    nice -n 19 python examples/grda_directional_pruning/mu_sweep.py     # the study (see README)
    python examples/grda_directional_pruning/mu_sweep.py --epochs 2 --drop-epoch 1 \\
        --limit 512 --test-limit 500 --seeds 0 --out /tmp/mu        # smoke

For every seed, trains `tf_lowprec.models.cnn` with Keras SGD (no momentum)
and with `GRDA(c, mu)` for each mu, all from the seed's initial weights, on
the seed's data order, with the same piecewise-constant learning rate (the
paper's protocol: `--learning-rate` until `--drop-epoch`, then a tenth of
it). Then, from the final weights, the paper's "same valley" check: the
training loss along the straight line between the SGD and the gRDA solution
of one seed, their distance and angle, compared with the same quantities
between SGD solutions of two different seeds.

Writes to `--out`:

* `grda_study.csv`: one row per (run, seed, epoch): training/test loss and
  accuracy, overall sparsity (fraction of exactly-zero trainable weights,
  biases included), the per-layer sparsity (`sparsity/<variable>`), the
  soft threshold, learning rate and seconds.
* `valley.csv`: one row per pair of solutions and interpolation point
  (`alpha` = 0 is the first solution, 1 the second): training loss and
  accuracy on the training subset; `valley_summary.csv`: per pair, the
  distance, angle and the barrier (max over alpha of the loss minus the
  straight line between the endpoint losses).
* `summary.md`: means ± standard deviations over seeds.
* `curves.png` (test accuracy and sparsity per epoch, mean ± sd band),
  `layer_sparsity.png`, `valley.png`.

Each run is checkpointed after every epoch (`--checkpoints`, default
`<out>/checkpoints`, git-ignored) and
resumes where it stopped, identically (`tf_lowprec.experiments.resumable`).
"""

import argparse
import math
import os
import sys
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
from tf_lowprec.experiments.resumable import (
    ResumableStudy,
    checkpoint_name,
    epoch_dataset,
    load_variables,
)
from tf_lowprec.experiments.seed_statistics import mean_sd, plot_band
from tf_lowprec.optimizers import GRDA
from tf_lowprec.pruning.sparsity import sparsity

HERE = os.path.dirname(os.path.abspath(__file__))
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--drop-epoch", type=int, default=20,
                   help="epochs at the initial rate; then the rate is divided by 10")
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--c", type=float, default=0.005)
    p.add_argument("--mus", type=float, nargs="+", default=[0.51, 0.55, 0.6, 0.7])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--limit", type=int, default=12800, help="training subset size")
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--valley-points", type=int, default=11)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--checkpoints", default=None, help="default: <out>/checkpoints")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if not 0 < args.drop_epoch <= args.epochs:
        p.error(f"--drop-epoch must be in [1, epochs]. Received: {args.drop_epoch}")
    args.checkpoints = args.checkpoints or os.path.join(args.out, "checkpoints")
    return args


def run_names(args):
    return ["SGD"] + [f"GRDA mu={mu}" for mu in args.mus]


def load_data(args):
    x, y = data.load_numpy("fashion_mnist", "train", data_dir=args.data_dir)
    x, y = x[:args.limit], y[:args.limit]
    test = data.load("fashion_mnist", "test", 1000, limit=args.test_limit,
                     data_dir=args.data_dir)
    return x, y, test


def make_optimizer(args, name, steps_per_epoch):
    # Keras's step counter is 0-based and the boundary inclusive: step
    # `steps_per_epoch * drop_epoch` (the first of the next epoch) gets the lower rate.
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [steps_per_epoch * args.drop_epoch - 1], [args.learning_rate, args.learning_rate / 10])
    if name == "SGD":
        return keras.optimizers.SGD(schedule)
    mu = float(name.split("=")[1])
    return GRDA(schedule, c=args.c, mu=mu)


class Run:
    """Model + optimizer of one run; `variables` is what a checkpoint holds."""

    def __init__(self, args, name, x):
        self.model = models.cnn((28, 28, 1), 10)
        steps = math.ceil(len(x) / args.batch_size)
        self.model.compile(make_optimizer(args, name, steps), LOSS, metrics=["accuracy"])
        self.model.optimizer.build(self.model.trainable_variables)

    @property
    def variables(self):
        return list(self.model.variables) + list(self.model.optimizer.variables)


def train_epoch(args, x, y, test, normalize):
    def step(run, epoch):
        model = run.model
        ds = epoch_dataset(x, y, args.batch_size, run.seed, epoch, normalize)
        rate = float(keras.ops.convert_to_numpy(
            model.optimizer.learning_rate))
        start = time.perf_counter()
        history = model.fit(ds, initial_epoch=epoch, epochs=epoch + 1, verbose=0, shuffle=False)
        seconds = time.perf_counter() - start
        evaluation = model.evaluate(test, verbose=0, return_dict=True)
        report = sparsity(model)
        threshold = getattr(model.optimizer, "threshold", None)
        row = {
            "learning_rate": rate,
            "train_loss": history.history["loss"][0],
            "train_accuracy": history.history["accuracy"][0],
            "test_loss": evaluation["loss"],
            "test_accuracy": evaluation["accuracy"],
            "sparsity": report.sparsity,
            "threshold": float(threshold.numpy()) if threshold is not None else 0.0,
            "seconds": seconds,
        }
        for layer, stats in report.layers.items():
            row[f"sparsity/{layer}"] = stats.sparsity
        return row

    return step


def train_all(args):
    x, y, test = load_data(args)
    normalize = normalizer("fashion_mnist")
    names = run_names(args)
    study = ResumableStudy(os.path.join(args.out, "grda_study.csv"), args.checkpoints,
                           total_epochs=len(names) * len(args.seeds) * args.epochs,
                           progress=not args.no_progress)
    step = train_epoch(args, x, y, test, normalize)
    for seed in args.seeds:  # seed-major: a stopped study has every run of the first seeds
        for name in names:
            def setup(name=name, seed=seed):
                run = Run(args, name, x)
                run.seed = seed
                return run
            study.train(name, seed, args.epochs, setup, step)
    study.close()
    return study.rows, x, y


# ---- the "same valley" check -------------------------------------------------------------


def final_weights(args, name, seed):
    """Trainable weights of a finished run, from its checkpoint (the model variables come first)."""
    keras.utils.set_random_seed(seed)
    model = models.cnn((28, 28, 1), 10)
    path = os.path.join(args.checkpoints, checkpoint_name(name, seed))
    _, values = load_variables(path)
    return model, values[:len(model.variables)]


def _flat(values):
    return np.concatenate([np.ravel(v) for v in values]).astype(np.float64)


def valley(args, x, y):
    """Loss along the line between solutions; distance, angle and barrier per pair."""
    normalize = normalizer("fashion_mnist")
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(1000).map(normalize)
    pairs = []
    for seed in args.seeds:
        pairs += [("SGD", seed, name, seed) for name in run_names(args)[1:]]
    pairs += [("SGD", a, "SGD", b) for i, a in enumerate(args.seeds) for b in args.seeds[i + 1:]]
    alphas = np.linspace(0.0, 1.0, args.valley_points)
    model, _ = final_weights(args, "SGD", args.seeds[0])
    model.compile(loss=LOSS, metrics=["accuracy"])
    line_rows, summary_rows = [], []
    for first, seed_a, second, seed_b in pairs:
        _, a = final_weights(args, first, seed_a)
        _, b = final_weights(args, second, seed_b)
        _, init = _initial_weights(seed_a)
        losses = []
        for alpha in alphas:
            model.set_weights([(1 - alpha) * u + alpha * v for u, v in zip(a, b)])
            evaluation = model.evaluate(train, verbose=0, return_dict=True)
            losses.append(evaluation["loss"])
            line_rows.append({"pair": f"{first} s{seed_a} - {second} s{seed_b}",
                              "alpha": float(alpha), "train_loss": evaluation["loss"],
                              "train_accuracy": evaluation["accuracy"]})
        fa, fb = _flat(a), _flat(b)
        straight = (1 - alphas) * losses[0] + alphas * losses[-1]
        row = {
            "first": first, "seed_first": seed_a, "second": second, "seed_second": seed_b,
            "distance": float(np.linalg.norm(fa - fb)),
            "relative_distance": float(np.linalg.norm(fa - fb) / np.linalg.norm(fa)),
            "angle_degrees": _angle(fa, fb),
            "barrier": float(np.max(np.asarray(losses) - straight)),
            "loss_first": losses[0], "loss_second": losses[-1],
        }
        if seed_a == seed_b:  # same initialization: the angle between the two displacements
            fi = _flat(init)
            row["displacement_angle_degrees"] = _angle(fa - fi, fb - fi)
        summary_rows.append(row)
    write_csv_atomic(os.path.join(args.out, "valley.csv"), line_rows)
    write_csv_atomic(os.path.join(args.out, "valley_summary.csv"), summary_rows)
    return line_rows, summary_rows


def _initial_weights(seed):
    keras.utils.set_random_seed(seed)
    model = models.cnn((28, 28, 1), 10)
    return model, [np.asarray(v) for v in model.get_weights()]


def _angle(u, v):
    cosine = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))


# ---- summary and plots --------------------------------------------------------------------


def final_rows(rows, epochs):
    return [r for r in rows if int(r["epoch"]) == epochs]


def summary_table(args, rows, valley_rows=None):
    final = final_rows(rows, args.epochs)
    sgd = {str(r["seed"]): float(r["test_accuracy"]) for r in final if r["run"] == "SGD"}
    layers = [k for k in rows[0] if k.startswith("sparsity/")] if rows else []
    lines = [
        (f"Fashion-MNIST CNN, first {args.limit} training images, {args.epochs} epochs "
         f"(lr {args.learning_rate}, /10 after epoch {args.drop_epoch}), c = {args.c}; "
         "mean ± sd over seeds (n = number of seeds finished)."),
        "",
        ("| run | n | test accuracy (%) | Δ vs SGD, paired (pt) | best-epoch acc (%) | "
         "sparsity (%) | ") + " | ".join(f"{k.split('/', 1)[1]} (%)" for k in layers) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(layers),
    ]
    for name in run_names(args):
        group = [r for r in final if r["run"] == name]
        if not group:
            continue
        deltas = [100 * (float(r["test_accuracy"]) - sgd[str(r["seed"])])
                  for r in group if str(r["seed"]) in sgd]
        best = [max(float(q["test_accuracy"]) for q in rows
                    if q["run"] == name and str(q["seed"]) == str(r["seed"])) for r in group]
        lines.append(
            f"| {name} | {len(group)} | {mean_sd([r['test_accuracy'] for r in group], 100)} | "
            f"{mean_sd(deltas)} | {mean_sd(best, 100)} | "
            f"{mean_sd([r['sparsity'] for r in group], 100, 1)} | "
            + " | ".join(mean_sd([r[k] for r in group], 100, 1) for k in layers) + " |"
        )
    if valley_rows:
        lines += ["", ("Same valley (final weights; barrier = max over the line of the "
                       "training loss minus the straight line between the endpoint losses):"),
                  "", ("| pair | n | barrier | distance (relative to ‖first‖) | angle (°) | "
                       "angle of displacements from the shared init (°) |"),
                  "|---|---|---|---|---|---|"]
        kinds = {}
        for r in valley_rows:
            same = str(r["seed_first"]) == str(r["seed_second"])
            label = (f"SGD – {r['second']}, same seed" if same else "SGD – SGD, different seeds")
            kinds.setdefault(label, []).append(r)
        for label, group in kinds.items():
            disp = [r["displacement_angle_degrees"] for r in group
                    if str(r.get("displacement_angle_degrees", "")) not in ("", "nan")]
            lines.append(
                f"| {label} | {len(group)} | {mean_sd([r['barrier'] for r in group], 1, 3)} | "
                f"{mean_sd([r['relative_distance'] for r in group], 1, 3)} | "
                f"{mean_sd([r['angle_degrees'] for r in group], 1, 1)} | "
                f"{mean_sd(disp, 1, 1) or '–'} |")
    return "\n".join(lines) + "\n"


def plot_curves(args, rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name in run_names(args):
        group = [r for r in rows if r["run"] == name]
        if not group:
            continue
        for axis, metric, scale in ((axes[0], "test_accuracy", 100), (axes[1], "sparsity", 100),
                                    (axes[2], "train_loss", 1)):
            plot_band(axis, group, metric, name, scale)
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].set_ylabel("sparsity (% exact zeros)")
    axes[2].set_ylabel("training loss")
    axes[2].set_yscale("log")
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    axes[0].set_ylim(bottom=max(0.0, axes[0].get_ylim()[0]))
    axes[1].legend(fontsize="small")
    figure.suptitle(f"gRDA vs SGD, Fashion-MNIST CNN, {args.limit} training images, "
                    f"c={args.c}; mean ± sd over seeds")
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def plot_layers(args, rows, path):
    import matplotlib.pyplot as plt

    final = final_rows(rows, args.epochs)
    layers = [k for k in rows[0] if k.startswith("sparsity/")]
    names = [n for n in run_names(args)[1:] if any(r["run"] == n for r in final)]
    if not names or not layers:
        return
    figure, axis = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        group = [r for r in final if r["run"] == name]
        means = [100 * np.mean([float(r[k]) for r in group]) for k in layers]
        sds = [100 * np.std([float(r[k]) for r in group], ddof=1) if len(group) > 1 else 0
               for k in layers]
        axis.bar(np.arange(len(layers)) + i * width, means, width, yerr=sds, label=name)
    axis.set_xticks(np.arange(len(layers)) + 0.4 - width / 2)
    axis.set_xticklabels([k.split("/", 1)[1] for k in layers], rotation=20, fontsize="small")
    axis.set_ylabel("sparsity after training (%)")
    axis.legend(fontsize="small")
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def plot_valley(line_rows, path):
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for pair in dict.fromkeys(r["pair"] for r in line_rows):
        group = [r for r in line_rows if r["pair"] == pair]
        style = "--" if pair.count("SGD") == 2 else "-"
        axis.plot([float(r["alpha"]) for r in group], [float(r["train_loss"]) for r in group],
                  style, label=pair)
    axis.set_xlabel("alpha (0: first solution, 1: second)")
    axis.set_ylabel("training loss")
    axis.set_yscale("log")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="x-small", ncol=2)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def main(argv=None):
    args = parse_args(argv)
    rows, x, y = train_all(args)
    line_rows, valley_rows = valley(args, x, y)
    rows = read_csv(os.path.join(args.out, "grda_study.csv"))
    valley_rows = read_csv(os.path.join(args.out, "valley_summary.csv"))
    plot_curves(args, rows, os.path.join(args.out, "curves.png"))
    plot_layers(args, rows, os.path.join(args.out, "layer_sparsity.png"))
    plot_valley(line_rows, os.path.join(args.out, "valley.png"))
    table = summary_table(args, rows, valley_rows)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(table)
    print(table)
    return 0


if __name__ == "__main__":
    tf.config.experimental.enable_op_determinism()  # bit-identical resumes
    sys.exit(main())
