"""Training memory (and step time) of 8-bit Adam and bfloat16 weights.

    python benchmarks/low_precision_memory.py memory                # peak RSS, ~55M-param MLP
    python benchmarks/low_precision_memory.py memory --width 512 --steps 2 --out /tmp/x  # smoke
    nice python benchmarks/low_precision_memory.py time             # step time (idle machine!)
    python benchmarks/low_precision_memory.py time --width 256 --repeats 3 --steps 2 --out /tmp/x

Model: an MLP 1024 -> width x 4 -> 10 (`--width 4096`: 54.6M parameters,
all but 0.03% in the four big kernels), batch 64, random data, softmax
cross-entropy, `model.fit`-style `train_on_batch` steps. Configurations:

* `adam`: Keras Adam, float32 weights (16 bytes/param: weights, m, v, grads);
* `adam8bit`: `tf_lowprec.optimizers.Adam8bit` (block 256), float32 weights;
* `adam8bit_bf16`: bfloat16 variables (policy "bfloat16") trained with
  `StochasticRounding(Adam8bit)`.

`memory` runs each configuration in its own fresh Python process (so one
cannot inherit another's allocations): it builds the model, trains `--steps`
steps, and reports the process's peak resident set size
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`), the RSS of the same process
after importing TensorFlow and Keras and before building anything (the
baseline every TF process pays), and `tf_lowprec.memory.report`'s bytes per
parameter. Writes `<out>/low_precision_memory.csv`.

`--kernel-lanes N` runs the 8-bit kernels of N variables at once (default:
`tf_lowprec.optimizers.blockwise_states.KERNEL_LANES`, 1): faster on two
cores, more peak memory; the CSVs record the number used.

`time` (the lead runs it on an idle machine) measures step time of the
three configurations against Keras Adam in one process, with the shared
harness (`benchmarks/harness.py`: warm-up, `--repeats` rotating repeats of
`--steps` steps, medians and paired ratios). Writes
`<out>/low_precision_memory_step_time.csv` (summary) and
`..._repeats.csv`.
"""

import argparse
import json
import os
import resource
import subprocess
import sys

CONFIGS = ("adam", "adam8bit", "adam8bit_bf16")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
# The checkout's tf_lowprec, not an installed copy (a non-editable install
# would otherwise win: `python benchmarks/x.py` puts benchmarks/, not the
# checkout, on sys.path). The memory children run this file too.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _rss_mib():
    """Current resident set size of this process, MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def build(config, width, seed=0):
    """The compiled model of `config` (the same float32 initial weights for all)."""
    import keras

    from tf_lowprec.optimizers import Adam8bit, StochasticRounding

    def mlp():
        layers = [keras.Input((1024,))]
        layers += [keras.layers.Dense(width, activation="relu") for _ in range(4)]
        return keras.Sequential([*layers, keras.layers.Dense(10)])

    keras.utils.set_random_seed(seed)
    bf16 = config.endswith("bf16")
    keras.mixed_precision.set_global_policy("bfloat16" if bf16 else "float32")
    try:
        model = mlp()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if config == "adam":
        optimizer = keras.optimizers.Adam(1e-3)
    else:
        optimizer = Adam8bit(1e-3)
        if bf16:
            optimizer = StochasticRounding(optimizer, seed=0)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def batch(seed=0):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    x = tf.constant(rng.normal(size=(64, 1024)).astype("float32"))
    y = tf.constant(rng.integers(0, 10, 64).astype("int32"))
    return x, y


def set_kernel_lanes(lanes):
    """`--kernel-lanes`: 8-bit kernels run at once (None: the library's
    default). Returns the number in effect."""
    from tf_lowprec.optimizers import blockwise_states

    if lanes is not None:
        blockwise_states.KERNEL_LANES = lanes
    return blockwise_states.KERNEL_LANES


def child(config, width, steps, lanes=None):
    """One configuration in this process; prints one JSON line."""
    import keras  # noqa: F401  (the baseline includes TF and Keras)
    import tensorflow as tf  # noqa: F401

    from tf_lowprec import memory

    lanes = set_kernel_lanes(lanes)

    baseline = _rss_mib()
    model = build(config, width)
    x, y = batch()
    losses = [float(model.train_on_batch(x, y)) for _ in range(steps)]
    report = memory.report(model, model.optimizer)
    print(
        json.dumps(
            {
                "config": config,
                "width": width,
                "steps": steps,
                "kernel_lanes": lanes,
                "parameters": report.parameters,
                "peak_rss_mib": round(_peak_rss_mib(), 1),
                "baseline_rss_mib": round(baseline, 1),
                "final_rss_mib": round(_rss_mib(), 1),
                "weight_bytes_per_param": round(report.per_parameter("weights"), 4),
                "state_bytes_per_param": round(report.per_parameter("optimizer"), 4),
                "gradient_bytes_per_param": round(report.per_parameter("gradients"), 4),
                "tensor_mib": round(report.bytes() / 2**20, 1),
                "float32_tensor_mib": round(report.float32_bytes() / 2**20, 1),
                "last_loss": losses[-1],
            }
        ),
        flush=True,
    )


def measure_memory(args):
    from tf_lowprec.experiments.results_io import write_csv_atomic

    rows = []
    for config in args.configs.split(","):
        completed = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "_child", config,
             str(args.width), str(args.steps), str(args.kernel_lanes or 0)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if completed.returncode != 0:
            sys.exit(f"{config} failed:\n{completed.stderr[-3000:]}")
        row = json.loads(completed.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{config:14} {row['parameters']:,} params: peak RSS {row['peak_rss_mib']:8.1f} MiB "
            f"(TF baseline {row['baseline_rss_mib']:.0f}); weights {row['weight_bytes_per_param']} "
            f"+ state {row['state_bytes_per_param']} + grads {row['gradient_bytes_per_param']} B/param",
            flush=True,
        )
    reference = next((r for r in rows if r["config"] == "adam"), None)
    for row in rows:
        if reference:
            row["peak_rss_saving_mib"] = round(reference["peak_rss_mib"] - row["peak_rss_mib"], 1)
    os.makedirs(args.out, exist_ok=True)
    write_csv_atomic(os.path.join(args.out, "low_precision_memory.csv"), rows)
    return rows


def measure_time(args):
    from harness import paired_summary, save, time_train_steps

    import tf_lowprec

    print(f"tf_lowprec from {os.path.dirname(tf_lowprec.__file__)}", flush=True)
    lanes = set_kernel_lanes(args.kernel_lanes)
    x, y = batch()
    models = {config: build(config, args.width) for config in args.configs.split(",")}
    rows = time_train_steps(models, x, y, args.repeats, args.steps, args.warmup)
    rows = [{**row, "width": args.width, "kernel_lanes": lanes} for row in rows]
    summary = [row for row in paired_summary(rows, "adam") if row["variant"] != "adam"]
    save(
        args.out,
        {
            "low_precision_memory_step_time_repeats.csv": rows,
            "low_precision_memory_step_time.csv": summary,
        },
    )
    for row in summary:
        print(
            f"{row['variant']:>14}: {1e3 * row['median_seconds']:8.2f} ms/step vs adam "
            f"x{row['ratio']:.3f} (paired median x{row['paired_ratio']:.3f})"
        )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        child(argv[1], int(argv[2]), int(argv[3]), int(argv[4]) or None)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=("memory", "time"))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=None, help="memory: 3; time: 10")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default=OUT)
    parser.add_argument(
        "--kernel-lanes", type=int, default=None,
        help="8-bit kernels of different variables run at once "
        "(tf_lowprec.optimizers.blockwise_states.KERNEL_LANES; default: its value)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.kernel_lanes is not None and args.kernel_lanes < 1:
        parser.error(f"--kernel-lanes must be >= 1. Received: {args.kernel_lanes}")
    for config in args.configs.split(","):
        if config not in CONFIGS:
            parser.error(f"--configs: unknown {config!r}; valid: {', '.join(CONFIGS)}")
    if args.mode == "memory":
        args.steps = args.steps or 3
        measure_memory(args)
    else:
        args.steps = args.steps or 10
        measure_time(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
