"""Quantized layers under tf.distribute.MirroredStrategy on two logical CPUs.

Stochastic rounding must be replica-consistent: replicas that quantize the
same weights with the same seed draw must round them identically, and the
training state must stay identical across replicas. Logical devices must be
configured before TensorFlow initialises, so this file also runs as a
script in a fresh subprocess that prints one JSON line.
"""

import json

import pytest

from tests.script_subprocess import script_results

results = script_results(__file__)


@pytest.mark.slow
def test_stochastic_weight_rounding_is_identical_on_replicas(results):
    assert results["replicas"] == 2
    assert results["quantized_weight_replica_diff"] == 0.0
    assert results["rounded_values_differ_from_nearest"]


@pytest.mark.slow
def test_training_state_stays_identical_on_replicas(results):
    assert results["max_replica_diff"] == 0.0
    assert results["checked_variables"] >= 4
    assert results["loss_decreased"]


def _main():
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    from tf_lowprec.formats import BlockFloatingPoint
    from tf_lowprec.layers import QuantizedDense
    from tf_lowprec.ops import quantize

    keras.utils.set_random_seed(0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    bfp = BlockFloatingPoint(6, axis=None)
    with strategy.scope():
        model = keras.Sequential([
            keras.Input((8,)),
            QuantizedDense(16, activation="relu", weight_format=BlockFloatingPoint(6), output_format=bfp,
                           error_format=bfp, gradient_format=bfp, rounding="stochastic", seed=1),
            QuantizedDense(3, weight_format=bfp, rounding="stochastic", seed=2),
        ])
        model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        generator = keras.random.SeedGenerator(5)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 8)).astype("float32")
    y = np.argmax(x[:, :3], axis=1)
    history = model.fit(x, y, batch_size=32, epochs=3, verbose=0)

    kernel = model.layers[0].kernel

    @tf.function
    def replica_quantize():
        return strategy.run(lambda: quantize(kernel, BlockFloatingPoint(4), "stochastic", seed=generator))

    per_replica = strategy.experimental_local_results(replica_quantize())
    nearest = quantize(kernel, BlockFloatingPoint(4)).numpy()
    diffs, checked = [], 0
    for variable in model.variables:
        values = getattr(variable.value, "values", None)
        if values is None or len(values) < 2:
            continue
        checked += 1
        diffs.append(float(np.max(np.abs(values[0].numpy() - values[1].numpy()))))
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "quantized_weight_replica_diff": float(np.max(np.abs(per_replica[0].numpy() - per_replica[1].numpy()))),
        "rounded_values_differ_from_nearest": bool(np.any(per_replica[0].numpy() != nearest)),
        "max_replica_diff": max(diffs) if diffs else -1.0,
        "checked_variables": checked,
        "loss_decreased": bool(history.history["loss"][-1] < history.history["loss"][0]),
    }))


if __name__ == "__main__":
    _main()
