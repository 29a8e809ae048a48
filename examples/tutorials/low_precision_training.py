"""
Title: Low-precision training: number formats, quantizers and SWALP
Author: tf_lowprec contributors
Date created: 2026/12/01
Last modified: 2026/12/01
Description: Simulate 8-bit training in Keras: number formats, the Quantizer object, the LowPrecision optimizer wrapper and the SWALP recipe in one call.
Accelerator: None
"""

"""
## Introduction

Low-precision training stores weights, gradients and optimizer state in
few bits. tf_lowprec *simulates* it in float32: every number is rounded onto
the grid of a low-precision **format** at the points where real hardware
would round, so you can measure what a format costs in accuracy before
building anything.

This tutorial walks through the three pieces:

1. **Formats** (`tf_lowprec.formats`): which numbers exist.
2. **Quantizers** (`tf_lowprec.quantizers.Quantizer`): format + rounding
   (nearest or stochastic) + seed; the one object every API takes.
3. **Training**: `tf_lowprec.optimizers.LowPrecision` wraps any Keras
   optimizer and quantizes what it reads and writes; `tf_lowprec.recipes.swalp`
   sets up SWALP (8-bit block floating point everywhere, plus stochastic
   weight averaging; Yang et al., ICML 2019) in one call.

Set `TF_LOWPREC_SMOKE=1` to run it on a few hundred images.
"""

"""
## Setup
"""

import os

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from tf_lowprec import data, formats, models, recipes
from tf_lowprec.experiments.charts import accuracy_bars
from tf_lowprec.optimizers import LowPrecision
from tf_lowprec.quantizers import Quantizer

SMOKE = os.environ.get("TF_LOWPREC_SMOKE") == "1"
TRAIN_IMAGES = 256 if SMOKE else 20_000
TEST_IMAGES = 500 if SMOKE else None  # None: all 10,000
EPOCHS = 1 if SMOKE else 3

"""
## Number formats

A format only says which numbers are representable:

| format | values |
|---|---|
| `FixedPoint(wl, fl)` | `k * 2^-fl`, `k` a `wl`-bit signed integer |
| `BlockFloatingPoint(wl, axis)` | `wl`-bit integers times one shared power of two per block |
| `FloatingPoint(e, m)` | a binary float with `e` exponent and `m` mantissa bits |
| `IntegerAffine(bits)` | `scale * k` with the scale taken from the data (int8 inference) |

Formats are small immutable values: they compare by value, print readably and
save inside `.keras` files.
"""

fixed = formats.FixedPoint(word_length=4, fractional_length=2)  # steps of 0.25 in [-2, 1.75]
bfp8 = formats.BlockFloatingPoint(8, axis=None)  # one exponent for the whole tensor
bfloat16 = formats.FloatingPoint(exponent_bits=8, mantissa_bits=7)
print(fixed, bfp8, bfloat16, sep="\n")

"""
## Quantizers: format + rounding

`Quantizer(format, rounding, seed)` is what you call on a tensor.
**Nearest** rounding is deterministic; **stochastic** rounding rounds up with
probability equal to the distance to the lower grid point, so it is unbiased:
`E[q(x)] = x`. That is what lets tiny gradient updates survive in low
precision: each one is usually rounded away, but not on average.

The plot shows both on the 4-bit fixed-point grid: nearest rounding is a
staircase; the average of 100 stochastic roundings follows `x` (until the
format saturates at its largest value, 1.75).
"""

x = np.linspace(-2.5, 2.5, 501).astype("float32")
nearest = Quantizer(fixed, "nearest")
stochastic = [Quantizer(fixed, "stochastic", seed=s) for s in range(100)]

plt.figure(figsize=(6, 3.5))
plt.plot(x, x, "k:", label="x")
plt.plot(x, nearest(x), label="nearest")
plt.plot(x, np.mean([np.asarray(q(x)) for q in stochastic], axis=0),
         label="stochastic (mean of 100)")
plt.xlabel("x")
plt.ylabel("q(x)")
plt.title("FixedPoint(4, 2)")
plt.legend()
plt.show()

"""
FloatingPoint(8, 7) with nearest rounding is exactly a cast to `bfloat16`:
"""

w = tf.random.normal([1000], seed=1)
same = Quantizer(bfloat16, "nearest")(w) == tf.cast(tf.cast(w, tf.bfloat16), tf.float32)
print("equal to the bfloat16 cast:", bool(tf.reduce_all(same)))

"""
The relative error of 8-bit block floating point on Gaussian weights is
about 1%:
"""

q8 = Quantizer(bfp8, "nearest")(w)
print(f"rms(q(w) - w) / rms(w) = {float(tf.norm(q8 - w) / tf.norm(w)):.4f}")

"""
## Data and a full-precision baseline
"""

train = data.load("fashion_mnist", "train", batch_size=128, limit=TRAIN_IMAGES)
test = data.load("fashion_mnist", "test", batch_size=1000, limit=TEST_IMAGES)
steps_per_epoch = int(train.cardinality())
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def build_model():
    keras.utils.set_random_seed(0)  # every run starts from the same weights
    return models.cnn(filters=(16, 32), dense_units=64)


def train_and_test(model, optimizer, callbacks=()):
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    model.fit(train, epochs=EPOCHS, callbacks=list(callbacks), verbose=2)
    return model.evaluate(test, verbose=0)[1]


results = {}
results["float32 SGD"] = train_and_test(
    build_model(), keras.optimizers.SGD(0.05, momentum=0.9))

"""
## `LowPrecision`: quantize what any optimizer reads and writes

`LowPrecision(optimizer, weight_quantizer=..., gradient_quantizer=...,
momentum_quantizer=..., accumulator_quantizer=...)` wraps a Keras optimizer.
At every step it quantizes the incoming gradient, runs the inner rule, and
writes the weights and the optimizer's state (here SGD's momentum) back
quantized. With no quantizers it *is* the inner optimizer, bit for bit.

Here: 8-bit block floating point with one exponent per output channel and
stochastic rounding for everything. A bare format is accepted too (it gets
`LowPrecision`'s default, stochastic rounding); `seed` makes the rounding
reproducible.
"""

bfp8_channels = Quantizer(formats.BlockFloatingPoint(8, axis=-1), "stochastic")
lp_sgd = LowPrecision(
    keras.optimizers.SGD(0.05, momentum=0.9),
    weight_quantizer=bfp8_channels,
    gradient_quantizer=bfp8_channels,
    momentum_quantizer=bfp8_channels,
    accumulator_quantizer=bfp8_channels,
    seed=0,
)
lp_model = build_model()
results["8-bit SGD (LowPrecision)"] = train_and_test(lp_model, lp_sgd)

"""
Every weight of the trained model is on the 8-bit grid: quantizing it again
changes nothing.
"""

kernel = lp_model.get_layer("dense").kernel
requantized = Quantizer(formats.BlockFloatingPoint(8, axis=-1), "nearest")(kernel)
print("weights on the 8-bit grid:", bool(tf.reduce_all(requantized == kernel)))

"""
## SWALP in one call

SWALP quantizes the activations and their gradients as well (8-bit block
floating point layers inserted after every layer), trains with low-precision
SGD on a learning-rate schedule, and then **averages the weights** of the
last epochs in full precision: the average of many noisy low-precision
iterates is closer to the optimum than any of them.

`tf_lowprec.recipes.swalp` returns the rewritten model, the optimizer and the
callbacks; you compile and fit as usual. Averaging starts after `swa_start`
epochs.
"""

swa_start = max(EPOCHS - 1, 1)
setup = recipes.swalp(
    build_model(),
    steps_per_epoch=steps_per_epoch,
    swa_start=swa_start,
    learning_rate=0.05,
    swa_lr=0.01,
    seed=0,
)
print(type(setup.optimizer).__name__, [type(c).__name__ for c in setup.callbacks])
setup.model.compile(optimizer=setup.optimizer, loss=loss, metrics=["accuracy"])
setup.model.fit(train, epochs=swa_start + 1, callbacks=setup.callbacks, verbose=2)
results["SWALP (8-bit + averaging)"] = setup.model.evaluate(test, verbose=0)[1]

"""
## Results
"""

for name, accuracy in results.items():
    print(f"{name:28} test accuracy {accuracy:.2%}")

accuracy_bars(results)
plt.show()

"""
With a few epochs the three are close; the measured study
(`examples/swalp/`, 3 seeds) finds test error 9.61% (float), 9.95% (8-bit
SGD) and 9.78% (SWALP): averaging recovers about half of the gap.

## Where to go from here

* `tf_lowprec.layers.quantize_model` makes any model's layers quantized
  (weights, activations, errors) with the same `Quantizer` objects.
* `tf_lowprec.layers.quantize_weights` quantizes a trained model's weights
  after training (real int8 / packed int4 storage).
* The int8 deployment tutorial goes all the way to a full-integer TFLite
  model.
"""
