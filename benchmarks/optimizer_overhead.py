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

import argparse
import os
import platform
import statistics
import sys
import time

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tf_lowprec import models  # noqa: E402
from tf_lowprec.experiments.results_io import write_csv_atomic  # noqa: E402
from tf_lowprec.optimizers.grda import GRDA  # noqa: E402

OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(0.01),
    "grda": lambda: GRDA(0.01, c=0.005, mu=0.55),
    "adam": lambda: keras.optimizers.Adam(1e-3),
}
WORKLOADS = {
    "mlp_8m": dict(build=lambda: models.mlp((28, 28, 1), 10, hidden_units=(2048, 2048, 1024)),
                   batch=64, input_shape=(28, 28, 1)),
    "cnn": dict(build=lambda: models.cnn((28, 28, 1), 10), batch=128, input_shape=(28, 28, 1)),
}


def _compiled(workload, make_optimizer):
    keras.utils.set_random_seed(0)
    model = workload["build"]()
    model.compile(
        optimizer=make_optimizer(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _time_steps(model, x, y, steps):
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(x, y)
    float(loss)  # make sure the last step finished
    return (time.perf_counter() - start) / steps


def measure(workload_name, repeats, steps, warmup):
    workload = WORKLOADS[workload_name]
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(workload["batch"], *workload["input_shape"])).astype("float32"))
    y = tf.constant(rng.integers(0, 10, workload["batch"]).astype("int32"))
    compiled = {name: _compiled(workload, make) for name, make in OPTIMIZERS.items()}
    params = compiled["sgd"].count_params()
    for model in compiled.values():
        _time_steps(model, x, y, warmup)
    rows = []
    names = list(compiled)
    for repeat in range(repeats):
        order = names[repeat % len(names):] + names[: repeat % len(names)]
        for name in order:
            rows.append({
                "workload": workload_name, "optimizer": name, "params": params,
                "batch_size": workload["batch"], "repeat": repeat,
                "seconds_per_step": _time_steps(compiled[name], x, y, steps),
            })
    return rows


def summarize(rows):
    summary = []
    for workload in dict.fromkeys(r["workload"] for r in rows):
        wrows = [r for r in rows if r["workload"] == workload]
        per_opt = {}
        for r in wrows:
            per_opt.setdefault(r["optimizer"], {})[r["repeat"]] = r["seconds_per_step"]
        sgd_median = statistics.median(per_opt["sgd"].values())
        for name, times in per_opt.items():
            paired = [times[k] / per_opt["sgd"][k] for k in times]
            summary.append({
                "workload": workload, "optimizer": name, "params": wrows[0]["params"],
                "batch_size": wrows[0]["batch_size"], "repeats": len(times),
                "median_ms_per_step": 1e3 * statistics.median(times.values()),
                "ratio_vs_sgd": statistics.median(times.values()) / sgd_median,
                "median_paired_ratio_vs_sgd": statistics.median(paired),
                "device": f"CPU x{os.cpu_count()} ({platform.processor() or platform.machine()})",
                "tensorflow": tf.__version__, "keras": keras.__version__,
            })
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default="mlp_8m,cnn")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    rows = []
    for workload in args.workloads.split(","):
        if workload not in WORKLOADS:
            parser.error(f"--workloads: unknown workload {workload!r}; valid: {', '.join(WORKLOADS)}")
        rows += measure(workload, args.repeats, args.steps, args.warmup)
    summary = summarize(rows)
    write_csv_atomic(os.path.join(args.out, "optimizer_overhead.csv"), rows)
    write_csv_atomic(os.path.join(args.out, "optimizer_overhead_summary.csv"), summary)
    for row in summary:
        print(f"{row['workload']:>7} {row['optimizer']:>5}: {row['median_ms_per_step']:8.2f} ms/step, "
              f"x{row['ratio_vs_sgd']:.3f} SGD (paired median x{row['median_paired_ratio_vs_sgd']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
