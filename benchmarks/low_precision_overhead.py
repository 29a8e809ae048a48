"""Step time of LowPrecision(SGD) (SWALP's optimizer) relative to Keras SGD.

    nice python benchmarks/low_precision_overhead.py               # ~5 min on 2 cores
    python benchmarks/low_precision_overhead.py --repeats 3 --steps 3 --out /tmp/x  # smoke

Optimizers, each against `keras.optimizers.SGD(0.05, momentum=0.9)`:
  * `lp_sgd`: `tf_lowprec.recipes.low_precision_sgd` (8-bit small-block BFP
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

import sys

import keras
from harness import grid_main, ratio_line, same_start_measure, workload_parser

from tf_lowprec import models as model_zoo
from tf_lowprec.formats import BlockFloatingPoint
from tf_lowprec.optimizers import LowPrecision
from tf_lowprec.quantizers import Quantizer
from tf_lowprec.recipes import low_precision_sgd, quantize_activations, swalp_formats


def _fp_accumulator():
    bfp8 = Quantizer(BlockFloatingPoint(8, axis=-1), "stochastic")
    return LowPrecision(
        keras.optimizers.SGD(0.05, momentum=0.9),
        weight_quantizer=bfp8, gradient_quantizer=bfp8, momentum_quantizer=bfp8, seed=0,
    )


# name -> (optimizer factory, quantize activations?, workloads)
VARIANTS = {
    "sgd": (lambda: keras.optimizers.SGD(0.05, momentum=0.9), False, ("mlp", "cnn")),
    "lp_sgd": (lambda: low_precision_sgd(0.05, seed=0), False, ("mlp", "cnn")),
    "lp_sgd_nearest": (lambda: low_precision_sgd(0.05, rounding="nearest"), False, ("mlp", "cnn")),
    "lp_sgd_fp_acc": (_fp_accumulator, False, ("mlp", "cnn")),
    "swalp_step": (lambda: low_precision_sgd(0.05, seed=0), True, ("cnn",)),
}


def _mlp():
    return model_zoo.mlp((784,), 10, hidden_units=(1024, 1024))


WORKLOADS = {
    "mlp": (_mlp, lambda rng: (rng.normal(size=(64, 784)).astype("float32"), 64)),
    "cnn": (model_zoo.cnn, lambda rng: (rng.normal(size=(128, 28, 28, 1)).astype("float32"), 128)),
}


def _quantize_activations(name, model):
    if not VARIANTS[name][1]:
        return model
    fmt = swalp_formats()[1]
    return quantize_activations(model, fmt, fmt, seed=0)


def _variants(workload):
    return {name: make for name, (make, _, workloads) in VARIANTS.items() if workload in workloads}


measure = same_start_measure(WORKLOADS, _variants, {name: "sgd" for name in VARIANTS if name != "sgd"},
                             prepare=_quantize_activations)


def main(argv=None):
    parser = workload_parser(__doc__, "mlp,cnn", repeats=11, steps=10, warmup=3, jit_compile=True)
    files = ("low_precision_overhead_repeats.csv", "low_precision_overhead.csv")
    return grid_main(parser, argv, measure, WORKLOADS, files, ratio_line(4, 15))


if __name__ == "__main__":
    sys.exit(main())
