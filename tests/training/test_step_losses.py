"""StepLossRecorder recovers per-step losses from Keras's running means."""

import keras
import numpy as np
import tensorflow as tf

from tf_lowprec.training.step_losses import StepLossRecorder


def test_recovers_each_step_loss_exactly_with_equal_batches():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype("float32")
    y = rng.normal(size=(40, 1)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    # Oracle: the loss of each batch at the weights it was computed with.
    expected = []

    class Oracle(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            xb, yb = x[batch * 8:(batch + 1) * 8], y[batch * 8:(batch + 1) * 8]
            expected.append(float(np.mean((model(xb).numpy() - yb) ** 2)))

    recorder = StepLossRecorder(every=2)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    model.fit(data, epochs=2, verbose=0, callbacks=[Oracle(), recorder])
    blocks = [np.mean(expected[i:i + 2]) for i in (0, 2)] + [expected[4]]
    blocks2 = [np.mean(expected[5 + i:7 + i]) for i in (0, 2)] + [expected[9]]
    np.testing.assert_allclose(recorder.block_losses[0], blocks, rtol=1e-4)
    np.testing.assert_allclose(recorder.block_losses[1], blocks2, rtol=1e-4)


def test_rejects_bad_block_length():
    import pytest

    with pytest.raises(ValueError, match="every=0"):
        StepLossRecorder(every=0)
