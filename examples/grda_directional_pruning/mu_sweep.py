"""gRDA directional pruning: a mu sweep against SGD on Fashion-MNIST.

    python examples/grda_directional_pruning/mu_sweep.py            # ~20 min, 2 CPU cores
    python examples/grda_directional_pruning/mu_sweep.py --epochs 1 --limit 2000 --out /tmp/mu

Trains `tf_lowprec.models.cnn` with SGD and with GRDA for each mu, all from the
same initial weights, at the same constant learning rate and batch size
(the paper's protocol at small scale). Writes to `--out`:

* `mu_sweep.csv`: one row per run per epoch (test accuracy, sparsity, time);
  the last epoch's row also holds the per-layer sparsity (`sparsity/<layer>`).
* `mu_sweep.png`: test accuracy and sparsity per epoch, one line per run.
* `layer_sparsity.png`: final sparsity of each layer per run (as in the gRDA
  paper's layer-wise figure).
* `summary.md`: the final-epoch table printed at the end.

Interrupted, it resumes: runs already in `mu_sweep.csv` are skipped.
"""

import argparse
import os
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from tf_lowprec import data, models  # noqa: E402
from tf_lowprec.experiments.plots import plot_epoch_curves  # noqa: E402
from tf_lowprec.experiments.results_io import save_figure_atomic  # noqa: E402
from tf_lowprec.experiments.run_grid import run_grid  # noqa: E402
from tf_lowprec.experiments.train_run import train_and_evaluate  # noqa: E402
from tf_lowprec.optimizers.grda import GRDA  # noqa: E402
from tf_lowprec.pruning.sparsity import sparsity  # noqa: E402


def make_run(args, make_optimizer):
    meta = data.info(args.dataset)

    def run():
        def train():
            return data.load(args.dataset, "train", args.batch_size, seed=args.seed, limit=args.limit)

        def test():
            return data.load(args.dataset, "test", 1000)

        model, rows = train_and_evaluate(
            lambda: models.cnn(meta.input_shape, meta.num_classes),
            make_optimizer(), train, test, epochs=args.epochs, seed=args.seed,
            verbose=2,
        )
        for layer, stats in sparsity(model).layers.items():
            rows[-1][f"sparsity/{layer}"] = stats.sparsity
        return rows

    return run


def _final_rows(rows):
    """{run: last-epoch row}, SGD first, then in sweep order."""
    final = {}
    for row in rows:
        final[row["run"]] = row
    return dict(sorted(final.items(), key=lambda item: item[0] != "SGD"))


def summary_table(rows):
    final = _final_rows(rows)
    sgd_acc = float(final["SGD"]["test_accuracy"])
    lines = [
        "| run | test accuracy | Δ vs SGD (pt) | sparsity | s/epoch |",
        "|---|---|---|---|---|",
    ]
    for name, row in final.items():
        seconds = [float(r["seconds"]) for r in rows if r["run"] == name]
        acc = float(row["test_accuracy"])
        lines.append(
            f"| {name} | {acc:.2%} | {100 * (acc - sgd_acc):+.2f} | "
            f"{float(row['sparsity']):.1%} | {np.median(seconds):.1f} |"
        )
    return "\n".join(lines)


def plot_layer_sparsity(rows, path):
    import matplotlib.pyplot as plt

    final = _final_rows(rows)
    layers = [k for k in next(iter(final.values())) if k.startswith("sparsity/")]
    layers = [k for k in layers if any(str(r.get(k, "")) != "" for r in final.values())]
    figure, axis = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(final)
    for i, (name, row) in enumerate(final.items()):
        axis.bar(np.arange(len(layers)) + i * width, [float(row[k]) for k in layers],
                 width, label=name)
    axis.set_xticks(np.arange(len(layers)) + 0.4 - width / 2)
    axis.set_xticklabels([k.split("/", 1)[1] for k in layers], rotation=20)
    axis.set_ylabel("sparsity (fraction of exact zeros)")
    axis.set_title("layer-wise sparsity after training")
    axis.legend(fontsize="small")
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description="gRDA mu sweep vs SGD")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--c", type=float, default=0.005)
    parser.add_argument("--mus", default="0.51,0.55,0.6,0.7")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)

    lr = args.learning_rate
    runs = {"SGD": make_run(args, lambda: keras.optimizers.SGD(lr))}
    for mu in [float(m) for m in args.mus.split(",")]:
        runs[f"GRDA mu={mu}"] = make_run(args, lambda mu=mu: GRDA(lr, c=args.c, mu=mu))

    rows = run_grid(runs, os.path.join(args.out, "mu_sweep.csv"))
    rows = sorted(rows, key=lambda row: row["run"] != "SGD")  # stable: SGD first
    plot_epoch_curves(rows, ["test_accuracy", "sparsity"], os.path.join(args.out, "mu_sweep.png"),
                      group_key="run",
                      title=f"{args.dataset} CNN, lr={lr}, c={args.c}, batch {args.batch_size}")
    plot_layer_sparsity(rows, os.path.join(args.out, "layer_sparsity.png"))
    table = summary_table(rows)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
