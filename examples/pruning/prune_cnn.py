"""Prune the Fashion-MNIST CNN two ways and export it: the tf_lowprec.pruning API in one file.

    python examples/pruning/prune_cnn.py                       # ~4 min on 2 CPU cores
    python examples/pruning/prune_cnn.py --epochs 1 --limit 5000

1. Magnitude pruning (`prune_low_magnitude`) to `--sparsity` with a
   PolynomialDecay schedule, `strip_pruning`, then the file sizes
   (`export_sizes`: gzip'd .keras, TFLite dense and sparse) against the dense model.
2. Filter pruning (`prune_filters`, L1 norm) of half the filters/units of
   each hidden layer, then `remove_pruned_filters` to get a smaller dense
   model, with parameters and FLOPs before/after.
"""

import argparse
import math
import sys

import keras

from tf_lowprec import data, models, pruning


def compile_and_fit(model, train, test, epochs, lr):
    model.compile(keras.optimizers.SGD(lr),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(train, validation_data=test, epochs=epochs, verbose=2,
              callbacks=[pruning.UpdatePruningStep()])
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--filter-fraction", type=float, default=0.5)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    args = parser.parse_args(argv)

    train = data.load("fashion_mnist", "train", 128, limit=args.limit)
    test = data.load("fashion_mnist", "test", 1000)
    steps = args.epochs * math.ceil((args.limit or 60000) / 128)
    every = max(1, min(50, steps // 20))  # mask updates: every 50 steps, more often in short runs
    keras.utils.set_random_seed(0)
    dense = models.cnn()

    # 1. Unstructured magnitude pruning: 0 -> sparsity over the first 2/3 of training.
    schedule = pruning.PolynomialDecay(0.0, args.sparsity, begin_step=0,
                                       end_step=2 * steps // 3, frequency=every)
    pruned = compile_and_fit(pruning.prune_low_magnitude(dense, schedule), train, test,
                             args.epochs, args.learning_rate)
    stripped = pruning.strip_pruning(pruned)
    print(pruning.sparsity(stripped, kernels_only=True))
    before, after = pruning.export_sizes(dense), pruning.export_sizes(stripped)
    for key in ("keras", "keras_gzip", "tflite", "tflite_gzip", "tflite_sparse"):
        print(f"{key:>14}: {getattr(before, key):>9,} B dense -> "
              f"{getattr(after, key):>9,} B pruned")

    # 2. Structured filter pruning, then physical removal.
    schedule = pruning.PolynomialDecay(0.0, args.filter_fraction, begin_step=0,
                                       end_step=2 * steps // 3, frequency=every)
    filtered = compile_and_fit(pruning.prune_filters(dense, schedule), train, test,
                               args.epochs, args.learning_rate)
    removal = pruning.remove_pruned_filters(filtered)
    print(removal)
    small = removal.model
    small.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    print(f"smaller model test accuracy: {small.evaluate(test, verbose=0)[1]:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
