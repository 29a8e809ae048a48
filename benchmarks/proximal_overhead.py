"""Step time of ProximalSGD / ProximalAdagrad relative to Keras SGD / Adagrad.

    nice python benchmarks/proximal_overhead.py                  # ~3 min on 2 cores
    python benchmarks/proximal_overhead.py --repeats 3 --steps 3 --out /tmp/x  # smoke

Pairs: ProximalSGD(l1=l2=1e-4) vs `keras.optimizers.SGD`, and
ProximalAdagrad(l1=l2=1e-4) vs `keras.optimizers.Adagrad` (same lr and initial
accumulator). Two workloads:
  (a) `mlp`: a dense 784-1024-1024-10 net (~1.9M parameters) at batch 64,
      where the per-weight update is a visible share of a step (dense path);
  (b) `embedding`: Embedding(50000, 32) -> mean -> Dense(10) at batch 256 x 20
      tokens, whose gradient is a `tf.IndexedSlices` (sparse path: the
      proximal optimizers sum duplicate indices, then gather/scatter rows).
All four models of a workload start from the same weights and are compiled
the same way, all in this one process: once without XLA (Keras's default on
CPU) and once with `jit_compile=True` (the default on a GPU).
After a warm-up, each repeat times `--steps` consecutive `train_on_batch`
calls per optimizer, rotating the order between repeats. Reported per pair:
the median ms/step of each, the ratio of medians, and the median of the
per-repeat paired ratios (robust to load drifts on a shared machine).
Writes `<out>/proximal_overhead.csv` (summary) and
`<out>/proximal_overhead_repeats.csv` (every repeat).
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

from tf_lowprec.experiments.results_io import write_csv_atomic  # noqa: E402
from tf_lowprec.optimizers import ProximalAdagrad  # noqa: E402
from tf_lowprec.optimizers import ProximalSGD  # noqa: E402

# optimizer -> (factory, its Keras baseline)
OPTIMIZERS = {
    "sgd": (lambda: keras.optimizers.SGD(0.01), None),
    "proximal_sgd": (lambda: ProximalSGD(0.01, 1e-4, 1e-4), "sgd"),
    "adagrad": (lambda: keras.optimizers.Adagrad(0.01, 0.1), None),
    "proximal_adagrad": (lambda: ProximalAdagrad(0.01, 0.1, 1e-4, 1e-4), "adagrad"),
}


def _mlp():
    inputs = keras.Input((784,))
    x = keras.layers.Dense(1024, activation="relu")(inputs)
    x = keras.layers.Dense(1024, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def _embedding():
    inputs = keras.Input((20,), dtype="int32")
    x = keras.layers.Embedding(50000, 32)(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def _mlp_batch(rng):
    return rng.normal(size=(64, 784)).astype("float32"), 64


def _embedding_batch(rng):
    return rng.integers(0, 50000, size=(256, 20)).astype("int32"), 256


WORKLOADS = {"mlp": (_mlp, _mlp_batch), "embedding": (_embedding, _embedding_batch)}


def _compiled(build, weights, make_optimizer, jit_compile):
    model = build()
    model.set_weights(weights)
    model.compile(
        optimizer=make_optimizer(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def _seconds_per_step(model, x, y, steps):
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(x, y)
    float(loss)  # wait for the last step
    return (time.perf_counter() - start) / steps


def measure(workload, jit_compile, repeats, steps, warmup):
    build, make_batch = WORKLOADS[workload]
    keras.utils.set_random_seed(0)
    weights = build().get_weights()
    rng = np.random.default_rng(0)
    x, batch = make_batch(rng)
    x = tf.constant(x)
    y = tf.constant(rng.integers(0, 10, batch).astype("int32"))
    models = {
        name: _compiled(build, weights, make, jit_compile)
        for name, (make, _) in OPTIMIZERS.items()
    }
    for model in models.values():
        _seconds_per_step(model, x, y, warmup)
    names, rows = list(models), []
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            rows.append({
                "workload": workload, "jit_compile": jit_compile,
                "optimizer": name, "repeat": repeat,
                "params": models[name].count_params(), "batch_size": batch,
                "seconds_per_step": _seconds_per_step(models[name], x, y, steps),
            })  # fmt: skip
    return rows


def summarize(rows):
    summary = []
    for workload, jit in dict.fromkeys((r["workload"], r["jit_compile"]) for r in rows):
        times = {}
        for r in rows:
            if (r["workload"], r["jit_compile"]) == (workload, jit):
                times.setdefault(r["optimizer"], {})[r["repeat"]] = r["seconds_per_step"]
        for name, (_, baseline) in OPTIMIZERS.items():
            if baseline is None:
                continue
            ours, base = times[name], times[baseline]
            summary.append({
                "workload": workload, "jit_compile": jit,
                "optimizer": name, "baseline": baseline,
                "repeats": len(ours),
                "median_ms_per_step": 1e3 * statistics.median(ours.values()),
                "baseline_median_ms_per_step": 1e3 * statistics.median(base.values()),
                "ratio": statistics.median(ours.values()) / statistics.median(base.values()),
                "median_paired_ratio": statistics.median(ours[k] / base[k] for k in ours),
                "device": f"CPU x{os.cpu_count()} ({platform.processor() or platform.machine()})",
                "tensorflow": tf.__version__, "keras": keras.__version__,
            })  # fmt: skip
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default="mlp,embedding")
    parser.add_argument("--jit-compile", default="false,true",
                        help="comma-separated subset of false,true")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--out", default=os.path.join(os.path.dirname(__file__), "results")
    )
    args = parser.parse_args(argv)
    rows = []
    for workload in args.workloads.split(","):
        if workload not in WORKLOADS:
            parser.error(
                f"--workloads: unknown {workload!r}; valid: {', '.join(WORKLOADS)}"
            )
        for jit in args.jit_compile.split(","):
            if jit not in ("false", "true"):
                parser.error(f"--jit-compile: {jit!r} is not false or true")
            rows += measure(workload, jit == "true", args.repeats, args.steps, args.warmup)
    summary = summarize(rows)
    write_csv_atomic(os.path.join(args.out, "proximal_overhead_repeats.csv"), rows)
    write_csv_atomic(os.path.join(args.out, "proximal_overhead.csv"), summary)
    for row in summary:
        print(
            f"{row['workload']:>9} xla={row['jit_compile']!s:5} {row['optimizer']:>16}: "
            f"{row['median_ms_per_step']:7.2f} ms/step vs {row['baseline']} "
            f"{row['baseline_median_ms_per_step']:7.2f} -> x{row['ratio']:.3f} "
            f"(paired median x{row['median_paired_ratio']:.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
