"""`model.fit` under `MultiWorkerMirroredStrategy` with Keras 3.15.

Three gaps stand between Keras 3.15's `Model.fit` and synchronous
multi-worker training (`tf.distribute.MultiWorkerMirroredStrategy`, MWMS):

1. **fit cannot start** (`symbolic_build`; keras-team/keras#20585, open for Keras 3.15.1).
   Before the first step, `TensorFlowTrainer._maybe_symbolic_build` takes
   the first distributed batch and calls
   `strategy.reduce("MEAN", batch, axis=None)` on it, only to read its
   shapes and dtypes for building the model, metrics and optimizer
   symbolically. Under MWMS this eager cross-worker reduction of a
   `PerReplica` value fails ("Attempt to convert a value (PerReplica ...)
   with an unsupported type"). The workaround hands the symbolic build this
   worker's first local replica batch instead
   (`strategy.experimental_local_results(batch)[0]`): the same shapes and
   dtypes as the mean (every replica's batch has the per-replica shape), and
   no communication at all.

2. **step logs** (`reduce_logs`): once it starts, every step's logs go
   through `reduce_per_replica(..., "auto")`, whose multi-worker branch
   calls `strategy.reduce("MEAN", value, axis=0)`: a mean over the
   replicas *and* the first axis of each value, which fails for the scalar
   loss ("Invalid reduction dimension 0 for input with 0 dimensions"). The
   workaround averages over the replicas only (`axis=None`), which is what
   the one-worker branch computes (`reduce_mean` of the stacked local
   results over axis 0).

3. **checkpoint files** (`checkpoint_paths`): Keras 3's `ModelCheckpoint` and `BackupAndRestore`
   make every worker write the same file, which races on a shared
   filesystem. TensorFlow's convention (`checkpoint_paths`): every worker
   saves, the chief to the real path, the others to a temporary directory
   deleted right after; only the chief deletes the backup at the end,
   after a barrier (an all-reduce) so that no worker is still writing in
   it; restores read the chief's files.

`enable_multi_worker_fit()` installs them, once, before `fit` (it does not
initialise TensorFlow, so it may come before the strategy is created); the user code
is otherwise the same as with `MirroredStrategy`. Each part is installed
only if a probe finds the problem in the installed Keras (`needs_workaround`
runs the original methods against stand-in objects: does the symbolic build
send a distributed batch through `strategy.reduce`? are multi-worker logs
reduced with an axis? does a non-chief worker's checkpoint land on the
chief's path?), so the call becomes a no-op once Keras fixes them, and
calling it again changes nothing. Without a strategy nothing changes (the
tests check a patched `fit` bit for bit); under a one-process strategy the
symbolic build reads replica 0's batch instead of the mean over replicas
(same shapes and dtypes) and the rest runs Keras's code.

Resuming: `keras.callbacks.BackupAndRestore(dir)` (default
`save_freq="epoch"`) saves weights and optimizer state at every epoch end;
when a worker dies MWMS's collectives fail on the other workers too (after
the collective timeout), the cluster is restarted with the same command, and
`fit` continues at the first unfinished epoch from the saved state. Steps of
the interrupted epoch that ran after the backup are redone from the saved
state, so the optimizer sees every step exactly once and the result equals
an uninterrupted run. (With an integer `save_freq`, Keras 3.15 restores only
the epoch, not the step within it.)

Example (on every worker, `TF_CONFIG` set):

```python
import keras, tensorflow as tf
import tf_lowprec
tf_lowprec.distribute.enable_multi_worker_fit()
strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    model = tf_lowprec.models.get("mlp", input_shape=(28, 28, 1), num_classes=10)
    model.compile(tf_lowprec.optimizers.GRDA(0.01, c=0.005, mu=0.7),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(dataset, epochs=5, callbacks=[
    keras.callbacks.BackupAndRestore("backup"),
    keras.callbacks.ModelCheckpoint("ckpt/{epoch:02d}.keras"),
])
```
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import types

import keras
import numpy as np
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as tf_trainer
from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

from tf_lowprec.distribute import checkpoint_paths

# (owner, attribute) -> the original function, for every method replaced.
_ORIGINALS = {}


# --- 1. symbolic build from the local batch --------------------------------


def _local_first_batch(strategy, batch):
    """This worker's first replica's values of a (possibly distributed) batch."""
    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value
    return keras.tree.map_structure(local, batch)


def _maybe_symbolic_build(original):
    @functools.wraps(original)
    def build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is not None and iterator is not None:
            for _, _, it in iterator:
                data_batch = _local_first_batch(self.distribute_strategy, next(it))
                break
            iterator = None  # the original then builds from `data_batch`
        return original(self, iterator=iterator, data_batch=data_batch)
    return build


class _ProbeValue(tf.distribute.DistributedValues):
    """Stands in for a PerReplica batch component in `_symbolic_build_reduces`."""

    def __init__(self, value):
        self.values = (value,)


class _ProbeStrategy:
    def __init__(self):
        self.reduced = False
        self.extended = types.SimpleNamespace(should_checkpoint=False)
        self.cluster_resolver = types.SimpleNamespace(task_type="worker", task_id=1)

    def reduce(self, *args, **kwargs):
        self.reduced = True
        raise _ProbeDone

    def experimental_local_results(self, value):
        return value.values

    def scope(self):
        return contextlib.nullcontext()


class _ProbeDone(Exception):
    pass


def _symbolic_build_reduces():
    """Whether Keras's symbolic build reduces the distributed first batch across replicas."""
    strategy = _ProbeStrategy()
    trainer = types.SimpleNamespace(
        _distribute_strategy=strategy, distribute_strategy=strategy,
        _symbolic_build=lambda iterator=None, data_batch=None: None,
    )
    # NumPy, not TF tensors: probing must not initialise TensorFlow's
    # context (MultiWorkerMirroredStrategy can only be created before that).
    batch = (_ProbeValue(np.zeros((2, 3))), _ProbeValue(np.zeros((2,))))
    try:
        TensorFlowTrainer._maybe_symbolic_build(trainer, iterator=[(0, 0, iter([batch]))])
    except _ProbeDone:
        pass
    return strategy.reduced


# --- 2. step logs averaged over replicas, not over a batch axis -------------


def _reduce_per_replica(original):
    @functools.wraps(original)
    def reduce(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)
    return reduce


def _log_reduction_uses_batch_axis():
    """Whether Keras averages multi-worker step logs with `axis=0` (fails on scalars)."""
    strategy = _ProbeStrategy()
    axes = []

    def record(op, value, axis=None):
        axes.append(axis)
        return value

    strategy.reduce = record
    flag = getattr(tf_trainer, "_collective_all_reduce_multi_worker", None)
    if flag is None:
        return False
    tf_trainer._collective_all_reduce_multi_worker = lambda s: s is strategy or flag(s)
    try:
        tf_trainer.reduce_per_replica({"loss": np.float32(0)}, strategy, "auto")
    finally:
        tf_trainer._collective_all_reduce_multi_worker = flag
    return any(axis is not None for axis in axes)


# --- 3. chief writes, workers write to temporary paths ---------------------


def _makedirs(path, strategy):
    """Creates `path` up front (exist-ok): the chief and a worker creating its
    `workertemp_<i>` subdirectory would otherwise race in Keras's
    check-then-`os.makedirs`."""
    if path and tf_trainer._collective_all_reduce_multi_worker(strategy):
        tf.io.gfile.makedirs(path)


def _model_checkpoint_save(original):
    @functools.wraps(original)
    def save(self, epoch, batch, logs):
        strategy = self.model.distribute_strategy
        if checkpoint_paths.is_chief(strategy):
            _makedirs(os.path.dirname(self._get_file_path(epoch, batch, logs)), strategy)
            return original(self, epoch, batch, logs)
        real = self.filepath
        self.filepath = checkpoint_paths.worker_path(real, strategy)
        try:
            tf.io.gfile.makedirs(os.path.dirname(self._get_file_path(epoch, batch, logs)))
            return original(self, epoch, batch, logs)
        finally:
            self.filepath = real
            checkpoint_paths.remove_worker_dir(os.path.dirname(real), strategy)
    return save


_BACKUP_PATHS = ("backup_dir", "_weights_path", "_training_metadata_path",
                 "_prev_weights_path", "_prev_training_metadata_path")


def _backup_save(original):
    @functools.wraps(original)
    def save(self):
        strategy = self.model.distribute_strategy
        if checkpoint_paths.is_chief(strategy):
            _makedirs(self.backup_dir, strategy)
            return original(self)
        real = {name: getattr(self, name) for name in _BACKUP_PATHS}
        temporary = checkpoint_paths.worker_dir(self.backup_dir, strategy)
        for name, path in real.items():
            setattr(self, name, temporary if name == "backup_dir"
                    else path.replace(real["backup_dir"], temporary, 1))
        try:
            tf.io.gfile.makedirs(temporary)
            return original(self)
        finally:
            for name, path in real.items():
                setattr(self, name, path)
            checkpoint_paths.remove_worker_dir(self.backup_dir, strategy)
    return save


def _barrier(strategy):
    """Returns once every worker has called it (an all-reduce of one number)."""
    @tf.function
    def all_reduce():
        return strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)

    all_reduce()


def _backup_train_end(original):
    @functools.wraps(original)
    def train_end(self, logs=None):
        strategy = self.model.distribute_strategy
        if tf_trainer._collective_all_reduce_multi_worker(strategy):
            # Nothing synchronises the workers after the last step: without
            # this, the chief could delete the backup directory while a
            # worker still writes its last temporary copy inside it.
            _barrier(strategy)
        if checkpoint_paths.is_chief(strategy):
            return original(self, logs)
        keep = self.delete_checkpoint
        self.delete_checkpoint = False  # the chief deletes its backup
        try:
            return original(self, logs)
        finally:
            self.delete_checkpoint = keep
    return train_end


def _worker_writes_chief_path():
    """Whether Keras's checkpoint callbacks write a non-chief worker's file on the chief's path."""
    strategy = _ProbeStrategy()
    written = []
    model = types.SimpleNamespace(
        distribute_strategy=strategy,
        save=lambda path, overwrite=True: written.append(path),
        save_weights=lambda filepath, overwrite=True: written.append(filepath),
    )
    with tempfile.TemporaryDirectory() as root:
        checkpoint = keras.callbacks.ModelCheckpoint(f"{root}/ckpt/model.keras")
        checkpoint.set_model(model)
        checkpoint._save_model(epoch=0, batch=None, logs={})
        backup = keras.callbacks.BackupAndRestore(f"{root}/backup")
        backup.set_model(model)
        backup._save_model()
        return any(path in (f"{root}/ckpt/model.keras", backup._weights_path) for path in written)


# --- install ----------------------------------------------------------------

_PATCHES = (
    ("symbolic_build", _symbolic_build_reduces, ((TensorFlowTrainer, "_maybe_symbolic_build", _maybe_symbolic_build),)),
    ("reduce_logs", _log_reduction_uses_batch_axis,
     ((tf_trainer, "reduce_per_replica", _reduce_per_replica),)),
    ("checkpoint_paths", _worker_writes_chief_path, (
        (keras.callbacks.ModelCheckpoint, "_save_model", _model_checkpoint_save),
        (keras.callbacks.BackupAndRestore, "_save_model", _backup_save),
        (keras.callbacks.BackupAndRestore, "on_train_end", _backup_train_end),
    )),
)


def needs_workaround() -> dict[str, bool]:
    """`{"symbolic_build": bool, "reduce_logs": bool, "checkpoint_paths": bool}`.

    Which gaps the installed Keras has (see the module doc). Probes the
    methods as they are now, so after `enable_multi_worker_fit()` all are
    `False`. Touches neither files outside a temporary directory nor
    TensorFlow's runtime.
    """
    return {part: probe() for part, probe, _ in _PATCHES}


def enable_multi_worker_fit() -> tuple[str, ...]:
    """Makes `model.fit` work under `MultiWorkerMirroredStrategy` (see the module doc).

    Call once per process, before `fit`; further calls do nothing.

    Returns:
        The names of the parts installed by this call: a subset of
        `("symbolic_build", "checkpoint_paths")`, empty when Keras needs
        neither or they are already installed.
    """
    installed = []
    for part, probe, replacements in _PATCHES:
        if not probe():
            continue
        for owner, name, wrap in replacements:
            _ORIGINALS.setdefault((owner, name), getattr(owner, name))
            setattr(owner, name, wrap(getattr(owner, name)))
        installed.append(part)
    return tuple(installed)


def disable_multi_worker_fit() -> None:
    """Restores Keras's original methods (for tests)."""
    for (owner, name), original in _ORIGINALS.items():
        setattr(owner, name, original)
    _ORIGINALS.clear()
