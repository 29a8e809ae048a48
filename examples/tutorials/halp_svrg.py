"""
Title: SVRG and HALP through model.fit
Author: tf_lowprec contributors
Date created: 2026/12/01
Last modified: 2026/12/01
Description: Train with the variance-reduced optimizers SVRG and HALP (bit-centered 8-bit SVRG) with ordinary compile and fit, using the VarianceReduced model wrapper.
Accelerator: None
"""

"""
## Introduction

**SVRG** (stochastic variance-reduced gradient; Johnson and Zhang, 2013)
corrects each minibatch gradient with a full-dataset gradient taken at a
*snapshot* of the weights `w~`, recomputed every `T` steps:

```
d = grad f_B(w) - grad f_B(w~) + g~,      g~ = full gradient at w~
w = w - lr * d
```

The noise of `d` shrinks as `w` approaches `w~`, so SVRG converges with a
constant learning rate where SGD needs a decaying one.

**HALP** (De Sa et al., 2018) is SVRG in low precision with *bit centering*:
between snapshots the weights are a full-precision center plus an 8-bit (or
fewer bits) integer offset, on a grid whose spacing shrinks with the full
gradient, so a fixed number of levels keeps covering the shrinking
neighbourhood of the optimum.

A Keras optimizer only ever sees one gradient per step. SVRG and HALP need
two (at `w` and at `w~`, on the same batch) plus the full gradient every `T`
steps; `tf_lowprec.training.VarianceReduced(model)` provides them, and its
`fit` takes the snapshots by itself. Everything else is plain Keras.

Set `TF_LOWPREC_SMOKE=1` to run it on a few hundred images.
"""

"""
## Setup
"""

import os

import keras
import matplotlib.pyplot as plt
import numpy as np

from tf_lowprec import data, models
from tf_lowprec.optimizers import HALP, SVRG
from tf_lowprec.training import VarianceReduced

SMOKE = os.environ.get("TF_LOWPREC_SMOKE") == "1"
TRAIN_IMAGES = 256 if SMOKE else 10_000
TEST_IMAGES = 500 if SMOKE else None  # None: all 10,000
EPOCHS = 1 if SMOKE else 6

train = data.load("fashion_mnist", "train", batch_size=128, limit=TRAIN_IMAGES)
test = data.load("fashion_mnist", "test", batch_size=1000, limit=TEST_IMAGES)
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def build_model():
    keras.utils.set_random_seed(0)  # the same initial weights for every run
    return models.mlp(hidden_units=(128,))


"""
## Plain SGD, for reference
"""

histories = {}
model = build_model()
model.compile(optimizer=keras.optimizers.SGD(0.05), loss=loss, metrics=["accuracy"])
histories["SGD"] = model.fit(train, validation_data=test, epochs=EPOCHS, verbose=2)

"""
## SVRG

Wrap the model in `VarianceReduced` and compile it with `SVRG`. `T` is the
snapshot period: a number of steps, or a string in epochs (`"1epoch"`,
`"0.5epoch"`). `fit` adds a `FullGradientSnapshot` callback over the training
data that computes the full gradient every `T` steps.

Each step costs two forward/backward passes, and each snapshot one pass over
the data: an SVRG epoch costs about three SGD epochs.
"""

model = VarianceReduced(build_model())
model.compile(optimizer=SVRG(0.05, T="1epoch"), loss=loss, metrics=["accuracy"])
histories["SVRG"] = model.fit(train, validation_data=test, epochs=EPOCHS, verbose=2)

"""
## HALP: the same, with 8-bit offsets

`HALP(learning_rate, T, mu, bits)`: `bits` is the width of the integer offset,
`mu` sets the grid (larger `mu`: finer grid, smaller range). The offsets are
real `int8` variables, saved with the model.
"""

halp = HALP(0.05, T="1epoch", mu=20, bits=8, seed=0)
halp_model = VarianceReduced(build_model())
halp_model.compile(optimizer=halp, loss=loss, metrics=["accuracy"])
histories["HALP 8-bit"] = halp_model.fit(train, validation_data=test, epochs=EPOCHS, verbose=2)

"""
## Training loss and test accuracy
"""

epochs = range(1, EPOCHS + 1)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
for name, history in histories.items():
    left.plot(epochs, history.history["loss"], marker="o", label=name)
    right.plot(epochs, history.history["val_accuracy"], marker="o", label=name)
left.set(xlabel="epoch", ylabel="training loss", yscale="log")
right.set(xlabel="epoch", ylabel="test accuracy")
left.legend()
plt.tight_layout()
plt.show()

"""
## Inside HALP: the integer offsets

`halp.offset(variable)` is the integer offset `k` of a weight tensor,
`halp.scale(variable)` its grid spacing `delta` and `halp.center(variable)`
the full-precision center, so that `w = center + delta * k`. If many offsets
sit at the ends of the int8 range (-128 or 127) the grid is too small for the
steps taken: lower `mu`. (`tf_lowprec.callbacks.TensorBoardDiagnostics`
plots this saturation in TensorBoard.)
"""

kernel = halp_model.trainable_variables[0]
codes = np.asarray(halp.offset(kernel))
print(kernel.path, codes.dtype, "scale", float(halp.scale(kernel)))
print(f"offsets at the clamp: {np.mean((codes == -128) | (codes == 127)):.2%}")
reconstructed = np.asarray(halp.center(kernel)) + float(halp.scale(kernel)) * codes
print("w == center + scale * offset:", np.allclose(reconstructed, np.asarray(kernel), atol=1e-6))

plt.figure(figsize=(6, 3))
plt.hist(codes.ravel(), bins=np.arange(-128, 129, 4))
plt.xlabel("int8 offset code")
plt.ylabel("weights")
plt.show()

"""
## Saving and resuming

The wrapper saves like any model; the `.keras` file holds the HALP state
(int8 offsets, centers, full gradient), so training resumes exactly.
"""

halp_model.save("halp.keras")
restored = keras.saving.load_model("halp.keras")
print(type(restored).__name__, type(restored.optimizer).__name__)

"""
## Where to go from here

* The study in `examples/halp/` compares SGD, SVRG and HALP on a small CNN
  and sweeps `T` and the number of bits.
* `VarianceReduced` also runs under `tf.distribute` strategies and with
  `BackupAndRestore`, see the several-devices tutorial.
"""
