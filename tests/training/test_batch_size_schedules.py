"""Batch-size schedules: the schedule, the per-epoch batches, and fit."""

import keras
import numpy as np
import pytest
from keras import ops

from tf_lowprec.training import batch_size_schedules as B

N = 40


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3)).astype("float32")
    y = np.arange(N, dtype="float32")[:, None]  # y encodes the example index
    return x, y


def test_linear_batch_size_and_spec_strings():
    assert [B.LinearBatchSize(30, 10)(e) for e in range(3)] == [30, 40, 50]
    assert [B.LinearBatchSize(8, 4, maximum=14)(e) for e in range(4)] == [8, 12, 14, 14]
    assert B.LinearBatchSize(5, -3)(4) == 1  # never below 1
    for spec, want in [("30+10*epoch", (30, 10)), (" 256 - 16 * epoch ", (256, -16)),
                       ("64", (64, 0)), (32, (32, 0))]:  # fmt: skip
        schedule = B.get_batch_size_schedule(spec)
        assert (schedule.initial, schedule.increment) == want
    fn = lambda epoch: 2**epoch  # noqa: E731
    assert B.get_batch_size_schedule(fn) is fn


def test_linear_batch_size_serializes():
    schedule = B.LinearBatchSize(30, 10, maximum=100)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(schedule)
    )
    assert isinstance(restored, B.LinearBatchSize)
    assert restored.get_config() == schedule.get_config()


@pytest.mark.parametrize("spec", ["30*epoch", "epoch", "1e3", 2.5, True, None])
def test_invalid_specs_raise(spec):
    with pytest.raises(ValueError):
        B.get_batch_size_schedule(spec)


def test_disjoint_batches_partition_a_fixed_subset_every_epoch():
    x, y = _data()
    batches = B.ScheduledBatches(x, y, "6+4*epoch", subset_size=25, seed=3)
    subset = batches.indices
    assert len(subset) == 25 and len(set(subset)) == 25
    for epoch, (size, steps) in enumerate([(6, 5), (10, 3), (14, 2), (18, 2)]):
        parts = batches.epoch_indices(epoch)
        assert batches.batch_size(epoch) == size and len(parts) == steps
        assert [len(p) for p in parts[:-1]] == [size] * (steps - 1)
        np.testing.assert_array_equal(np.sort(np.concatenate(parts)), subset)
    assert not np.array_equal(batches.epoch_indices(0)[0], batches.epoch_indices(1)[0][:6])
    again = B.ScheduledBatches(x, y, "6+4*epoch", subset_size=25, seed=3)
    np.testing.assert_array_equal(np.concatenate(again.epoch_indices(2)),
                                  np.concatenate(batches.epoch_indices(2)))  # fmt: skip
    dropped = B.ScheduledBatches(x, y, 7, drop_remainder=True)
    assert [len(p) for p in dropped.epoch_indices(0)] == [7] * 5
    assert B.ScheduledBatches(x, y, 1000).batch_size(0) == N  # capped


def test_overlapping_batches_are_independent_draws_from_the_subset():
    x, y = _data()
    batches = B.ScheduledBatches(x, y, 8, subset_size=12, overlap=True, steps_per_epoch=6)
    parts = batches.epoch_indices(0)
    assert len(parts) == 6 and all(len(set(p)) == 8 for p in parts)
    flat = np.concatenate(parts)
    assert set(flat) <= set(batches.indices)
    assert len(flat) > len(set(flat))  # examples repeat across batches
    assert B.ScheduledBatches(x, y, 8, overlap=True).num_batches(0) == 5  # ceil(40/8)


class _SeenBatchSize(keras.metrics.Metric):
    """Reports the leading dimension of the last batch the model trained on."""

    def __init__(self, name="seen_batch_size", **kwargs):
        super().__init__(name=name, **kwargs)
        self.size = self.add_variable((), initializer="zeros", name="size")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.size.assign(ops.cast(ops.shape(y_true)[0], "float32"))

    def result(self):
        return self.size


class _Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.sizes, self.calls, self.epochs = {}, [], []

    def on_train_begin(self, logs=None):
        self.calls.append("begin")

    def on_train_end(self, logs=None):
        self.calls.append("end")

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)

    def on_train_batch_end(self, batch, logs=None):
        self.sizes.setdefault(self.epochs[-1], []).append(int(logs["seen_batch_size"]))


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", loss="mse", metrics=[_SeenBatchSize()])
    return model


@pytest.mark.parametrize(
    "spec, overlap, expected",
    [
        # growing batches: fewer steps each epoch
        ("10+10*epoch", False, {0: [10] * 4, 1: [20] * 2, 2: [30, 10]}),
        # shrinking batches: more steps each epoch (plain fit would truncate)
        ("20-8*epoch", False, {0: [20, 20], 1: [12, 12, 12, 4], 2: [4] * 10}),
        # overlapping draws: fixed steps, scheduled sizes
        ("5+5*epoch", True, {0: [5] * 3, 1: [10] * 3, 2: [15] * 3}),
    ],
)
def test_fit_sees_the_scheduled_batch_sizes(spec, overlap, expected):
    x, y = _data()
    steps = 3 if overlap else None
    batches = B.ScheduledBatches(x, y, spec, overlap=overlap, steps_per_epoch=steps)
    recorder = _Recorder()
    history = B.fit_with_batch_schedule(_model(), batches, epochs=3, callbacks=[recorder], verbose=0)
    assert recorder.sizes == expected
    assert recorder.calls == ["begin", "end"] and recorder.epochs == [0, 1, 2]
    assert history.epoch == [0, 1, 2]
    assert history.history["batch_size"] == [sizes[0] for sizes in expected.values()]
    assert history.history["steps"] == [len(sizes) for sizes in expected.values()]
    assert len(history.history["loss"]) == 3


def test_resume_validation_and_stop_training():
    x, y = _data()
    batches = B.ScheduledBatches(x, y, "8+8*epoch")

    class StopAfterEpoch3(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = epoch == 3

    recorder = _Recorder()
    history = B.fit_with_batch_schedule(
        _model(), batches, epochs=10, initial_epoch=2, verbose=0,
        callbacks=[recorder, StopAfterEpoch3()], validation_data=(x, y),
    )  # fmt: skip
    assert recorder.epochs == [2, 3]
    assert {e: s[0] for e, s in recorder.sizes.items()} == {2: 24, 3: 32}
    assert "val_loss" in history.history and len(history.history["val_loss"]) == 2


def test_driver_rejects_owned_arguments_and_ema():
    x, y = _data()
    batches = B.ScheduledBatches(x, y, 8)
    with pytest.raises(ValueError, match="batch_size"):
        B.fit_with_batch_schedule(_model(), batches, epochs=1, batch_size=4)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(use_ema=True), loss="mse")
    with pytest.raises(ValueError, match="use_ema=True"):
        B.fit_with_batch_schedule(model, batches, epochs=1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"subset_size": 0}, "subset_size=0"),
        ({"subset_size": N + 1}, "subset_size=41"),
        ({"steps_per_epoch": 3}, "overlap=False"),
        ({"overlap": True, "steps_per_epoch": 0}, "steps_per_epoch=0"),
    ],
)
def test_invalid_batches_arguments_raise(kwargs, message):
    x, y = _data()
    with pytest.raises(ValueError, match=message):
        B.ScheduledBatches(x, y, 8, **kwargs)


def test_schedule_returning_non_positive_raises_at_use():
    x, y = _data()
    batches = B.ScheduledBatches(x, y, lambda epoch: 0)
    with pytest.raises(ValueError, match="positive integer"):
        batches.batch_size(0)
