"""
Title: Several devices and several machines
Author: tf_lowprec contributors
Date created: 2026/12/01
Last modified: 2026/12/01
Description: Train with GRDA under MirroredStrategy (two logical CPU devices standing in for two GPUs) and under MultiWorkerMirroredStrategy with two worker processes, using model.fit.
Accelerator: None
"""

"""
## Introduction

Every tf_lowprec optimizer trains under `tf.distribute` strategies with the
usual Keras code: build and compile inside `strategy.scope()`, then `fit`.

* **One machine, several devices**: `tf.distribute.MirroredStrategy`. This
  tutorial has no GPU, so it splits the CPU into two *logical* devices: the
  same code runs unchanged on two GPUs. (The replicas share the same cores,
  so this shows correctness, not speed.)
* **Several machines**: `tf.distribute.MultiWorkerMirroredStrategy`, one
  process per machine, plus one call,
  `tf_lowprec.distribute.enable_multi_worker_fit()`, that makes Keras 3's
  `fit` work under this strategy. Here the "machines" are two processes on
  this computer, started by `tf_lowprec.distribute.local_cluster.LocalCluster`.

Set `TF_LOWPREC_SMOKE=1` to run it on a few hundred images.
"""

"""
## Setup: two logical CPU devices

This must happen before TensorFlow runs its first operation (in a notebook:
restart the kernel first).
"""

import os
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
print(tf.config.list_logical_devices("CPU"))

import keras
import numpy as np

from tf_lowprec import data, models, pruning
from tf_lowprec.distribute.local_cluster import LocalCluster, core_shares
from tf_lowprec.optimizers import GRDA

SMOKE = os.environ.get("TF_LOWPREC_SMOKE") == "1"
TRAIN_IMAGES = 256 if SMOKE else 20_000
TEST_IMAGES = 500 if SMOKE else None  # None: all 10,000
EPOCHS = 1 if SMOKE else 3

"""
## MirroredStrategy

Each replica gets part of every batch; gradients are summed across replicas
(all-reduce) before the optimizer applies them, so every replica holds the
same weights. **The batch size you give is the global one**: 128 here means
64 images per device.

We train the same model twice from the same initial weights on the same,
unshuffled batches: once on one device, once on two replicas.
"""

train = data.load("fashion_mnist", "train", batch_size=128, limit=TRAIN_IMAGES, shuffle=False)
test = data.load("fashion_mnist", "test", batch_size=1000, limit=TEST_IMAGES)


"""
We build and compile the model once and save it. Every run in this tutorial,
also the worker processes further down, loads this file inside its
strategy's scope (where a distributed model's variables must be created), so
all start from the same weights with the same optimizer settings.
"""

keras.utils.set_random_seed(0)
model = models.mlp(hidden_units=(128,))
model.compile(
    optimizer=GRDA(learning_rate=0.1, c=0.005, mu=0.7),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
model.save("grda_mlp.keras")


def train_grda(strategy):
    with strategy.scope():
        model = keras.saving.load_model("grda_mlp.keras")
    history = model.fit(train, epochs=EPOCHS, shuffle=False, verbose=2)
    return model, history


mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
print("replicas:", mirrored.num_replicas_in_sync)
two_devices, two_history = train_grda(mirrored)
one_device, one_history = train_grda(tf.distribute.get_strategy())  # the default: no distribution

"""
Same global batch, same training: both runs compute the same updates, but
the all-reduce adds the replicas' gradients in another order, so the weights
differ by float32 round-off after the first step. Training amplifies such
differences slowly (a weight near GRDA's threshold may be zero in one run
and not yet in the other), but the losses, the sparsity and the accuracy
agree:
"""

for name, model, history in (("two devices", two_devices, two_history),
                              ("one device", one_device, one_history)):
    losses = ", ".join(f"{loss:.4f}" for loss in history.history["loss"])
    print(f"{name:12} losses per epoch {losses}; sparsity "
          f"{pruning.sparsity(model).sparsity:.2%}; test accuracy "
          f"{model.evaluate(test, verbose=0)[1]:.2%}")
difference = max(
    float(np.max(np.abs(a - b)))
    for a, b in zip(two_devices.get_weights(), one_device.get_weights())
)
print(f"largest weight difference after {EPOCHS} epoch(s): {difference:.1e}")

"""
When you go from 1 to N devices:

* keep the global batch (and the learning rate) to get the same training,
  faster; or multiply the batch by `strategy.num_replicas_in_sync` to keep
  the per-device batch, and then re-tune the learning rate (for GRDA the
  threshold scales with `lr^(mu + 1/2)`, so re-check the sparsity);
* gradient clipping in tf_lowprec optimizers acts on the all-reduced
  gradient, exactly as on one device.

## Several machines: MultiWorkerMirroredStrategy

Each machine runs the same script. `TF_CONFIG` tells each process the
addresses of all workers and its own index (worker 0 is the *chief*):

```
TF_CONFIG='{"cluster": {"worker": ["hostA:12345", "hostB:12345"]},
            "task": {"type": "worker", "index": 0}}'
```

In Keras 3.15, `fit` under this strategy needs a few fixes (it stops before
the first step, and every worker writes the same checkpoint files).
`tf_lowprec.distribute.enable_multi_worker_fit()` installs them (only those
the installed Keras still needs); call it once per process, before `fit`.
Checkpoints then follow TensorFlow's rule: the chief writes the real files,
the other workers write to temporary directories that are deleted.

This is the worker script:
"""

WORKER = '''
import sys

import keras
import tensorflow as tf

import tf_lowprec  # also registers GRDA for load_model
from tf_lowprec import data

out, initial, limit, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tf_lowprec.distribute.enable_multi_worker_fit()
strategy = tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG
print("workers:", strategy.cluster_resolver.cluster_spec().num_tasks("worker"))

with strategy.scope():
    model = keras.saving.load_model(initial)  # the compiled model saved above
train = data.load("fashion_mnist", "train", batch_size=128, limit=limit)  # global batch
model.fit(train, epochs=epochs, verbose=2, callbacks=[
    keras.callbacks.BackupAndRestore(f"{out}/backup"),  # restart a failed run here
    keras.callbacks.ModelCheckpoint(f"{out}/checkpoints/epoch{{epoch}}.keras"),
])
'''

with open("train_worker.py", "w") as f:
    f.write(WORKER)

"""
`LocalCluster(2, command)` starts the command twice with a generated
`TF_CONFIG` (free ports on 127.0.0.1), pins each worker to its share of the
cores (`core_shares`), writes each worker's output to a log file, and stops
the others at once if one fails. On real machines you start the script on
each one yourself (or with your cluster's job launcher).
"""

out = os.path.abspath("multi_worker")
initial = os.path.abspath("grda_mlp.keras")
command = [sys.executable, "train_worker.py", out, initial, str(TRAIN_IMAGES), str(EPOCHS)]
with LocalCluster(2, command, cores=core_shares(2), log_dir=os.path.join(out, "logs")) as cluster:
    cluster.wait(timeout=1800)

with open(cluster.log_path(0)) as f:  # the chief's log
    print("".join(line for line in f if "loss" in line or "workers" in line))

"""
The chief wrote one `.keras` checkpoint per epoch, with the optimizer state;
load the last one and evaluate it here, in this process:
"""

print(sorted(os.listdir(os.path.join(out, "checkpoints"))))
trained = keras.saving.load_model(os.path.join(out, "checkpoints", f"epoch{EPOCHS}.keras"))
print(f"test accuracy {trained.evaluate(test, verbose=0)[1]:.2%}, "
      f"sparsity {pruning.sparsity(trained).sparsity:.2%}")

"""
**When a worker dies**, the others stop at their next collective operation.
Start every worker again with the same command: `BackupAndRestore` resumes
from the chief's backup at the first unfinished epoch.

## Where to go from here

* `tf-lowprec scale --workers 1,2` measures images/s for 1 and 2 worker
  processes; `--replicas 1,2,4` does the same for `MirroredStrategy`.
* The README's "Several GPUs, several machines" section lists what was
  tested under each strategy (GRDA, `LowPrecision`, pruning with SWA,
  `VarianceReduced`).
"""
