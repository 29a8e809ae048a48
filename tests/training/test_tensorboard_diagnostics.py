"""TensorBoardDiagnostics: the event files it writes, read back."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_lowprec import formats
from tf_lowprec.layers import QuantizedDense
from tf_lowprec.optimizers import GRDA, HALP, SWA
from tf_lowprec.training import VarianceReduced
from tf_lowprec.training.tensorboard_diagnostics import TensorBoardDiagnostics


def _events(log_dir):
    """`{tag: [(step, value or histogram bucket count)]}` from `<log_dir>/diagnostics`."""
    found = {}
    for path in tf.io.gfile.glob(str(log_dir / "diagnostics" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                found.setdefault(value.tag, []).append((event.step, tensor))
    return found


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 6)).astype("float32"), rng.integers(0, 3, 64)


def _model(dense=keras.layers.Dense):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((6,)), dense(8, name="hidden"), keras.layers.Dense(3, name="out")], name="net"
    )


def test_grda_run_writes_per_layer_sparsity_threshold_and_histograms(tmp_path):
    x, y = _data()
    model = _model()
    model.compile(GRDA(0.5, c=0.5, mu=0.7), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=2, verbose=0,
              callbacks=[TensorBoardDiagnostics(tmp_path)])
    events = _events(tmp_path)
    # Two epochs of 4 steps each: written at iterations 4 and 8.
    assert [step for step, _ in events["sparsity/net/hidden"]] == [4, 8]
    final_hidden = float(events["sparsity/net/hidden"][-1][1])
    kernel, bias = model.get_layer("hidden").get_weights()
    assert final_hidden == pytest.approx(
        (np.sum(kernel == 0) + np.sum(bias == 0)) / (kernel.size + bias.size)
    )
    assert final_hidden > 0  # c large enough to prune a few weights in 8 steps
    assert float(events["grda/threshold"][-1][1]) == pytest.approx(
        float(model.optimizer.threshold.numpy())
    )
    assert "sparsity/global" in events
    histogram = events["weights/net/hidden/kernel"][-1][1]
    assert histogram[:, 2].sum() == kernel.size  # bucket counts cover every weight


def test_halp_saturation_swa_count_and_quantization_error(tmp_path):
    x, y = _data()
    model = VarianceReduced(_model())
    model.compile(HALP(0.5, T=4, mu=0.01, bits=2, seed=1), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0,
              callbacks=[TensorBoardDiagnostics(tmp_path / "halp", histograms=False)])
    events = _events(tmp_path / "halp")
    codes = np.concatenate(
        [model.optimizer.offset(v).numpy().ravel() for v in model.trainable_variables]
    )
    expected = np.mean((codes == -2) | (codes == 1))
    assert float(events["halp/saturation"][-1][1]) == pytest.approx(expected)
    assert not any(tag.startswith("halp/offset") for tag in events)

    fmt = formats.FixedPoint(4, 2)
    model = _model(lambda units, name: QuantizedDense(units, weight_quantizer=fmt, name=name))
    model.compile(SWA(keras.optimizers.SGD(0.1)), "sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    model.optimizer.update_average()
    TensorBoardDiagnostics(tmp_path / "swa").set_model(model)
    callback = TensorBoardDiagnostics(tmp_path / "swa")
    callback.set_model(model)
    callback.write(step=0)
    callback.on_train_end()
    events = _events(tmp_path / "swa")
    assert int(events["swa/num_averaged"][0][1]) == 1
    w = model.get_layer("hidden").kernel.numpy()
    q = np.clip(np.round(w * 4) / 4, -2, 2 - 0.25)
    rel = np.sqrt(np.mean((q - w) ** 2)) / np.sqrt(np.mean(w**2))
    assert float(events["quantization_error/hidden"][0][1]) == pytest.approx(rel, rel=1e-5)


@pytest.mark.parametrize("bad", [{"log_dir": ""}, {"update_freq": 0}, {"histograms": "yes"}])
def test_bad_arguments_name_the_argument(bad):
    name = next(iter(bad))
    with pytest.raises((ValueError, TypeError), match=name):
        TensorBoardDiagnostics(**{"log_dir": "logs", **bad})
