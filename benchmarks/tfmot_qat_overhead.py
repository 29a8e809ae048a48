"""TFMOT baseline for benchmarks/qat_overhead.py: QAT vs float train-step time in tf_keras.

    VENV/bin/python benchmarks/tfmot_qat_overhead.py --out-json tfmot.json \
        --workloads cnn,mobilenet --repeats 21 --steps 20 --warmup 5

Launched by `qat_overhead.py --tfmot-python VENV/bin/python` (VENV: a
virtual environment with `pip install -e ".[tfmot]"`). TFMOT switches
`tf.keras` to tf_keras for the whole process, so this runs alone in its own
interpreter and builds no Keras 3 model. The workloads are
`qat_overhead.py`'s rebuilt in tf_keras: the `cnn` of `tfmot_prune.py` and
the `mobilenet_small` of `tfmot_qat.py` (same layers as the Keras 3
models), batch 128 of random images and labels drawn as `qat_overhead.py`
draws them. Per workload the float model and
`tfmot.quantization.keras.quantize_model` of it (same weights) are compiled
alike (Adam 1e-4, sparse categorical cross-entropy on logits,
`jit_compile=False`) and timed with `harness.time_train_steps`
(`train_on_batch`, warm-up, `--repeats` rounds of `--steps` steps, order
rotated). Writes `{workload: harness.paired_summary row of TFMOT's QAT
model against the tf_keras float model, plus baseline_median_seconds}` to
`--out-json`.
"""

import argparse
import json
import sys

# TFMOT first: it decides what tf.keras means in this process.
import tensorflow_model_optimization as tfmot

# isort: split
import numpy as np
import tf_keras
from harness import paired_summary, time_train_steps  # no Keras inside
from tfmot_prune import build_cnn
from tfmot_qat import mobilenet_small

BATCH = 128
WORKLOADS = {"cnn": lambda: build_cnn((28, 28, 1), 10), "mobilenet": mobilenet_small}


def _compiled(model):
    model.compile(
        optimizer=tf_keras.optimizers.Adam(1e-4),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    return model


def measure(workload, repeats, steps, warmup):
    """`paired_summary` row of TFMOT QAT vs the tf_keras float model (baseline "float"),
    plus the float model's `baseline_median_seconds`."""
    rng = np.random.default_rng(0)  # the draws of harness.same_start_models
    x = rng.normal(size=(BATCH, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, BATCH).astype("int32")
    tf_keras.utils.set_random_seed(0)
    plain = WORKLOADS[workload]()
    quantized = tfmot.quantization.keras.quantize_model(plain)
    models = {"float": _compiled(plain), "tfmot_int8": _compiled(quantized)}
    rows = time_train_steps(models, x, y, repeats, steps, warmup)
    paired = {row["variant"]: row for row in paired_summary(rows, "float")}
    return {**paired["tfmot_int8"], "baseline_median_seconds": paired["float"]["median_seconds"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-json", required=True)
    parser.add_argument("--workloads", default="cnn,mobilenet")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    names = [n for n in args.workloads.split(",") if n]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"--workloads: unknown {unknown}; valid: {', '.join(WORKLOADS)}")
    results = {n: measure(n, args.repeats, args.steps, args.warmup) for n in names}
    with open(args.out_json, "w") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
