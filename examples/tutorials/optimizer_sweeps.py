"""
Title: Optimizer x learning-rate sweeps
Author: tf_lowprec contributors
Date created: 2026/12/01
Last modified: 2026/12/01
Description: Compare optimizers across learning rates with the tf-lowprec sweep command and its Python API, resumably, with a summary table, curves and a heatmap.
Accelerator: None
"""

"""
## Introduction

"Which optimizer is best" only makes sense at each optimizer's best learning
rate. A sweep trains one run per (optimizer, learning rate, loss, seed), from
the seed's initial weights, and reports the best learning rate of each
optimizer.

tf_lowprec ships this as a command, `tf-lowprec sweep`, and as a Python API
(`tf_lowprec.experiments.sweep`). Both write to an output directory:

* `results.csv`: one row per run per epoch (losses, accuracies, sparsity,
  seconds, whether the run diverged);
* `summary.md`: the best learning rate per optimizer;
* `loss_curves.png`, `accuracy_curves.png`, `heatmap.png`.

A sweep is **resumable**: run the same command again after an interruption
and finished runs are skipped. A run whose loss becomes NaN is recorded as
diverged and the sweep goes on.

This tutorial sweeps softmax regression (a single Dense layer) on
Fashion-MNIST. Set `TF_LOWPREC_SMOKE=1` for a tiny grid on 256 images.
"""

"""
## Setup
"""

import os
import shutil
import subprocess

import matplotlib.pyplot as plt

from tf_lowprec import data, models
from tf_lowprec.experiments import train_and_evaluate
from tf_lowprec.experiments.run_grid import run_grid
from tf_lowprec.experiments.sweep import sweep
from tf_lowprec.optimizers import GRDA

SMOKE = os.environ.get("TF_LOWPREC_SMOKE") == "1"
LIMIT = 256 if SMOKE else 10_000
EPOCHS = 1 if SMOKE else 2
OPTIMIZERS = "sgd,grda" if SMOKE else "sgd,momentum,adam,adagrad,proximal_sgd,grda"
LEARNING_RATES = "0.1" if SMOKE else "1,0.1,0.01,0.001"

"""
## The command line

`tf-lowprec sweep --help` lists every option. `--model-kwargs` passes
arguments to the model builder: `{"hidden_units": []}` makes
`tf_lowprec.models.mlp` a single Dense layer. (In a notebook you would write
`!tf-lowprec sweep ...`; here we call it through `subprocess`.)
"""

command = shutil.which("tf-lowprec") or "tf-lowprec"
argv = [
    command, "sweep",
    "--dataset", "fashion_mnist",
    "--model", "mlp", "--model-kwargs", '{"hidden_units": []}',
    "--optimizers", OPTIMIZERS,
    "--learning-rates", LEARNING_RATES,
    "--epochs", str(EPOCHS),
    "--limit", str(LIMIT),
    "--out", "sweep_cli",
]
print(" ".join(argv))
subprocess.run(argv, check=True)

"""
The summary table, best learning rate per optimizer:
"""

with open("sweep_cli/summary.md") as f:
    print(f.read())

"""
And the heatmap of final test accuracy over optimizer x learning rate
(empty cells: diverged):
"""

plt.figure(figsize=(7, 4))
plt.imshow(plt.imread("sweep_cli/heatmap.png"))
plt.axis("off")
plt.show()

"""
## The Python API

`tf_lowprec.experiments.sweep.sweep` takes the same settings as keyword
arguments (lists instead of comma-separated strings) and returns the rows and
the summary. It checks every argument first, before anything is trained.

Pointed at the directory the command just filled, with the same settings, it
trains nothing: every run is already in `results.csv`. That is also how an
interrupted sweep (Ctrl-C, a killed job) continues: run it again, and only
the unfinished runs are trained.
"""

settings = {
    "optimizers": OPTIMIZERS.split(","),
    "learning_rates": [float(lr) for lr in LEARNING_RATES.split(",")],
    "model_kwargs": {"hidden_units": []},
    "epochs": EPOCHS, "limit": LIMIT, "out": "sweep_cli",
}
rows, summary = sweep("fashion_mnist", "mlp", **settings, progress=False)
print(len(rows), "rows, nothing retrained")
for s in summary:
    print(f"{s['optimizer']:14} best lr {s['best_learning_rate']:<6g} "
          f"test accuracy {s['test_accuracy']:.2%}  sparsity {s['sparsity']:.1%}")

"""
With other settings on the same directory it refuses before training
anything, instead of mixing results:
"""

try:
    sweep("fashion_mnist", "mlp", **{**settings, "epochs": EPOCHS + 1}, progress=False)
except ValueError as error:
    print("refused:", str(error).splitlines()[0])

"""
## Your own grid: `run_grid` and `train_and_evaluate`

The sweep is built from two smaller pieces you can use for any grid:

* `train_and_evaluate(build_model, optimizer, train_data, test_data, epochs)`
  trains a fresh model (seeded, so every run starts from the same weights)
  and returns one row of metrics per epoch;
* `run_grid({name: callable}, csv_path)` runs named runs, appends each run's
  rows to a CSV atomically when it finishes, and skips the runs already in
  the CSV when started again.

Here: GRDA's `mu`, which sets how fast its pruning threshold grows.
"""


def grda_run(mu):
    def run():
        _, rows = train_and_evaluate(
            lambda: models.mlp(hidden_units=()),
            GRDA(learning_rate=0.1, c=0.005, mu=mu),
            lambda: data.load("fashion_mnist", "train", batch_size=128, limit=LIMIT,
                              drop_remainder=True),  # full batches, as the sweep
            lambda: data.load("fashion_mnist", "test", batch_size=1000),
            epochs=EPOCHS,
            verbose=0,
        )
        return [{"mu": mu, **row} for row in rows]

    return run


mus = (0.7,) if SMOKE else (0.51, 0.6, 0.7, 0.8)
rows = run_grid({f"mu={mu}": grda_run(mu) for mu in mus}, "grda_mu.csv")
final = [row for row in rows if int(row["epoch"]) == EPOCHS]
for row in final:
    print(f"{row['run']:8} test accuracy {float(row['test_accuracy']):.2%}  "
          f"sparsity {float(row['sparsity']):.1%}")

plt.figure(figsize=(5, 3.5))
plt.plot([float(r["sparsity"]) for r in final], [float(r["test_accuracy"]) for r in final], "o-")
for r in final:
    plt.annotate(r["run"], (float(r["sparsity"]), float(r["test_accuracy"])))
plt.xlabel("sparsity")
plt.ylabel("test accuracy")
plt.title("GRDA: the mu trade-off")
plt.show()

"""
## Where to go from here

* `examples/optimizer_sweep/` is the full study (10 optimizers x 5 learning
  rates x 2 networks, and 6 losses).
* `tf_lowprec.optimizers.available()` lists the optimizer names a sweep
  accepts; `tf_lowprec.training.available_losses()` the loss names.
"""
