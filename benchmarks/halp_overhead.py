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

import statistics
import sys

import keras
import numpy as np
import tensorflow as tf
from harness import (
    choices,
    paired_summary,
    save,
    step_timer,
    time_train_steps,
    workload_parser,
)

from tf_lowprec import models
from tf_lowprec.optimizers import HALP, SVRG
from tf_lowprec.training import FullGradient, VarianceReduced

WORKLOADS = {
    "cnn_56k": {"build": lambda: models.cnn((28, 28, 1), 10, filters=(16, 32), dense_units=64),
                "batch": 128},
    "mlp_1.3m": {"build": lambda: models.mlp((28, 28, 1), 10, hidden_units=(1024, 512)),
                 "batch": 64},
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


def measure(name, repeats, steps, warmup):
    workload = WORKLOADS[name]
    x, y = _batch(workload["batch"])
    snapshot_data = tf.data.Dataset.from_tensor_slices((x, y)).batch(workload["batch"]).repeat(
        FULL_PASS_BATCHES)
    compiled = {
        opt: _compiled(workload, make, vr, snapshot_data)
        for opt, (make, vr) in OPTIMIZERS.items()
    }
    info = {"workload": name, "batch_size": workload["batch"]}
    rows = [{**info, **row} for row in time_train_steps(compiled, x, y, repeats, steps, warmup)]
    # One full-gradient pass (traced by the warm-up call), per batch.
    full = step_timer(FullGradient(compiled["svrg"], snapshot_data))
    full()
    full_pass = statistics.median(full().seconds for _ in range(max(3, repeats // 3)))
    return rows, full_pass / FULL_PASS_BATCHES


def summarize(rows, full_pass):
    summary = []
    for workload in dict.fromkeys(r["workload"] for r in rows):
        rows_of = [r for r in rows if r["workload"] == workload]
        vs_sgd = {r["variant"]: r for r in paired_summary(rows_of, "sgd")}
        vs_svrg = {r["variant"]: r for r in paired_summary(rows_of, "svrg")}
        med = {k: r["median_seconds"] for k, r in vs_sgd.items()}
        first = rows_of[0]
        summary.append({
            "workload": workload, "params": first["params"], "batch_size": first["batch_size"],
            "repeats": vs_sgd["sgd"]["repeats"],
            "sgd_ms": 1e3 * med["sgd"], "svrg_ms": 1e3 * med["svrg"],
            "halp8_ms": 1e3 * med["halp8"],
            "svrg_over_sgd": vs_sgd["svrg"]["ratio"],
            "halp_over_svrg": vs_svrg["halp8"]["ratio"],
            "paired_svrg_over_sgd": vs_sgd["svrg"]["paired_ratio"],
            "paired_halp_over_svrg": vs_svrg["halp8"]["paired_ratio"],
            "full_pass_ms_per_batch": 1e3 * full_pass[workload],
            "full_pass_per_batch_over_sgd_step": full_pass[workload] / med["sgd"],
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
                               (f"halp{bits}", lambda bits=bits: HALP(0.01, T=10, bits=bits))):
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
    parser = workload_parser(__doc__, ",".join(WORKLOADS), repeats=21, steps=10, warmup=5)
    args = parser.parse_args(argv)
    rows, full_pass, memory = [], {}, []
    for workload in choices(parser, "--workloads", args.workloads, WORKLOADS):
        timed, full_pass[workload] = measure(workload, args.repeats, args.steps, args.warmup)
        rows += timed
        memory += state_bytes(workload)
    summary = summarize(rows, full_pass)
    save(args.out, {"halp_step_time.csv": rows, "halp_step_time_summary.csv": summary,
                    "halp_state_bytes.csv": memory})
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
