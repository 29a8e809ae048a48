"""
Title: Directional pruning with GRDA
Author: tf_lowprec contributors
Date created: 2026/12/01
Last modified: 2026/12/01
Description: Train a CNN that ends up sparse (exact zeros, no retraining) with the GRDA optimizer, watch its sparsity, compare it with SGD and export it.
Accelerator: None
"""

"""
## Introduction

Pruning usually means *train, cut the small weights, retrain*. **gRDA**
(generalized regularized dual averaging, Chao et al., NeurIPS 2020) gets a
sparse network from ordinary training instead: it runs SGD on a dual
accumulator that starts at the initial weights, and uses the
*soft-thresholded* accumulator as the weights,

```
acc_n = acc_{n-1} - lr * g_n
thr_n = c * lr^(mu + 1/2) * n^mu
w_n   = sign(acc_n) * max(|acc_n| - thr_n, 0)
```

The threshold grows slowly with the step `n`, so weights whose accumulated
gradient does not push them away from zero become **exact zeros**. `c = 0` is
plain SGD; `mu` in (0.5, 1) sets how fast the threshold grows (more sparsity
for larger `mu`) and `c` its scale.

This tutorial trains the same CNN on Fashion-MNIST twice, with SGD and with
`tf_lowprec.optimizers.GRDA`, logs the sparsity every epoch (in the `History`
and in TensorBoard), compares accuracy and sparsity, and measures what the
zeros buy when the model is exported.

Set the environment variable `TF_LOWPREC_SMOKE=1` to run everything on a few
hundred images (that is how the test suite runs it).
"""

"""
## Setup
"""

import os

import keras
import matplotlib.pyplot as plt
import tensorflow as tf

from tf_lowprec import data, models, pruning
from tf_lowprec.callbacks import SparsityLogger, TensorBoardDiagnostics
from tf_lowprec.optimizers import GRDA

SMOKE = os.environ.get("TF_LOWPREC_SMOKE") == "1"
TRAIN_IMAGES = 256 if SMOKE else None  # None: all 60,000
TEST_IMAGES = 500 if SMOKE else None  # None: all 10,000
EPOCHS = 1 if SMOKE else 3

"""
## Data

`tf_lowprec.data.load` returns a normalized, shuffled, batched `tf.data`
pipeline. It reads local files first (here the Debian package
`dataset-fashion-mnist` in `/usr/share/datasets/fashion-mnist`) and only
downloads through `keras.datasets` when nothing is found.
"""

train = data.load("fashion_mnist", "train", batch_size=128, limit=TRAIN_IMAGES)
test = data.load("fashion_mnist", "test", batch_size=1000, limit=TEST_IMAGES)

"""
## Train with GRDA

`GRDA` is a Keras optimizer like any other: pass it to `compile`. The
learning rate is the one that works for plain SGD without momentum.

Two callbacks show the sparsity while training:

* `tf_lowprec.callbacks.SparsityLogger(per_layer=True)` adds `sparsity` (global fraction of exact
  zeros) and `sparsity/<layer>` to the epoch logs, so they end up in the
  `History`, the progress bar and any `CSVLogger`.
* `tf_lowprec.callbacks.TensorBoardDiagnostics` writes per-layer sparsity,
  the GRDA threshold and weight histograms to TensorBoard, next to Keras's
  own `TensorBoard` callback: `tensorboard --logdir logs`.

The two models start from the same initial weights (`set_random_seed`
before building each), so the comparison below is only about the optimizer.
"""


def build_model():
    keras.utils.set_random_seed(0)
    return models.cnn()  # 225,034 parameters, outputs logits


loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

grda_model = build_model()
grda_model.compile(optimizer=GRDA(learning_rate=0.1, c=0.005, mu=0.7), loss=loss,
                   metrics=["accuracy"])
grda_history = grda_model.fit(
    train,
    validation_data=test,
    epochs=EPOCHS,
    callbacks=[
        SparsityLogger(per_layer=True),
        keras.callbacks.TensorBoard("logs/grda"),
        TensorBoardDiagnostics("logs/grda"),
    ],
    verbose=2,
)

"""
## The SGD baseline

Same model, same initial weights, same learning rate, plain SGD (which is
`GRDA` with `c=0`).
"""

sgd_model = build_model()
sgd_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=loss,
                  metrics=["accuracy"])
sgd_history = sgd_model.fit(
    train,
    validation_data=test,
    epochs=EPOCHS,
    callbacks=[SparsityLogger()],
    verbose=2,
)

"""
## Accuracy and sparsity, epoch by epoch

Both numbers come straight from the `History`: `val_accuracy` from Keras,
`sparsity` from `SparsityLogger`. SGD never produces exact zeros; GRDA's
sparsity keeps growing with the threshold.
"""

epochs = range(1, EPOCHS + 1)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
for name, history in (("SGD", sgd_history), ("GRDA", grda_history)):
    left.plot(epochs, history.history["val_accuracy"], marker="o", label=name)
    right.plot(epochs, history.history["sparsity"], marker="o", label=name)
left.set(xlabel="epoch", ylabel="test accuracy", title="Accuracy")
right.set(xlabel="epoch", ylabel="fraction of exact zeros", title="Sparsity")
left.legend()
right.legend()
plt.tight_layout()
plt.show()

"""
`pruning.sparsity(model)` gives the same count per layer. Most of the
zeros are in the large `dense` layer, where most of the redundancy is.
"""

print(pruning.sparsity(grda_model))

"""
## What the zeros buy: export sizes

Zeros compress. `pruning.export_sizes` writes the model as a `.keras` file
and as TFLite flatbuffers (dense and with TFLite's sparse-tensor encoding)
and measures the files, raw and gzipped. The sparse GRDA model is the same
architecture, so the raw `.keras` file has the same size; the gzipped one
shrinks with the sparsity.
"""

sizes = {
    "SGD": pruning.export_sizes(sgd_model, directory="export/sgd"),
    "GRDA": pruning.export_sizes(grda_model, directory="export/grda"),
}
print(f"{'':6}{'.keras':>10}{'.keras.gz':>12}{'tflite.gz':>12}{'sparse tflite':>15}")
for name, s in sizes.items():
    print(f"{name:6}{s.keras:>10,}{s.keras_gzip:>12,}{s.tflite_gzip:>12,}{s.tflite_sparse:>15,}")

"""
The exported `export/grda/model.keras` is an ordinary Keras model: load it
with `keras.saving.load_model` anywhere, no tf_lowprec needed at inference
time.

## Reading the TensorBoard logs

`TensorBoardDiagnostics` wrote its scalars to `logs/grda/diagnostics`. Run
`tensorboard --logdir logs` to see `sparsity/<layer>` and `grda/threshold`
next to Keras's loss curves, or list the tags programmatically:
"""

tags = set()
for event_file in tf.io.gfile.glob("logs/grda/diagnostics/events.out.tfevents.*"):
    for record in tf.data.TFRecordDataset(event_file):
        event = tf.compat.v1.Event.FromString(record.numpy())
        tags.update(value.tag for value in event.summary.value)
print(sorted(tag for tag in tags if not tag.startswith("weights/")))

"""
## Where to go from here

* Larger `mu` (or `c`) gives more sparsity at some cost in accuracy; the
  study in `examples/grda_directional_pruning/` sweeps `mu` on this CNN.
* GRDA works with learning-rate schedules, mixed precision, `jit_compile`,
  `tf.distribute` and `.keras` save/resume (see the API reference).
* Magnitude pruning and filter pruning (`tf_lowprec.pruning`) are the
  classic alternatives, compared in `examples/pruning/`.
"""
