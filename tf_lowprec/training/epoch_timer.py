"""A callback that records wall-clock seconds per epoch in the logs."""

import time

import keras


@keras.saving.register_keras_serializable(package="tf_lowprec")
class EpochTimer(keras.callbacks.Callback):
    """Adds `logs["seconds"]`: wall-clock time of the epoch's training steps.

    The time runs from `on_epoch_begin` to the end of the last training batch,
    so validation at the end of the epoch is not included. Put it before
    `CSVLogger`/`TensorBoard` in the callback list for them to record it.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._train_end = None

    def on_train_batch_end(self, batch, logs=None):
        self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            end = self._train_end or time.perf_counter()
            logs["seconds"] = end - self._start

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
