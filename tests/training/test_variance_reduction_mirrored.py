"""SVRG/HALP under tf.distribute.MirroredStrategy on two logical CPUs.

Logical devices must be configured before TensorFlow initialises, so the
test runs this file as a script in a fresh subprocess; the script prints one
JSON line with its measurements.
"""

import json

import pytest

from tests.script_subprocess import script_results

results = script_results(__file__)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["svrg", "halp"])
def test_two_replicas_match_single_device(results, name):
    result = results[name]
    assert result["replicas"] == 2
    # Same global batches: only the summation order of the all-reduce differs.
    assert result["max_weight_diff"] < 1e-5
    assert result["max_full_gradient_diff"] < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", ["svrg", "halp"])
def test_replicas_stay_identical(results, name):
    # Every mirrored variable (weights, snapshot, full gradient, HALP's
    # integer offsets and scales) holds the same bits on both replicas.
    assert results[name]["max_replica_diff"] == 0.0
    assert results[name]["checked_variables"] >= 8


@pytest.mark.slow
def test_full_gradient_is_aggregated_over_replicas(results):
    # At the initial weights: equals the numpy mean over the whole dataset
    # (each replica sees only half of every batch).
    assert results["initial_full_gradient_error"] < 1e-6


def _main():
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    import keras
    import numpy as np

    from tests.reference import svrg_problems as problems
    from tests.reference.svrg_numpy import full_gradient as numpy_full_gradient
    from tf_lowprec.optimizers import HALP, SVRG
    from tf_lowprec.training import VarianceReduced, full_gradient

    x, y = problems.least_squares(n=32, d=4, units=2)
    x, y = x.astype("float32"), y.astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    makers = {
        "svrg": lambda: SVRG(0.05, T=3, weight_decay=1e-3),
        "halp": lambda: HALP(0.05, T=3, mu=2.0, bits=4, seed=3, weight_decay=1e-3),
    }

    def train(make, strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = VarianceReduced(problems.dense_model(4, 2))
            model.compile(optimizer=make(), loss="mse")
        model.fit(data, epochs=3, verbose=0)
        return model

    out = {}
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with mirrored.scope():
        keras.utils.set_random_seed(0)
        probe = problems.dense_model(4, 2)
        probe.compile(loss="mse")
    got = full_gradient(probe, data)
    want = numpy_full_gradient(
        [w.astype("float64") for w in probe.get_weights()],
        problems.batches(x.astype("float64"), y.astype("float64"), 8),
        problems.mse_grad,
    )
    out["initial_full_gradient_error"] = max(
        float(np.abs(g.numpy() - w).max()) for g, w in zip(got, want)
    )

    for name, make in makers.items():
        single = train(make, tf.distribute.get_strategy())
        multi = train(make, mirrored)
        replica_diff, checked = 0.0, 0
        for variable in multi.trainable_variables + multi.optimizer.variables:
            parts = getattr(variable.value, "values", None)
            if parts is None or len(parts) < 2:
                continue
            a, b = (np.asarray(p.numpy(), "float64") for p in parts[:2])
            replica_diff = max(replica_diff, float(np.abs(a - b).max(initial=0.0)))
            checked += 1
        out[name] = {
            "replicas": multi.distribute_strategy.num_replicas_in_sync,
            "max_weight_diff": max(
                float(np.abs(a - b).max())
                for a, b in zip(single.get_weights(), multi.get_weights())
            ),
            "max_full_gradient_diff": max(
                float(np.abs(single.optimizer.full_gradient(a).numpy()
                             - multi.optimizer.full_gradient(b).numpy()).max())
                for a, b in zip(single.trainable_variables, multi.trainable_variables)
            ),
            "max_replica_diff": replica_diff,
            "checked_variables": checked,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    _main()
