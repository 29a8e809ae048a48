"""Throughput of `tf_lowprec.ops.quantize` per format and rounding mode.

Each quantizer reads a 16M-element float32 tensor and writes one, like the
baseline: a plain elementwise multiply `x * 2` of the same tensor (TF's own
multithreaded kernel, the memory-bandwidth bound). Every round times the
baseline and every variant once, the order rotated each round
(`harness.interleave`); the table reports medians over rounds, each
variant's ratio to the baseline's median (`ratio = t_multiply /
t_quantize`, 1.0 = as fast as the multiply) and the median paired ratio.
Targets: nearest >= 0.5, stochastic >= 0.25. Process CPU time is reported
as well (`cpu_ratio_to_multiply`), which is less sensitive to other jobs
sharing the machine than wall-clock time.

Extra rows (marked `reference`) justify design choices:
  * the fixed-point kernel as plain TF ops without XLA fusion, and
  * stochastic fixed point with `tf.random.stateless_uniform` (Philox, and
    ThreeFry) noise under XLA instead of the counter-based hash.

Usage:
    nice python benchmarks/quantizer_throughput.py            # full run
    python benchmarks/quantizer_throughput.py --size 1048576 --rounds 3
Writes benchmarks/results/quantizer_throughput.csv and .png.
"""

import argparse
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from harness import describe, environment, interleave, paired_summary, step_timer

from tf_lowprec.experiments.results_io import write_csv_atomic
from tf_lowprec.formats import (
    BlockFloatingPoint,
    FixedPoint,
    FloatingPoint,
    IntegerAffine,
)
from tf_lowprec.ops import quantize

RESULTS = pathlib.Path(__file__).parent / "results"
TARGET = {"nearest": 0.5, "stochastic": 0.25}

FORMATS = [
    FixedPoint(8, 4),
    BlockFloatingPoint(8, axis=None),
    BlockFloatingPoint(8, axis=0),
    BlockFloatingPoint(8, axis=-1),
    FloatingPoint(8, 7),
    FloatingPoint(5, 2),
    FloatingPoint(4, 3),
    IntegerAffine(8),
    IntegerAffine(8, per_channel_axis=0),
    IntegerAffine(4, symmetric=False, per_channel_axis=-1),
]


def _reference_variants(fmt):
    """Plain-TF and Philox/ThreeFry versions of fixed-point quantization."""
    scale, low, high = 2.0**fmt.fractional_length, -128.0, 127.0

    def plain_tf(x):
        q = tf.clip_by_value(tf.round(x * scale), low, high) / scale
        return tf.where(tf.math.is_finite(x), q, x)

    def stateless(alg):
        @tf.function(jit_compile=True)
        def run(x):
            u = tf.random.stateless_uniform(tf.shape(x), [1, 2], alg=alg)
            v = x * scale
            k = tf.floor(v) + tf.cast(1.0 - u <= v - tf.floor(v), tf.float32)
            q = tf.clip_by_value(k, low, high) / scale
            return tf.where(tf.math.is_finite(x), q, x)

        return run

    return [
        ("FixedPoint(8, 4) as plain TF ops, no XLA", "nearest", plain_tf),
        ("FixedPoint(8, 4) with Philox noise (XLA)", "stochastic", stateless("philox")),
        ("FixedPoint(8, 4) with ThreeFry noise (XLA)", "stochastic", stateless("threefry")),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=16 * 1024 * 1024)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--output", default=str(RESULTS / "quantizer_throughput"))
    args = parser.parse_args(argv)

    rows = int(np.sqrt(args.size))
    shape = (rows, args.size // rows)
    x = tf.constant(np.random.default_rng(0).normal(size=shape).astype(np.float32))
    nbytes = 2 * 4 * x.shape.num_elements()  # read + write

    variants = [("multiply x * 2 (baseline)", "-", "baseline", lambda t: t * 2.0)]
    for fmt in FORMATS:
        for mode in ("nearest", "stochastic"):
            variants.append(
                (repr(fmt), mode, "quantize",
                 lambda t, fmt=fmt, mode=mode: quantize(t, fmt, mode, seed=1))
            )
    for name, mode, fn in _reference_variants(FixedPoint(8, 4)):
        variants.append((name, mode, "reference", fn))

    names = [f"{name} [{mode}]" for name, mode, _, _ in variants]
    timers = {key: step_timer(lambda fn=fn: fn(x)) for key, (_, _, _, fn) in zip(names, variants)}
    rows = interleave(timers, args.rounds, warmup=2)  # the warm-up calls compile
    summary = {r["variant"]: r for r in paired_summary(rows, baseline=names[0])}

    table = []
    for key, (name, mode, kind, _) in zip(names, variants):
        row = summary[key]
        ratio = 1.0 / row["ratio"]  # throughput relative to the multiply
        target = TARGET.get(mode) if kind == "quantize" else None
        table.append({
            "format": name,
            "rounding": mode,
            "kind": kind,
            "median_ms": round(1e3 * row["median_seconds"], 3),
            "gb_per_s": round(nbytes / row["median_seconds"] / 1e9, 2),
            "ratio_to_multiply": round(ratio, 3),
            "paired_ratio_to_multiply": round(1.0 / row["paired_ratio"], 3),
            "cpu_ms": round(1e3 * row["median_cpu_seconds"], 3),
            "cpu_ratio_to_multiply": round(1.0 / row["cpu_ratio"], 3),
            "target_ratio": target if target is not None else "",
            "meets_target": ("yes" if ratio >= target else "no") if target else "",
        })
    output = pathlib.Path(args.output)
    env = environment()
    write_csv_atomic(str(output.with_suffix(".csv")), [{**row, **env} for row in table])
    print(describe(env))
    print(f"# {x.shape.num_elements()} float32, {args.rounds} interleaved rounds")
    for row in table:
        print(f"{row['format']:<66}{row['rounding']:<11}{row['median_ms']:>9.2f} ms"
              f"{row['gb_per_s']:>8.2f} GB/s  ratio {row['ratio_to_multiply']:.2f}"
              f"  (paired {row['paired_ratio_to_multiply']:.2f}, cpu ratio "
              f"{row['cpu_ratio_to_multiply']:.2f})  {row['meets_target']}")
    _plot(table, output.with_suffix(".png"))


def _plot(table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in table if r["kind"] != "baseline"]
    labels = [f"{r['format']} [{r['rounding']}]" for r in rows]
    colors = ["tab:blue" if r["rounding"] == "nearest" else "tab:orange" for r in rows]
    colors = [c if r["kind"] == "quantize" else "tab:gray" for c, r in zip(colors, rows)]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.5))
    ax.barh(range(len(rows)), [r["ratio_to_multiply"] for r in rows], color=colors)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0.5, color="tab:blue", ls="--", lw=1, label="nearest target 0.5")
    ax.axvline(0.25, color="tab:orange", ls="--", lw=1, label="stochastic target 0.25")
    ax.set_xlabel("throughput / throughput of x * 2 (same run, medians)")
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
