"""Training-step time of int8 quantization-aware models vs their float models.

    python benchmarks/qat_overhead.py                 # ~2 min on 2 idle cores
    python benchmarks/qat_overhead.py --workloads cnn --jit-compile false,true  # + XLA, ~3 min
    python benchmarks/qat_overhead.py --tfmot-python VENV/bin/python  # + TFMOT, ~4 min
    python benchmarks/qat_overhead.py --repeats 2 --steps 2 --warmup 1 --out /tmp/qat  # smoke

Issue 12's target: a QAT training step of `tf_lowprec.layers.quantize_model(
model, scheme="int8")` takes <= 1.25x the float model's step (TFMOT's QAT on
tf_keras: 1.23x). Two workloads, Fashion-MNIST shapes, batch 128 (what
`examples/deploy_int8` trains with), random images and labels:

  * `cnn`: `tf_lowprec.models.cnn()` (2 Conv2D + ReLU + max-pool, 2 Dense;
    225k parameters), no BatchNormalization;
  * `mobilenet`: `mobilenet_small` of `examples/deploy_int8/deploy_int8.py`
    (stem + 4 depthwise-separable blocks, every conv followed by
    BatchNormalization + ReLU6, 121k parameters), so the int8 model trains
    with BN folding (batch statistics, `Int8Fused`).

Per workload the float model and its int8 QAT copy start from the same
weights and are compiled alike (Adam 1e-4, sparse categorical cross-entropy
on logits, as deploy_int8's fine-tuning) with `jit_compile=False`: what
Keras's default `"auto"` resolves to for both models on this CPU, so what
`fit` (and deploy_int8) ran. `--jit-compile true` (or `false,true`) adds
XLA-compiled steps; on this CPU XLA makes both models slower (cnn 2-3x,
mobilenet ~10x: its depthwise convolutions; smoke runs), so it is off by default.
Timed: `train_on_batch` on one fixed batch (`harness.time_train_steps`):
after `--warmup` untimed steps, each repeat times `--steps` consecutive
steps of each model, the order rotated between repeats. Reported per
workload and mode: median ms/step of both, the ratio of medians, the median
paired ratio (int8/float timed back to back in the same repeat; the number
to quote on a shared machine, and the one `meets_target` uses) and the
CPU-time ratio. Writes `<out>/qat_overhead.csv` (summary, with the
environment columns incl. load average) and `<out>/qat_overhead_repeats.csv`.

With `--tfmot-python VENV/bin/python` (a virtual environment with `pip
install -e ".[tfmot]"`), `tfmot_qat_overhead.py` then times the same
workloads in that interpreter: TFMOT's `quantize_model` against the tf_keras
float model, same batch, compile settings and `jit_compile=False`, its own
interleaved repeats (after ours, so the two frameworks are not interleaved
with each other; each ratio is to its own framework's float model). Its
rows are added to the summary as variant `tfmot_int8` (`framework`
`tf_keras`).
"""

import functools
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
from harness import (
    measure_grid,
    paired_summary,
    same_start_models,
    save,
    time_train_steps,
    workload_parser,
)

from tf_lowprec import models
from tf_lowprec.layers import quantize_model

TARGET = 1.25
BATCH = 128
EXAMPLE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "examples", "deploy_int8", "deploy_int8.py"
)


@functools.cache
def _example():
    spec = importlib.util.spec_from_file_location("deploy_int8", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


def _mobilenet_small():
    """`mobilenet_small` of examples/deploy_int8 (imported from the example, not copied)."""
    return _example().mobilenet_small()


def _images(rng):
    return rng.normal(size=(BATCH, 28, 28, 1)).astype("float32"), BATCH


WORKLOADS = {"cnn": models.cnn, "mobilenet": _mobilenet_small}
VARIANTS = {
    "float": lambda: keras.optimizers.Adam(1e-4),
    "int8": lambda: keras.optimizers.Adam(1e-4),
}


def _prepare(name, model):
    return quantize_model(model, scheme="int8") if name == "int8" else model


def measure(workload, jit_compile, repeats, steps, warmup):
    compiled, x, y, batch = same_start_models(
        WORKLOADS[workload], _images, VARIANTS, jit_compile, prepare=_prepare)
    info = {"workload": workload, "jit_compile": jit_compile, "batch_size": batch}
    rows = [{**info, **row} for row in time_train_steps(compiled, x, y, repeats, steps, warmup)]
    paired = {row["variant"]: row for row in paired_summary(rows, "float")}
    summary = [{"framework": "keras3", **info, **paired["int8"],
                "baseline_median_seconds": paired["float"]["median_seconds"],
                "target": TARGET, "meets_target": paired["int8"]["paired_ratio"] <= TARGET}]
    return rows, summary


def tfmot_rows(python, workloads, repeats, steps, warmup):
    """Summary rows of `tfmot_qat_overhead.py` run in the interpreter `python`."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tfmot_qat_overhead.py")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "tfmot.json")
        subprocess.run([python, script, "--out-json", out, "--workloads", ",".join(workloads),
                        "--repeats", str(repeats), "--steps", str(steps), "--warmup", str(warmup)],
                       check=True)
        with open(out) as f:
            results = json.load(f)
    return [{"framework": "tf_keras", "workload": name, "jit_compile": False,
             "batch_size": BATCH, **row, "target": TARGET,
             "meets_target": row["paired_ratio"] <= TARGET}
            for name, row in results.items()]


def main(argv=None):
    parser = workload_parser(__doc__, "cnn,mobilenet", repeats=21, steps=20, warmup=5,
                             jit_compile=True)
    parser.set_defaults(jit_compile="false")
    parser.add_argument("--tfmot-python", default=None, metavar="PYTHON",
                        help="also time TFMOT's QAT in this interpreter (tf_keras venv)")
    args = parser.parse_args(argv)
    rows, summary = measure_grid(measure, parser, args, WORKLOADS)
    if args.tfmot_python:
        workloads = list(dict.fromkeys(row["workload"] for row in summary))
        summary += tfmot_rows(args.tfmot_python, workloads, args.repeats, args.steps,
                              args.warmup)
    save(args.out, {"qat_overhead_repeats.csv": rows, "qat_overhead.csv": summary})
    print(f"# {args.repeats} interleaved repeats x {args.steps} steps, batch {BATCH}")
    for row in summary:
        print(f"{row['workload']:>9} jit_compile={row['jit_compile']!s:5} "
              f"{row['framework']:>8} {row['variant']:>10} "
              f"{1e3 * row['median_seconds']:7.2f} ms/step vs float "
              f"{1e3 * row['baseline_median_seconds']:7.2f}: x{row['ratio']:.3f} "
              f"(paired x{row['paired_ratio']:.3f}, cpu x{row['cpu_ratio']:.3f}; "
              f"target <= {TARGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
