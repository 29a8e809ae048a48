"""The GPU measurements in one run: step-time ratios, quantizer throughput, MirroredStrategy scaling.

    bash benchmarks/gpu/run.sh                    # the prepared run, < 8 min on one GPU
    python benchmarks/gpu/gpu_bench.py --allow-cpu --batch 4 --width 4 --steps 1 --repeats 1 \
        --warmup 1 --size 4096 --scale-batch 8 --scale-steps 1 --scale-repeats 1 \
        --out /tmp/gpu                  # CPU smoke test of the same code (~2 min idle)

Sections (`--sections`, all by default), each writing one CSV under `--out`
(default benchmarks/results/gpu/):

* `steps` -> `step_time_ratios.csv`: ResNet-18 (`tf_lowprec.models.resnet18`)
  on CIFAR-shaped random data (32x32x3, 10 classes, `--batch`), Keras's
  default compilation (XLA on a GPU). Variants, all from the same initial
  weights: `sgd` (Keras SGD, momentum 0.9: the baseline), `grda` (GRDA),
  `lp_sgd` (`tf_lowprec.recipes.low_precision_sgd`: 8-bit BFP weights,
  gradients, momentum, stochastic rounding) and `qat` (the SGD model, whose
  float version is the baseline, made quantization-aware with
  `tf_lowprec.layers.quantize_model(model, scheme="int8")` when that scheme
  exists and accepts ResNet-18, else with the 8-bit block-floating-point
  QAT config of benchmarks/quantized_layer_overhead.py; the `qat_scheme`
  column says which). Repeats alternate the variants (benchmarks/harness.py);
  reported: median ms/step and the median paired ratio to the baseline
  (GRDA/SGD, LowPrecision/SGD, QAT/float).
* `quantizer` -> `quantizer_throughput.csv`: `tf_lowprec.ops.quantize` on a
  `--size`-element float32 tensor for every format of
  benchmarks/quantizer_throughput.py, nearest and stochastic, against the
  device's elementwise bandwidth, measured as `x * 2` under XLA (read + write:
  8 bytes per element). Completion is awaited by reading one element.
* `scaling` -> `scaling/scaling.csv`: `tf-lowprec scale --replicas 1..G
  --devices gpu` (MirroredStrategy over the G visible GPUs), ResNet-18 on
  CIFAR-10 shapes, SGD and GRDA, global batch `--scale-batch`.

Without a GPU it prints one line saying so and skips every GPU row (exit
status 0); `--allow-cpu` runs the same code on the CPU instead (with tiny
settings: a functional test, not a measurement).
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

from tf_lowprec.experiments.results_io import write_csv_atomic

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCHMARKS)


def _benchmark_module(name):
    """`benchmarks/<name>.py`, loaded from its file.

    The other benchmarks import their neighbours (`harness`, ...) directly:
    `python benchmarks/<script>.py` runs with benchmarks/ on the path. This
    script lives one folder down (its command, `benchmarks/gpu/run.sh`, and
    its tests name that path), so it loads them by file instead.
    """
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(BENCHMARKS, f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # as an import would (dataclasses look it up)
        spec.loader.exec_module(module)
    return sys.modules[name]


harness = _benchmark_module("harness")


def _device(args):
    """`("GPU", name, count)` or `("CPU", ..., 1)` with `--allow-cpu`; `None` to skip."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return "GPU", details.get("device_name", "GPU"), len(gpus)
    if args.allow_cpu:
        return "CPU", f"CPU ({os.cpu_count()} cores)", 1
    return None


# --- step-time ratios ----------------------------------------------------------


def _qat(model):
    """The QAT copy of `model` and the name of its scheme."""
    from tf_lowprec.formats import BlockFloatingPoint
    from tf_lowprec.layers import quantize_model

    try:
        return quantize_model(model, scheme="int8"), "int8"
    except (TypeError, ValueError, NotImplementedError) as error:
        print(f"  qat: scheme='int8' unavailable for ResNet-18 ({type(error).__name__}: "
              f"{str(error)[:120]}); using 8-bit BFP QAT")
    per_row, whole = BlockFloatingPoint(8, axis=-1), BlockFloatingPoint(8, axis=None)
    spec = {"weight_format": per_row, "output_format": whole, "rounding": "nearest"}
    return quantize_model(model, {"Dense": spec, "Conv2D": spec}), "bfp8"


def step_ratios(args, device):
    import keras
    import numpy as np

    from tf_lowprec import models
    from tf_lowprec.optimizers import GRDA
    from tf_lowprec.recipes import low_precision_sgd

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(args.batch, 32, 32, 3)).astype("float32"))
    y = tf.constant(rng.integers(0, 10, args.batch).astype("int32"))
    keras.utils.set_random_seed(0)
    base = models.resnet18(input_shape=(32, 32, 3), num_classes=10, width=args.width)
    weights = base.get_weights()
    qat_model, scheme = _qat(base)

    def compiled(model, optimizer):
        if model is not qat_model:
            model = keras.models.clone_model(base)
            model.set_weights(weights)
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    variants = {
        "sgd": compiled(base, keras.optimizers.SGD(0.05, momentum=0.9)),
        "grda": compiled(base, GRDA(0.05, c=0.005, mu=0.7)),
        "lp_sgd": compiled(base, low_precision_sgd(0.05, momentum=0.9, seed=0)),
        "qat": compiled(qat_model, keras.optimizers.SGD(0.05, momentum=0.9)),
    }
    timers = {name: harness.step_timer(lambda m=m: m.train_on_batch(x, y), args.steps)
              for name, m in variants.items()}
    summary = harness.paired_summary(harness.interleave(timers, args.repeats, args.warmup), "sgd")
    for row in summary:
        # The float model of the QAT ratio is the SGD baseline itself.
        row.update({"baseline": "float (sgd)" if row["variant"] == "qat" else "sgd",
                    "model": "resnet18", "width": args.width, "batch": args.batch,
                    "qat_scheme": scheme, "device_kind": device[0], "device": device[1]})
    return summary


# --- quantizer throughput -----------------------------------------------------


def quantizer_throughput(args, device):
    import numpy as np

    from tf_lowprec.ops import quantize

    rows = int(np.sqrt(args.size))
    x = tf.constant(np.random.default_rng(0).normal(size=(rows, args.size // rows)).astype("float32"))
    nbytes = 2 * 4 * x.shape.num_elements()  # read + write

    def timer(fn):
        run = tf.function(fn, jit_compile=True)

        def step():
            return run(x)[0, 0]  # one element: waits for the whole kernel, copies 4 bytes

        return harness.step_timer(step, args.steps)

    timers = {("x * 2", "-"): timer(lambda t: t * 2.0)}
    for fmt in _benchmark_module("quantizer_throughput").FORMATS:
        for mode in ("nearest", "stochastic"):
            timers[(repr(fmt), mode)] = timer(lambda t, fmt=fmt, mode=mode: quantize(t, fmt, mode, seed=1))
    names = {f"{k[0]} | {k[1]}": k for k in timers}
    rows_ = harness.interleave({n: timers[k] for n, k in names.items()}, args.repeats, args.warmup)
    out = []
    for row in harness.paired_summary(rows_, "x * 2 | -"):
        fmt, mode = names[row["variant"]]
        seconds = row["median_seconds"]
        out.append({"format": fmt, "rounding": mode, "elements": x.shape.num_elements(),
                    "median_ms": 1e3 * seconds, "gb_per_s": nbytes / seconds / 1e9,
                    "fraction_of_elementwise_bandwidth": 1.0 / row["paired_ratio"],
                    "device_kind": device[0], "device": device[1]})
    return out


# --- MirroredStrategy scaling -------------------------------------------------


def mirrored_scaling(args, device):
    replicas = ",".join(str(n) for n in range(1, device[2] + 1))
    command = [sys.executable, "-m", "tf_lowprec.experiments.scaling", "--replicas", replicas,
               "--devices", "gpu" if device[0] == "GPU" else "cpu", "--dataset", "cifar10",
               "--models", "resnet18", "--optimizers", "sgd,grda",
               "--batch-sizes", str(args.scale_batch), "--steps", str(args.scale_steps),
               "--repeats", str(args.scale_repeats), "--warmup", str(args.warmup),
               "--out", os.path.join(args.out, "scaling")]
    subprocess.run(command, check=True, cwd=ROOT)


SECTIONS = {"steps": ("step_time_ratios.csv", step_ratios),
            "quantizer": ("quantizer_throughput.csv", quantizer_throughput),
            "scaling": (None, mirrored_scaling)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--width", type=int, default=64, help="ResNet-18 width (64: 11.2M parameters)")
    parser.add_argument("--steps", type=int, default=20, help="steps (calls) per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--size", type=int, default=64 * 1024 * 1024, help="quantizer tensor elements")
    parser.add_argument("--scale-batch", type=int, default=512)
    parser.add_argument("--scale-steps", type=int, default=20)
    parser.add_argument("--scale-repeats", type=int, default=3)
    parser.add_argument("--allow-cpu", action="store_true", help="run on the CPU when no GPU is visible")
    parser.add_argument("--out", default=os.path.join(BENCHMARKS, "results", "gpu"))
    args = parser.parse_args(argv)
    sections = [s for s in args.sections.split(",") if s]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"--sections: unknown {unknown}; valid: {', '.join(SECTIONS)}")
    device = _device(args)
    if device is None:
        print("gpu_bench: no GPU visible to TensorFlow: skipping every GPU row "
              f"({', '.join(sections)}); nothing written.")
        return 0
    print(f"gpu_bench: {device[2]} x {device[1]}; sections {', '.join(sections)}; out {args.out}")
    env = harness.environment()
    for name in sections:
        start = time.perf_counter()
        csv_name, run = SECTIONS[name]
        rows = run(args, device)
        if csv_name:
            write_csv_atomic(os.path.join(args.out, csv_name), harness.with_environment(rows, env))
            for row in rows:
                print("  " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in row.items() if k not in ("device", "device_kind")))
        print(f"gpu_bench: {name} done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
