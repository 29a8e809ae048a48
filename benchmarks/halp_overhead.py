"""Step time of SVRG vs SGD and HALP vs SVRG, and optimizer-state bytes of HALP vs SVRG.

    nice -n 10 python benchmarks/halp_overhead.py                  # ~5 min, 2 CPU cores
    python benchmarks/halp_overhead.py --repeats 3 --steps 5 --out /tmp/x   # smoke

Step time. Two workloads: (a) the CNN of `examples/halp` (56,714 parameters,
batch 128), (b) an optimizer-heavy MLP 784-1024-512-10 (1.33M parameters,
batch 64). For each, three models start from the same weights: plain
`keras.optimizers.SGD`, and `VarianceReduced` with `SVRG` and with 8-bit
`HALP`, all compiled the same way (no XLA on CPU). The variance-reduced
models take one snapshot first, with `T` larger than the timed steps, so the
timed steps are inner-loop steps only. After a warm-up, repeats alternate
between the three (rotating the order) and time `--steps` consecutive
`train_on_batch` calls on a fixed batch. Reported: median ms per step, the
ratio of medians SVRG/SGD and HALP/SVRG, and the median of per-repeat paired
ratios. Also reported: the time per batch of a full-gradient pass (16
batches), to be amortised as `1 / T` of a pass per step.

State bytes. For each workload, bits in {2, 4, 8, 16}: the bytes of every
optimizer variable of HALP and of SVRG, split by role (center/snapshot,
integer offset, full gradient, scales, counters).

Writes `<out>/halp_step_time.csv` (every repeat),
`<out>/halp_step_time_summary.csv` and `<out>/halp_state_bytes.csv`.
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
from tf_lowprec.optimizers import HALP, SVRG  # noqa: E402
from tf_lowprec.training import FullGradient, VarianceReduced  # noqa: E402

WORKLOADS = {
    "cnn_56k": dict(build=lambda: models.cnn((28, 28, 1), 10, filters=(16, 32), dense_units=64),
                    batch=128),
    "mlp_1.3m": dict(build=lambda: models.mlp((28, 28, 1), 10, hidden_units=(1024, 512)),
                     batch=64),
}
OPTIMIZERS = {
    "sgd": (lambda: keras.optimizers.SGD(0.01), False),
    "svrg": (lambda: SVRG(0.01, T=10**6), True),
    "halp8": (lambda: HALP(0.01, T=10**6, mu=20.0, bits=8, seed=0), True),
}
FULL_PASS_BATCHES = 16
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _batch(size, seed=0):
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.normal(size=(size, 28, 28, 1)).astype("float32"))
    y = tf.constant(rng.integers(0, 10, size).astype("int32"))
    return x, y


def _compiled(workload, make_optimizer, variance_reduced, snapshot_data):
    keras.utils.set_random_seed(0)
    model = workload["build"]()
    if variance_reduced:
        model = VarianceReduced(model)
    model.compile(optimizer=make_optimizer(), loss=LOSS)
    if variance_reduced:
        model.take_snapshot(snapshot_data)
    return model


def _time_steps(model, x, y, steps):
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(x, y)
    float(loss)
    return (time.perf_counter() - start) / steps


def measure(name, repeats, steps, warmup):
    workload = WORKLOADS[name]
    x, y = _batch(workload["batch"])
    snapshot_data = tf.data.Dataset.from_tensor_slices((x, y)).batch(workload["batch"]).repeat(
        FULL_PASS_BATCHES)
    compiled = {
        opt: _compiled(workload, make, vr, snapshot_data)
        for opt, (make, vr) in OPTIMIZERS.items()
    }
    params = compiled["sgd"].count_params()
    for model in compiled.values():
        _time_steps(model, x, y, warmup)
    rows = []
    names = list(compiled)
    for repeat in range(repeats):
        order = names[repeat % len(names):] + names[: repeat % len(names)]
        for opt in order:
            rows.append({
                "workload": name, "optimizer": opt, "params": params,
                "batch_size": workload["batch"], "repeat": repeat,
                "seconds_per_step": _time_steps(compiled[opt], x, y, steps),
            })
    # One full-gradient pass (traced once first), per batch.
    full = FullGradient(compiled["svrg"], snapshot_data)
    full()
    passes = []
    for _ in range(max(3, repeats // 3)):
        start = time.perf_counter()
        full()
        passes.append((time.perf_counter() - start) / FULL_PASS_BATCHES)
    return rows, statistics.median(passes)


def summarize(rows, full_pass):
    summary = []
    for workload in dict.fromkeys(r["workload"] for r in rows):
        per_opt = {}
        for r in rows:
            if r["workload"] == workload:
                per_opt.setdefault(r["optimizer"], {})[r["repeat"]] = r["seconds_per_step"]
        med = {k: statistics.median(v.values()) for k, v in per_opt.items()}

        def paired(a, b):
            return statistics.median(per_opt[a][k] / per_opt[b][k] for k in per_opt[a])

        first = next(r for r in rows if r["workload"] == workload)
        summary.append({
            "workload": workload, "params": first["params"], "batch_size": first["batch_size"],
            "repeats": len(per_opt["sgd"]),
            "sgd_ms": 1e3 * med["sgd"], "svrg_ms": 1e3 * med["svrg"],
            "halp8_ms": 1e3 * med["halp8"],
            "svrg_over_sgd": med["svrg"] / med["sgd"],
            "halp_over_svrg": med["halp8"] / med["svrg"],
            "paired_svrg_over_sgd": paired("svrg", "sgd"),
            "paired_halp_over_svrg": paired("halp8", "svrg"),
            "full_pass_ms_per_batch": 1e3 * full_pass[workload],
            "full_pass_per_batch_over_sgd_step": full_pass[workload] / med["sgd"],
            "device": f"CPU x{os.cpu_count()} ({platform.processor() or platform.machine()})",
            "tensorflow": tf.__version__, "keras": keras.__version__,
        })
    return summary


def _role(path):
    for role in ("snapshot", "full_gradient", "offset", "scale"):
        if role in path:
            return role
    return "counters"


def state_bytes(name):
    rows = []
    for bits in (2, 4, 8, 16):
        for opt_name, make in (("svrg", lambda: SVRG(0.01, T=10)),
                               (f"halp{bits}", lambda: HALP(0.01, T=10, bits=bits))):
            if opt_name == "svrg" and bits != 8:
                continue
            keras.utils.set_random_seed(0)
            model = WORKLOADS[name]["build"]()
            optimizer = make()
            optimizer.build(model.trainable_variables)
            by_role = {}
            for v in optimizer.variables:
                size = int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size
                by_role[_role(v.path)] = by_role.get(_role(v.path), 0) + size
            params = model.count_params()
            total = sum(by_role.values())
            rows.append({
                "workload": name, "optimizer": opt_name, "bits": bits if opt_name != "svrg" else 32,
                "params": params, "total_bytes": total, "bytes_per_param": total / params,
                **{f"{role}_bytes": by_role.get(role, 0)
                   for role in ("snapshot", "offset", "full_gradient", "scale", "counters")},
                "model_weight_bytes": 4 * params,
            })
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    rows, full_pass, memory = [], {}, []
    for workload in args.workloads.split(","):
        if workload not in WORKLOADS:
            parser.error(f"--workloads: unknown {workload!r}; valid: {', '.join(WORKLOADS)}")
        timed, full_pass[workload] = measure(workload, args.repeats, args.steps, args.warmup)
        rows += timed
        memory += state_bytes(workload)
    summary = summarize(rows, full_pass)
    write_csv_atomic(os.path.join(args.out, "halp_step_time.csv"), rows)
    write_csv_atomic(os.path.join(args.out, "halp_step_time_summary.csv"), summary)
    write_csv_atomic(os.path.join(args.out, "halp_state_bytes.csv"), memory)
    for r in summary:
        print(f"{r['workload']:>9}: SGD {r['sgd_ms']:.2f} ms, SVRG {r['svrg_ms']:.2f} ms "
              f"(x{r['svrg_over_sgd']:.2f} SGD, paired x{r['paired_svrg_over_sgd']:.2f}), "
              f"HALP-8 {r['halp8_ms']:.2f} ms (x{r['halp_over_svrg']:.2f} SVRG, paired "
              f"x{r['paired_halp_over_svrg']:.2f}); full pass {r['full_pass_ms_per_batch']:.2f} "
              f"ms/batch")
    for r in memory:
        print(f"{r['workload']:>9} {r['optimizer']:>6}: {r['total_bytes'] / 1e6:7.2f} MB "
              f"({r['bytes_per_param']:.2f} B/param; offset {r['offset_bytes'] / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
