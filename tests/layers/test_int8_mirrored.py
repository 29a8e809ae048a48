"""int8 QAT under tf.distribute.MirroredStrategy (2 logical CPUs) equals one device.

The activation ranges use the global batch's extremes and the folded
BatchNormalization uses synchronized batch statistics, so two replicas with
half the batch each must train to the same weights, BN statistics and
ranges as one device with the whole batch. Logical devices must be set up
before TensorFlow initialises, so this file also runs as a script in a
fresh subprocess that prints one JSON line.
"""

import json

import pytest

from tests.script_subprocess import script_results

results = script_results(__file__)


@pytest.mark.slow
def test_mirrored_qat_equals_one_device(results):
    assert results["replicas"] == 2
    assert results["variables"] >= 15
    assert results["ranges_learned"]
    assert results["max_diff"] <= 1e-5, results["worst"]


def _model():
    import keras

    from tf_lowprec.layers import quantize_model

    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3)(x)
    return quantize_model(keras.Model(inputs, outputs), scheme="int8")


def _main():
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 6, 2)).astype("float32")
    y = rng.integers(0, 3, 64)

    def train(strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = _model()
            model.compile(
                keras.optimizers.SGD(0.1),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        return [(w.path, np.array(w.numpy())) for w in model.weights]

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    one = train(tf.distribute.OneDeviceStrategy("/cpu:0"))
    two = train(mirrored)
    # Same layers in the same order (auto-generated names may differ).
    diffs = {path: float(np.abs(a - b).max()) for (path, a), (_, b) in zip(one, two)}
    worst = max(diffs, key=diffs.get)
    ranges = [value for path, value in one if path.endswith("updates")]
    print(
        json.dumps(
            {
                "replicas": mirrored.num_replicas_in_sync,
                "variables": len(diffs),
                "max_diff": diffs[worst],
                "worst": worst,
                "ranges_learned": len(ranges) == 3 and all(v == 4 for v in ranges),
            }
        )
    )


if __name__ == "__main__":
    _main()
