"""Step time of LowPrecision(SGD) (SWALP's optimizer) relative to Keras SGD.

    nice python benchmarks/low_precision_overhead.py               # ~5 min on 2 cores
    python benchmarks/low_precision_overhead.py --repeats 3 --steps 3 --out /tmp/x  # smoke

Optimizers, each against `keras.optimizers.SGD(0.05, momentum=0.9)`:
  * `lp_sgd`: `tf_lowprec.optimizers.low_precision_sgd` (8-bit small-block BFP
    weights, gradients, momentum and accumulator, stochastic rounding; the
    weight and accumulator formats agree, so no separate accumulator);
  * `lp_sgd_nearest`: the same with nearest rounding (no random numbers);
  * `lp_sgd_fp_acc`: 8-bit weights, gradients and momentum with a
    full-precision accumulator (one extra copy of the weights, written every
    step);
  * `swalp_step` (CNN only): `lp_sgd` on the model with SWALP's 8-bit
    activation/error `Quantize` layers after every ReLU: the whole SWALP
    training step, not only the optimizer.
Workloads:
  (a) `mlp`: dense 784-1024-1024-10 (~1.9M parameters) at batch 64, where the
      optimizer is a large share of the step;
  (b) `cnn`: `tf_lowprec.models.cnn` (Fashion-MNIST, 225k parameters) at
      batch 128, the model of examples/swalp.
All models of a workload start from the same weights and run in this one
process, once without XLA (Keras's default on CPU) and once with
`jit_compile=True` (the default on a GPU). After a warm-up, each repeat
times `--steps` consecutive `train_on_batch` calls per variant, rotating the
order between repeats. Reported per variant: median ms/step, the ratio of
medians against SGD, and the median of per-repeat paired ratios (robust to
load drifts on a shared machine). Writes `<out>/low_precision_overhead.csv`
(summary) and `<out>/low_precision_overhead_repeats.csv` (every repeat).
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

from tf_lowprec import models as model_zoo  # noqa: E402
from tf_lowprec.experiments.results_io import write_csv_atomic  # noqa: E402
from tf_lowprec.formats import BlockFloatingPoint  # noqa: E402
from tf_lowprec.optimizers import LowPrecision  # noqa: E402
from tf_lowprec.optimizers import low_precision_sgd  # noqa: E402
from tf_lowprec.optimizers import quantize_activations  # noqa: E402
from tf_lowprec.optimizers import swalp_formats  # noqa: E402


def _fp_accumulator():
    bfp8 = (BlockFloatingPoint(8, axis=-1), "stochastic")
    return LowPrecision(
        keras.optimizers.SGD(0.05, momentum=0.9),
        weight_quantizer=bfp8, gradient_quantizer=bfp8, momentum_quantizer=bfp8, seed=0,
    )  # fmt: skip


# name -> (optimizer factory, quantize activations?, workloads)
VARIANTS = {
    "sgd": (lambda: keras.optimizers.SGD(0.05, momentum=0.9), False, ("mlp", "cnn")),
    "lp_sgd": (lambda: low_precision_sgd(0.05, seed=0), False, ("mlp", "cnn")),
    "lp_sgd_nearest": (lambda: low_precision_sgd(0.05, rounding="nearest"), False, ("mlp", "cnn")),
    "lp_sgd_fp_acc": (_fp_accumulator, False, ("mlp", "cnn")),
    "swalp_step": (lambda: low_precision_sgd(0.05, seed=0), True, ("cnn",)),
}


def _mlp():
    inputs = keras.Input((784,))
    x = keras.layers.Dense(1024, activation="relu")(inputs)
    x = keras.layers.Dense(1024, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


WORKLOADS = {
    "mlp": (_mlp, lambda rng: (rng.normal(size=(64, 784)).astype("float32"), 64)),
    "cnn": (model_zoo.cnn, lambda rng: (rng.normal(size=(128, 28, 28, 1)).astype("float32"), 128)),
}


def _compiled(build, weights, make_optimizer, activations, jit_compile):
    model = build()
    model.set_weights(weights)
    if activations:
        fmt = swalp_formats()[1]
        model = quantize_activations(model, fmt, fmt, seed=0)
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
        name: _compiled(build, weights, make, activations, jit_compile)
        for name, (make, activations, workloads) in VARIANTS.items()
        if workload in workloads
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
        base = times["sgd"]
        for name, ours in times.items():
            if name == "sgd":
                continue
            summary.append({
                "workload": workload, "jit_compile": jit,
                "optimizer": name, "baseline": "sgd",
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
    parser.add_argument("--workloads", default="mlp,cnn")
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
    write_csv_atomic(os.path.join(args.out, "low_precision_overhead_repeats.csv"), rows)
    write_csv_atomic(os.path.join(args.out, "low_precision_overhead.csv"), summary)
    for row in summary:
        print(
            f"{row['workload']:>4} xla={row['jit_compile']!s:5} {row['optimizer']:>15}: "
            f"{row['median_ms_per_step']:7.2f} ms/step vs sgd "
            f"{row['baseline_median_ms_per_step']:7.2f} -> x{row['ratio']:.3f} "
            f"(paired median x{row['median_paired_ratio']:.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
