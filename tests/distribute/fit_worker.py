"""Subprocess body: one worker of a `model.fit` run under MultiWorkerMirroredStrategy.

    TF_CONFIG='{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": i}}' \
        python -m tests.distribute.fit_worker OUT_DIR RUN [RUN ...] [--kill-at EPOCH:BATCH]

Every RUN is one `model.fit` (see `RUNS`) with ordinary Keras code plus the
one call `tf_lowprec.distribute.enable_multi_worker_fit()`; the worker saves
its final weights and optimizer variables to `OUT_DIR/<run>_<task>.npz`
("single" instead of the task without TF_CONFIG: the one-process reference
on one device with the same global batches) and the parts that call
installed to `OUT_DIR/installed_<task>.json`. Checkpoints: every run uses
`keras.callbacks.BackupAndRestore(OUT_DIR/backup_<run>)` and a `.keras`
`ModelCheckpoint(OUT_DIR/ckpt_<run>/e{epoch}.keras)`; `--kill-at 1:2` makes
worker 1 SIGKILL itself before batch 2 of epoch 1 (0-based) of the run
"grda_killed", after the epoch-0 backup.
"""

import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

GLOBAL_BATCH = 16
EPOCHS = 3


def _data():
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.integers(0, 3, size=64).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)


def _mlp():
    import keras
    import numpy as np

    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)]
    )
    init = np.random.default_rng(1)
    model.set_weights([init.normal(0, 0.3, w.shape).astype("float32") for w in model.get_weights()])
    return model


def _grda():
    from tf_lowprec.optimizers import GRDA

    return _mlp(), GRDA(0.05, c=0.02, mu=0.6, clipnorm=0.5), []


def _low_precision():
    import keras

    from tf_lowprec.formats import FixedPoint
    from tf_lowprec.optimizers import LowPrecision

    optimizer = LowPrecision(keras.optimizers.SGD(0.1, momentum=0.9), weight_quantizer=FixedPoint(8, 6),
                             gradient_quantizer=FixedPoint(8, 6), momentum_quantizer=FixedPoint(8, 6),
                             seed=3)
    return _mlp(), optimizer, []


def _pruned_swa():
    """Magnitude pruning + SparsityLogger + stochastic weight averaging."""
    import keras

    from tf_lowprec import pruning, training

    schedule = pruning.ConstantSparsity(0.5, begin_step=2, end_step=-1, frequency=4)
    model = pruning.prune_low_magnitude(_mlp(), pruning_schedule=schedule)
    callbacks = [pruning.UpdatePruningStep(), pruning.SparsityLogger(),
                 training.StochasticWeightAveraging(start_epoch=1)]
    return model, training.SWA(keras.optimizers.SGD(0.1)), callbacks


def _svrg():
    """VarianceReduced's full-gradient snapshots (SVRG, T = 1 epoch)."""
    from tf_lowprec.optimizers import SVRG
    from tf_lowprec.training import VarianceReduced

    return VarianceReduced(_mlp()), SVRG(0.05, T="1epoch"), []


RUNS = {"grda": _grda, "lowprec": _low_precision, "pruned_swa": _pruned_swa, "svrg": _svrg,
        "grda_killed": _grda}  # the same run as "grda", to be killed and resumed


def _kill_worker_1(epoch, batch):
    import keras

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None):
            self.epoch = e

        def on_train_batch_begin(self, b, logs=None):
            if (self.epoch, b) == (epoch, batch):
                os.kill(os.getpid(), signal.SIGKILL)

    return Kill()


def fit(name, out, strategy, tag, kill_at=None):
    import keras
    import numpy as np

    with strategy.scope():
        model, optimizer, callbacks = RUNS[name]()
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callbacks += [keras.callbacks.BackupAndRestore(os.path.join(out, f"backup_{name}")),
                  keras.callbacks.ModelCheckpoint(os.path.join(out, f"ckpt_{name}", "e{epoch}.keras"))]
    if kill_at is not None:
        callbacks.append(_kill_worker_1(*kill_at))
    history = model.fit(_data(), epochs=EPOCHS, callbacks=callbacks, verbose=0, shuffle=False)
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    arrays.update({f"opt{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)})
    arrays["loss"] = np.asarray(history.history["loss"])
    if "sparsity" in history.history:
        arrays["sparsity"] = np.asarray(history.history["sparsity"])
    np.savez(os.path.join(out, f"{name}_{tag}.npz"), **arrays)


def main(argv):
    import tensorflow as tf

    import tf_lowprec

    kill_at = None
    if "--kill-at" in argv:
        at = argv.index("--kill-at")
        kill_at = tuple(int(t) for t in argv[at + 1].split(":"))
        argv = argv[:at] + argv[at + 2:]
    out, names = argv[0], argv[1:]
    installed = tf_lowprec.distribute.enable_multi_worker_fit()
    if "TF_CONFIG" in os.environ:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        tag = str(strategy.cluster_resolver.task_id)
    else:
        strategy, tag = tf.distribute.get_strategy(), "single"
    with open(os.path.join(out, f"installed_{tag}.json"), "w") as f:
        json.dump(list(installed), f)
    for name in names:
        fit(name, out, strategy, tag, kill_at if name == "grda_killed" and tag == "1" else None)


if __name__ == "__main__":
    main(sys.argv[1:])
