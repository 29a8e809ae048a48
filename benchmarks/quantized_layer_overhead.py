"""Training-step time of QuantizedDense/QuantizedConv2D models vs float models.

Two models, each converted with `tf_lowprec.layers.quantize_model` (same
architecture and weights):
  * mlp: 784-512-512-10 Dense, batch 256;
  * cnn: `tf_lowprec.models.cnn()` (2 Conv2D + 2 Dense, 225k params), batch 128.
Three variants per model:
  * float: the Keras layers;
  * qat: weights and outputs 8-bit block floating point, nearest rounding;
  * swalp: weights, outputs, errors and weight gradients 8-bit block
    floating point, stochastic rounding everywhere (SWALP's setting).
Each is compiled with SGD, both with Keras's default `jit_compile="auto"`
(XLA for the whole step) and with `jit_compile=False`. A round times
`--steps` calls of `train_on_batch` for every variant, the order rotated
each round (`harness.interleave`); the table reports the median seconds per
step over rounds, the ratio to the float model's median in the same mode
(target <= 1.3) and the median paired ratio, in wall-clock time and in
process CPU time (less sensitive to other jobs on the machine).

Usage:
    nice python benchmarks/quantized_layer_overhead.py
Writes benchmarks/results/quantized_layer_overhead.csv.
"""

import argparse
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from harness import (
    describe,
    environment,
    interleave,
    paired_summary,
    train_step_timer,
)

from tf_lowprec import models
from tf_lowprec.experiments.results_io import write_csv_atomic
from tf_lowprec.formats import BlockFloatingPoint
from tf_lowprec.layers import quantize_model

RESULTS = pathlib.Path(__file__).parent / "results"
TARGET = 1.3


def _mlp():
    inputs = keras.Input((784,))
    h = keras.layers.Dense(512, activation="relu")(inputs)
    h = keras.layers.Dense(512, activation="relu")(h)
    return keras.Model(inputs, keras.layers.Dense(10)(h))


def _variants():
    per_row = BlockFloatingPoint(8, axis=-1)  # one exponent per output unit
    whole = BlockFloatingPoint(8, axis=None)
    qat = {"weight_format": per_row, "output_format": whole, "rounding": "nearest"}
    swalp = {"weight_format": per_row, "output_format": whole, "error_format": whole,
             "gradient_format": per_row, "rounding": "stochastic",
             "backward_rounding": "stochastic", "seed": 0}
    return {"float": None, "qat": qat, "swalp": swalp}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--output", default=str(RESULTS / "quantized_layer_overhead.csv"))
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    data = {
        "mlp": (rng.normal(size=(256, 784)).astype("float32"), rng.integers(0, 10, 256)),
        "cnn": (rng.normal(size=(128, 28, 28, 1)).astype("float32"), rng.integers(0, 10, 128)),
    }
    builders = {"mlp": _mlp, "cnn": models.cnn}
    timers, groups = {}, {}
    for model_name, build in builders.items():
        keras.utils.set_random_seed(0)
        base = build()
        for jit in ("auto", False):
            for variant, spec in _variants().items():
                model = base if spec is None else quantize_model(
                    base, {"Dense": spec, "Conv2D": spec})
                model = keras.models.clone_model(model) if spec is None else model
                model.set_weights(base.get_weights())
                model.compile(keras.optimizers.SGD(0.01),
                              keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                              jit_compile=jit)
                x, y = data[model_name]
                train_step_timer(model, x, y, 3)()
                key = f"{model_name} jit={jit} {variant}"
                timers[key] = train_step_timer(model, x, y, args.steps)
                groups[key] = (model_name, str(jit), variant)
    rows = interleave(timers, args.rounds, warmup=0)
    table = []
    for group in dict.fromkeys(g[:2] for g in groups.values()):
        keys = [k for k, g in groups.items() if g[:2] == group]
        summary = paired_summary([r for r in rows if r["variant"] in keys],
                                 baseline=f"{group[0]} jit={group[1]} float")
        for row in summary:
            model_name, jit, variant = groups[row["variant"]]
            table.append({"model": model_name, "jit_compile": jit, "variant": variant,
                          "ms_per_step": round(1e3 * row["median_seconds"], 2),
                          "ratio_to_float": round(row["ratio"], 3),
                          "paired_ratio_to_float": round(row["paired_ratio"], 3),
                          "cpu_ms_per_step": round(1e3 * row["median_cpu_seconds"], 2),
                          "cpu_ratio_to_float": round(row["cpu_ratio"], 3),
                          "meets_target": "" if variant == "float" else
                          ("yes" if row["ratio"] <= TARGET else "no")})
    env = environment()
    write_csv_atomic(args.output, [{**row, **env} for row in table])
    print(describe(env))
    print(f"# {args.rounds} interleaved rounds x {args.steps} steps")
    for row in table:
        print(f"{row['model']:<5}jit={row['jit_compile']:<6}{row['variant']:<7}"
              f"{row['ms_per_step']:>9.2f} ms/step  x{row['ratio_to_float']:.2f}"
              f" (paired x{row['paired_ratio_to_float']:.2f})"
              f"   cpu {row['cpu_ms_per_step']:>8.2f} ms x{row['cpu_ratio_to_float']:.2f}"
              f"  {row['meets_target']}")


if __name__ == "__main__":
    main()
