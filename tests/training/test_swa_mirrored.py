"""SWALP's optimizer side under MirroredStrategy (2 logical CPUs) = one device.

The pytest test starts this file as a subprocess (logical devices must be
configured before TensorFlow initialises); the subprocess trains the same
small BatchNorm CNN with SWALP's optimizer and averaging
(`SWA(low_precision_sgd(PaperPiecewise(...)))`: 8-bit BFP weights,
gradients, momentum and accumulator, stochastic rounding; the
`StochasticWeightAveraging` callback with its BatchNorm recompute) once on
the default device and once under `tf.distribute.MirroredStrategy`, and
prints one JSON line with the largest differences of the weights and the
averages, and whether the replicas agree.

What is *not* batch-split invariant, and so left out here: plain BatchNorm
(per-replica batch statistics; the model uses `synchronized=True`) and
activation quantization with whole-tensor blocks (`swalp()`'s `Quantize`
layers: each replica's exponent comes from its own part of the batch, as in
any data-parallel SWALP).
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _train(strategy):
    import keras
    import numpy as np
    import tensorflow as tf

    from tf_lowprec.optimizers import low_precision_sgd
    from tf_lowprec.training import SWA, PaperPiecewise, StochasticWeightAveraging

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 10, 10, 1)).astype("float32")
    y = (np.arange(64) % 3).astype("int32")
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with strategy.scope():
        keras.utils.set_random_seed(1)
        inputs = keras.Input((10, 10, 1))
        h = keras.layers.Conv2D(4, 3, name="conv")(inputs)
        h = keras.layers.BatchNormalization(synchronized=True, name="bn")(h)
        h = keras.layers.ReLU(name="relu")(h)
        h = keras.layers.GlobalAveragePooling2D()(h)
        model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(h))
        schedule = PaperPiecewise(0.1, total=1, steps_per_epoch=4, final_learning_rate=0.05)
        optimizer = SWA(low_precision_sgd(schedule, weight_decay=1e-3, seed=7))
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    swa = StochasticWeightAveraging(start_epoch=1, data=train)
    model.fit(train, epochs=3, shuffle=False, callbacks=[swa], verbose=0)
    return model


def main():
    from tf_lowprec.experiments.devices import use_logical_cpus

    devices = use_logical_cpus(2)
    import numpy as np
    import tensorflow as tf

    single = _train(tf.distribute.get_strategy())
    multi = _train(tf.distribute.MirroredStrategy(devices))

    def diff(a, b):
        return max(float(np.max(np.abs(np.asarray(p) - np.asarray(q)))) for p, q in zip(a, b))

    bn = [v for v in multi.variables if "moving" in v.path]
    result = {
        "weights": diff(single.get_weights(), multi.get_weights()),
        "averages": diff([v.numpy() for v in single.optimizer.averages],
                         [v.numpy() for v in multi.optimizer.averages]),  # fmt: skip
        "num_averaged": [single.optimizer.num_averaged, multi.optimizer.num_averaged],
        "replicas_identical": all(
            all(np.array_equal(v.value.values[0].numpy(), c.numpy()) for c in v.value.values)
            for v in multi.trainable_variables + bn
        ),
        "moving_statistics": len(bn),
    }
    print(json.dumps(result))


@pytest.mark.slow
def test_swalp_optimizer_and_averaging_on_two_replicas_match_one_device():
    completed = subprocess.run(
        [sys.executable, "-m", "tests.training.test_swa_mirrored"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["replicas_identical"], result
    assert result["moving_statistics"] == 2, result
    assert result["num_averaged"] == [3, 3], result
    # Same global gradients up to float32 sum order, same stateless rounding
    # draws. The only differences (~3e-7) come from the conv bias in front
    # of BatchNorm: its gradient is round-off (BN removes the mean), so its
    # per-tensor 8-bit grid is that fine too.
    assert result["weights"] <= 1e-6, result
    assert result["averages"] <= 1e-6, result


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
