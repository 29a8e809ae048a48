"""Subprocess body: each optimizer on N logical CPUs vs one device.

    python -m tests.optimizers.mirrored_equivalence REPLICAS NAME[,NAME...] [SPARSE_NAME,...]

A NAME is a registry name, a key of `CONFIGS`, or `table:<case>` for a case
of `tests/conformance/optimizer_table.py` (the wrappers).

Splits the CPU into REPLICAS logical devices (which must happen before
TensorFlow initialises, hence a separate process), then trains the same tiny
models (an MLP, and for the names in the optional third argument also an
Embedding model with sparse gradients) with the same global batch once on the default device and once under
`tf.distribute.MirroredStrategy`, and prints one JSON line: for each config,
the largest absolute weight difference and whether all replicas hold
identical weights.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tf_lowprec.experiments.devices import use_logical_cpus  # noqa: E402

# name -> (registry name, overrides); the extra entries exercise clipping.
CONFIGS = {
    "grda+clipnorm": ("grda", {"c": 0.02, "mu": 0.6, "clipnorm": 0.05}),
    "grda+global_clipnorm": ("grda", {"c": 0.02, "mu": 0.6, "global_clipnorm": 0.05}),
    "grda+clipvalue": ("grda", {"c": 0.02, "mu": 0.6, "clipvalue": 0.01}),
    "grda": ("grda", {"c": 0.02, "mu": 0.6}),
    "proximal_sgd+clipnorm": ("proximal_sgd", {"l1_regularization_strength": 1e-3, "clipnorm": 0.05}),
    "proximal_adagrad+global_clipnorm": ("proximal_adagrad", {"l1_regularization_strength": 1e-3,
                                                              "global_clipnorm": 0.05}),
    # Keras's own per-replica clipping: the negative control.
    "keras_sgd+clipnorm": ("sgd", {"clipnorm": 0.05}),
    # Stochastic rounding: both runs need the same seed (None draws one each).
    "low_precision_sgd": ("low_precision_sgd", {"seed": 7}),
}


def _optimizer(name):
    from tf_lowprec.optimizers import registry

    if name.startswith("table:"):  # a case of tests/conformance/optimizer_table.py
        from tests.conformance.optimizer_table import CASES

        (case,) = [c for c in CASES if c.name == name[len("table:"):]]
        return case.make(learning_rate=0.05)
    base, overrides = CONFIGS.get(name, (name, {}))
    return registry.get(base, learning_rate=0.05, **overrides)


def _train(strategy, name, sparse):
    import keras
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    if sparse:
        x = rng.integers(0, 20, size=(64, 3)).astype("int32")
        layers = [keras.Input((3,), dtype="int32"), keras.layers.Embedding(20, 4),
                  keras.layers.Flatten(), keras.layers.Dense(3)]
    else:
        x = rng.normal(size=(64, 8)).astype("float32")
        layers = [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)]
    y = rng.integers(0, 3, size=64).astype("int32")
    with strategy.scope():
        model = keras.Sequential(layers)
        init = np.random.default_rng(1)  # explicit, identical initial weights
        model.set_weights([init.normal(0, 0.3, w.shape).astype("float32") for w in model.get_weights()])
        model.compile(_optimizer(name), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model.fit(data, epochs=2, verbose=0)
    return model


def main(argv):
    replicas, names = int(argv[0]), argv[1].split(",")
    sparse_names = set(argv[2].split(",")) if len(argv) > 2 else set()
    devices = use_logical_cpus(replicas)
    import numpy as np
    import tensorflow as tf

    mirrored = tf.distribute.MirroredStrategy(devices)
    results = {}
    for name in names:
        for sparse in (False, True) if name in sparse_names else (False,):
            single = _train(tf.distribute.get_strategy(), name, sparse)
            multi = _train(mirrored, name, sparse)
            diff = max(float(np.max(np.abs(a - b))) for a, b in zip(single.get_weights(), multi.get_weights()))
            identical = all(
                all(np.array_equal(v.value.values[0].numpy(), c.numpy()) for c in v.value.values)
                for v in multi.trainable_variables
            )
            scale = max(float(np.max(np.abs(w))) for w in single.get_weights())
            results[f"{name}{'/sparse' if sparse else ''}"] = {
                "max_abs_diff": diff, "max_abs_weight": scale, "replicas_identical": identical,
            }
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
