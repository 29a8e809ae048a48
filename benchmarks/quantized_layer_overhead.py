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
`--steps` calls of `train_on_batch` for every variant in alternating order;
the table reports the median seconds per step over rounds and the ratio to
the float model's median in the same mode (target <= 1.3), in wall-clock
time and in process CPU time (less sensitive to other jobs on the machine).

Usage:
    nice python benchmarks/quantized_layer_overhead.py
Writes benchmarks/results/quantized_layer_overhead.csv.
"""

import argparse
import csv
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tf_lowprec import models  # noqa: E402
from tf_lowprec.formats import BlockFloatingPoint  # noqa: E402
from tf_lowprec.layers import quantize_model  # noqa: E402

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--output", default=str(RESULTS / "quantized_layer_overhead.csv"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    data = {
        "mlp": (rng.normal(size=(256, 784)).astype("float32"), rng.integers(0, 10, 256)),
        "cnn": (rng.normal(size=(128, 28, 28, 1)).astype("float32"), rng.integers(0, 10, 128)),
    }
    builders = {"mlp": _mlp, "cnn": models.cnn}
    runs = []
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
                for _ in range(3):
                    model.train_on_batch(x, y)
                runs.append({"model": model_name, "jit_compile": str(jit),
                             "variant": variant, "keras_model": model, "x": x, "y": y,
                             "times": [], "cpu_times": []})
    for r in range(args.rounds):
        order = runs if r % 2 == 0 else runs[::-1]
        for run in order:
            model, x, y = run["keras_model"], run["x"], run["y"]
            start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            run["times"].append((time.perf_counter() - start) / args.steps)
            run["cpu_times"].append((time.process_time() - cpu_start) / args.steps)
    table = []
    for run in runs:
        reference = next(
            r for r in runs if r["model"] == run["model"]
            and r["jit_compile"] == run["jit_compile"] and r["variant"] == "float")
        median = float(np.median(run["times"]))
        ratio = median / float(np.median(reference["times"]))
        cpu = float(np.median(run["cpu_times"]))
        cpu_ratio = cpu / float(np.median(reference["cpu_times"]))
        table.append({"model": run["model"], "jit_compile": run["jit_compile"],
                      "variant": run["variant"], "ms_per_step": round(1e3 * median, 2),
                      "ratio_to_float": round(ratio, 3),
                      "cpu_ms_per_step": round(1e3 * cpu, 2),
                      "cpu_ratio_to_float": round(cpu_ratio, 3),
                      "meets_target": "" if run["variant"] == "float" else
                      ("yes" if ratio <= TARGET else "no")})
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    print(f"# {args.rounds} alternating rounds x {args.steps} steps, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    for row in table:
        print(f"{row['model']:<5}jit={row['jit_compile']:<6}{row['variant']:<7}"
              f"{row['ms_per_step']:>9.2f} ms/step  x{row['ratio_to_float']:.2f}"
              f"   cpu {row['cpu_ms_per_step']:>8.2f} ms x{row['cpu_ratio_to_float']:.2f}"
              f"  {row['meets_target']}")


if __name__ == "__main__":
    main()
