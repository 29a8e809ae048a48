"""Where each worker of a multi-worker run writes its checkpoints.

TensorFlow's convention for synchronous multi-worker training
(`tf.distribute.MultiWorkerMirroredStrategy`): *every* worker runs the save
(reading distributed variables may need collective ops, which all workers
must join), but only the chief's file is kept. The chief writes to the real
path; worker `i` writes to `<dir>/workertemp_<i>/<name>` and deletes it right
after. Restores read the real (chief's) path on every worker. This is what
`tf.keras` did inside its `ModelCheckpoint`/`BackupAndRestore` and what
`tf.train.CheckpointManager` does; Keras 3's callbacks do not (every worker
writes the same file), so `enable_multi_worker_fit` routes them through
these functions.
"""

import os
import shutil

import tensorflow as tf


def is_chief(strategy=None):
    """Whether this process writes the checkpoints that are kept.

    `strategy.extended.should_checkpoint`: `True` without a strategy, under
    one-process strategies and on the chief (worker 0 when the cluster has
    no "chief" task) of a multi-worker strategy.
    """
    strategy = strategy or tf.distribute.get_strategy()
    return bool(strategy.extended.should_checkpoint)


def worker_dir(dirpath, strategy=None):
    """`dirpath` on the chief, `dirpath/workertemp_<task id>` on other workers."""
    strategy = strategy or tf.distribute.get_strategy()
    if is_chief(strategy):
        return dirpath
    return os.path.join(dirpath, f"workertemp_{strategy.cluster_resolver.task_id}")


def worker_path(filepath, strategy=None):
    """`filepath` on the chief; the same name in `worker_dir` elsewhere.

    `filepath` may be a `ModelCheckpoint` template (`"ckpt/{epoch:02d}.keras"`):
    only its directory changes.
    """
    dirpath, name = os.path.split(filepath)
    return os.path.join(worker_dir(dirpath, strategy), name)


def remove_worker_dir(dirpath, strategy=None):
    """Deletes this worker's temporary directory under `dirpath` (not on the chief)."""
    if not is_chief(strategy):
        shutil.rmtree(worker_dir(dirpath, strategy), ignore_errors=True)
