"""Subprocess body: pruned training on 2 logical CPUs vs one device.

    python -m tests.pruning.mirrored_pruning

Splits the CPU into 2 logical devices (before TensorFlow initialises, hence a
separate process), trains the same tiny CNN with magnitude pruning and with
filter pruning once on the default device and once under
`tf.distribute.MirroredStrategy` with the same global batches, and prints one
JSON line per kind: the largest weight difference, whether the masks are
equal, and the kernel sparsity reached under the strategy.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tf_lowprec.experiments.devices import use_logical_cpus  # noqa: E402


def _train(strategy, kind):
    import keras
    import numpy as np

    from tf_lowprec import models, pruning

    rng = np.random.default_rng(0)
    x = rng.random((64, 10, 10, 1), dtype=np.float32)
    y = rng.integers(0, 3, 64).astype("int32")
    with strategy.scope():
        keras.utils.set_random_seed(3)
        model = models.cnn((10, 10, 1), 3, filters=(4, 6), dense_units=8)
        schedule = pruning.PolynomialDecay(0.0, 0.6, begin_step=0, end_step=6, frequency=2)
        wrap = pruning.prune_low_magnitude if kind == "magnitude" else pruning.prune_filters
        model = wrap(model, schedule)
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0,
              callbacks=[pruning.UpdatePruningStep()])
    return model


def main():
    use_logical_cpus(2)
    import numpy as np
    import tensorflow as tf

    from tf_lowprec import pruning

    results = {}
    for kind in ("magnitude", "filters"):
        single = _train(tf.distribute.get_strategy(), kind)
        mirrored = _train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), kind)
        diff = max(float(np.max(np.abs(a.numpy() - b.numpy())))
                   for a, b in zip(single.weights, mirrored.weights, strict=True))
        masks_equal = all(
            np.array_equal(a.numpy(), b.numpy())
            for wa, wb in zip(pruning.callbacks.pruning_wrappers(single),
                              pruning.callbacks.pruning_wrappers(mirrored), strict=True)
            for a, b in zip(wa.masks, wb.masks, strict=True))
        results[kind] = {"max_abs_diff": diff, "masks_equal": masks_equal,
                         "sparsity": pruning.sparsity(pruning.strip_pruning(mirrored),
                                                      kernels_only=True).sparsity}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
