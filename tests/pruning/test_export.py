"""Sparse export sizes: gzip of .keras and TFLite (dense and sparse encodings)."""

import gzip

import keras
import numpy as np
import pytest

from tf_lowprec import models
from tf_lowprec.pruning import (
    ConstantSparsity,
    export_sizes,
    gzipped_size,
    prune_low_magnitude,
    update_masks,
)


def test_gzipped_size_is_deterministic(tmp_path):
    path = tmp_path / "zeros.bin"
    path.write_bytes(bytes(10_000))
    assert gzipped_size(path) == gzipped_size(path) == len(gzip.compress(bytes(10_000), 9, mtime=0))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # tf.lite.Interpreter deprecation notice
def test_pruned_model_compresses_and_tflite_runs(tmp_path):
    dense = models.cnn((16, 16, 1), 4, filters=(8,), dense_units=64)
    pruned = prune_low_magnitude(dense, ConstantSparsity(0.9, frequency=1))
    update_masks(pruned, 1)
    before = export_sizes(dense, str(tmp_path / "dense"))
    after = export_sizes(pruned, str(tmp_path / "pruned"))
    # Dense storage is unchanged by zeros; compression sees them.
    assert after.keras == pytest.approx(before.keras, rel=0.05)
    assert after.keras_gzip < 0.5 * before.keras_gzip
    assert after.tflite_gzip < 0.5 * before.tflite_gzip
    assert after.tflite_sparse < 0.6 * after.tflite
    # The sparse TFLite file computes what the stripped model computes.
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(str(tmp_path / "pruned" / "model_sparse.tflite"))
    interpreter.allocate_tensors()
    x = np.random.default_rng(0).random((1, 16, 16, 1), dtype=np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, pruned.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    reloaded = keras.models.load_model(str(tmp_path / "pruned" / "model.keras"))
    assert not any("prune" in layer.name for layer in reloaded.layers)


def test_export_sizes_without_tflite_and_bad_input():
    sizes = export_sizes(models.mlp((4, 4, 1), 2, hidden_units=(8,)), tflite=False)
    assert sizes.keras > 0 and sizes.keras_gzip > 0 and sizes.tflite is None
    with pytest.raises(ValueError, match="model"):
        export_sizes("model.keras")


def test_optimizer_state_is_not_counted():
    model = models.mlp((4, 4, 1), 2, hidden_units=(64,))
    plain = export_sizes(model, tflite=False)
    model.compile(keras.optimizers.Adam(), "mse")
    model.optimizer.build(model.trainable_variables)  # two slots per weight
    assert export_sizes(model, tflite=False).keras == pytest.approx(plain.keras, rel=0.05)
