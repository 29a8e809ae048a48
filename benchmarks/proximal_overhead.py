"""Step time of ProximalSGD / ProximalAdagrad relative to Keras SGD / Adagrad.

    nice python benchmarks/proximal_overhead.py                  # ~3 min on 2 cores
    python benchmarks/proximal_overhead.py --repeats 3 --steps 3 --out /tmp/x  # smoke

Pairs: ProximalSGD(l1=l2=1e-4) vs `keras.optimizers.SGD`, and
ProximalAdagrad(l1=l2=1e-4) vs `keras.optimizers.Adagrad` (same lr and initial
accumulator). Two workloads:
  (a) `mlp`: a dense 784-1024-1024-10 net (~1.9M parameters) at batch 64,
      where the per-weight update is a visible share of a step (dense path);
  (b) `embedding`: Embedding(50000, 32) -> mean -> Dense(10) at batch 256 x 20
      tokens, whose gradient is a `tf.IndexedSlices` (sparse path: the
      proximal optimizers sum duplicate indices, then gather/scatter rows).
All four models of a workload start from the same weights and are compiled
the same way, all in this one process: once without XLA (Keras's default on
CPU) and once with `jit_compile=True` (the default on a GPU).
After a warm-up, each repeat times `--steps` consecutive `train_on_batch`
calls per optimizer, rotating the order between repeats. Reported per pair:
the median ms/step of each, the ratio of medians, and the median of the
per-repeat paired ratios (robust to load drifts on a shared machine).
Writes `<out>/proximal_overhead.csv` (summary) and
`<out>/proximal_overhead_repeats.csv` (every repeat).
"""

import sys

import keras
from harness import grid_main, ratio_line, same_start_measure, workload_parser

from tf_lowprec import models
from tf_lowprec.optimizers import ProximalAdagrad, ProximalSGD

# optimizer -> (factory, its Keras baseline)
OPTIMIZERS = {
    "sgd": (lambda: keras.optimizers.SGD(0.01), None),
    "proximal_sgd": (lambda: ProximalSGD(0.01, 1e-4, 1e-4), "sgd"),
    "adagrad": (lambda: keras.optimizers.Adagrad(0.01, 0.1), None),
    "proximal_adagrad": (lambda: ProximalAdagrad(0.01, 0.1, 1e-4, 1e-4), "adagrad"),
}


def _mlp():
    return models.mlp((784,), 10, hidden_units=(1024, 1024))


def _embedding():
    inputs = keras.Input((20,), dtype="int32")
    x = keras.layers.Embedding(50000, 32)(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def _mlp_batch(rng):
    return rng.normal(size=(64, 784)).astype("float32"), 64


def _embedding_batch(rng):
    return rng.integers(0, 50000, size=(256, 20)).astype("int32"), 256


WORKLOADS = {"mlp": (_mlp, _mlp_batch), "embedding": (_embedding, _embedding_batch)}


measure = same_start_measure(
    WORKLOADS,
    lambda workload: {name: make for name, (make, _) in OPTIMIZERS.items()},
    {name: baseline for name, (_, baseline) in OPTIMIZERS.items() if baseline is not None},
)


def main(argv=None):
    parser = workload_parser(__doc__, "mlp,embedding", repeats=11, steps=10, warmup=3, jit_compile=True)
    files = ("proximal_overhead_repeats.csv", "proximal_overhead.csv")
    return grid_main(parser, argv, measure, WORKLOADS, files, ratio_line(9, 16))


if __name__ == "__main__":
    sys.exit(main())
