"""Step-time overhead of GRDA (and Adam, for scale) relative to plain SGD.

    python benchmarks/optimizer_overhead.py                 # full run, ~10 min
    python benchmarks/optimizer_overhead.py --repeats 3 --steps 5 --out /tmp/x  # smoke

Two workloads, as the foundation issue asks:
  (a) optimizer-bound: an MLP with ~8M parameters (784-2048-2048-1024-10) at
      batch 64, where the update of the weights is a visible share of a step;
  (b) the quickstart CNN (`tf_lowprec.models.cnn`) at batch 128.
For each workload one model per optimizer is built from the same initial
weights and compiled the same way (Keras's default: no XLA on CPU). After a
warm-up, repeats alternate between the optimizers (rotating the order) and
time `--steps` consecutive `train_on_batch` calls on a fixed synthetic batch.
Reported: the median seconds per step of each optimizer, its ratio to SGD's
median, and the median of the per-repeat paired ratios (robust to drifts in
machine load). Writes `<out>/optimizer_overhead.csv` (every repeat) and
`<out>/optimizer_overhead_summary.csv`.
"""

import sys

import keras
import numpy as np
import tensorflow as tf
from harness import grid_main, paired_summary, time_train_steps, workload_parser

from tf_lowprec import models
from tf_lowprec.optimizers.grda import GRDA

OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(0.01),
    "grda": lambda: GRDA(0.01, c=0.005, mu=0.55),
    "adam": lambda: keras.optimizers.Adam(1e-3),
}
WORKLOADS = {
    "mlp_8m": {"build": lambda: models.mlp((28, 28, 1), 10, hidden_units=(2048, 2048, 1024)),
               "batch": 64, "input_shape": (28, 28, 1)},
    "cnn": {"build": lambda: models.cnn((28, 28, 1), 10), "batch": 128,
            "input_shape": (28, 28, 1)},
}


def _compiled(workload, make_optimizer):
    keras.utils.set_random_seed(0)
    model = workload["build"]()
    model.compile(
        optimizer=make_optimizer(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def measure(workload_name, repeats, steps, warmup):
    workload = WORKLOADS[workload_name]
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(workload["batch"], *workload["input_shape"])).astype("float32"))
    y = tf.constant(rng.integers(0, 10, workload["batch"]).astype("int32"))
    compiled = {name: _compiled(workload, make) for name, make in OPTIMIZERS.items()}
    info = {"workload": workload_name, "batch_size": workload["batch"]}
    rows = [{**info, **row} for row in time_train_steps(compiled, x, y, repeats, steps, warmup)]
    info["params"] = compiled["sgd"].count_params()
    summary = [{**info, **row} for row in paired_summary(rows, "sgd")]
    return rows, summary


def main(argv=None):
    parser = workload_parser(__doc__, "mlp_8m,cnn", repeats=15, steps=20, warmup=5)
    return grid_main(
        parser, argv, measure, WORKLOADS,
        ("optimizer_overhead.csv", "optimizer_overhead_summary.csv"),
        lambda row: (f"{row['workload']:>7} {row['variant']:>5}: "
                     f"{1e3 * row['median_seconds']:8.2f} ms/step, x{row['ratio']:.3f} SGD "
                     f"(paired median x{row['paired_ratio']:.3f})"),
    )


if __name__ == "__main__":
    sys.exit(main())
