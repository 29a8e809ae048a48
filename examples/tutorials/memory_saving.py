"""
Title: Training in less memory: 8-bit Adam and bfloat16 weights
Author: tf_lowprec contributors
Date created: 2026/12/01
Last modified: 2026/12/01
Description: Cut the training memory per parameter from 16 to about 6 bytes with 8-bit optimizer states and bfloat16 weights updated by stochastic rounding, and measure it with tf_lowprec.memory.report.
Accelerator: None
"""

"""
## Introduction

Training with Adam in float32 keeps, per parameter, 4 bytes of weight, 4 of
gradient and 8 of optimizer state (the two moments): 16 bytes. Two tools cut
this down:

* **8-bit optimizer states** (`tf_lowprec.optimizers.Adam8bit`; Dettmers et
  al., ICLR 2022): Adam's moments stored as block-wise 8-bit codes with one
  float32 scale per 256 entries, about 2 bytes per parameter instead of 8.
  The update itself is computed in float32.
* **bfloat16 weights with stochastic rounding**
  (`tf_lowprec.optimizers.StochasticRounding`): 2-byte weights. Rounding each
  update to the nearest bfloat16 loses updates smaller than half a bfloat16
  step (`2^-9 |w|`); rounding stochastically keeps them *on average*, without
  a float32 master copy.

`tf_lowprec.memory.report(model, optimizer)` counts the bytes of each part.

Set `TF_LOWPREC_SMOKE=1` to run it on a few hundred images.
"""

"""
## Setup
"""

import os

import keras
import matplotlib.pyplot as plt

from tf_lowprec import data, memory, models
from tf_lowprec.optimizers import Adam8bit, StochasticRounding

SMOKE = os.environ.get("TF_LOWPREC_SMOKE") == "1"
TRAIN_IMAGES = 256 if SMOKE else 20_000
TEST_IMAGES = 500 if SMOKE else None  # None: all 10,000
EPOCHS = 1 if SMOKE else 3

train = data.load("fashion_mnist", "train", batch_size=128, limit=TRAIN_IMAGES)
test = data.load("fashion_mnist", "test", batch_size=1000, limit=TEST_IMAGES)


def build_model():
    keras.utils.set_random_seed(0)
    return models.cnn(filters=(16, 32), dense_units=64)  # 56,714 parameters


"""
## Counting bytes

`memory.report` builds the optimizer's state if needed and counts every
tensor: weights, optimizer state and gradients (same size and dtype as the
weights). The last columns are what the same training would take in float32.
"""

print(memory.report(build_model(), keras.optimizers.Adam(1e-3)))

"""
`Adam8bit` keeps float32 moments for small tensors (fewer than
`min_8bit_size` entries: biases, norms), as bitsandbytes does; this model is
small, so we lower that limit to 256 entries.
"""

print(memory.report(build_model(), Adam8bit(1e-3, min_8bit_size=256)))

"""
## bfloat16 weights

The Keras `"bfloat16"` dtype policy creates bfloat16 variables (unlike
`"mixed_bfloat16"`, which computes in bfloat16 but keeps float32 weights).
Keras's own `Adam` cannot train them (it computes `beta_2 ** t` in bfloat16,
where 0.999 is 1.0, so every update is 0); `Adam8bit` computes its rule in
float32 and works. Wrap it in `StochasticRounding` so that each weight write
is rounded stochastically onto the bfloat16 grid.
"""

keras.mixed_precision.set_global_policy("bfloat16")
bf16_model = build_model()
keras.mixed_precision.set_global_policy("float32")  # back to the default for what follows
print(bf16_model.get_layer("dense").kernel.dtype)
bf16_optimizer = StochasticRounding(Adam8bit(1e-3, min_8bit_size=256), seed=0)
print(memory.report(bf16_model, bf16_optimizer))

"""
## Does it still train?

Two runs from the same initial weights on the same data, the two ends:
float32 Adam (16 bytes per parameter) and bfloat16 weights with
`StochasticRounding(Adam8bit)` (6 bytes).
"""

loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
runs = {
    "float32 Adam": (build_model(), keras.optimizers.Adam(1e-3)),
    "bfloat16 + SR(Adam8bit)": (bf16_model, bf16_optimizer),
}
histories, bytes_per_parameter = {}, {}
for name, (model, optimizer) in runs.items():
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    histories[name] = model.fit(train, validation_data=test, epochs=EPOCHS, verbose=2)
    bytes_per_parameter[name] = memory.report(model).as_dict()["total"]["bytes_per_parameter"]

for name, history in histories.items():
    print(f"{name:24} test accuracy {history.history['val_accuracy'][-1]:.2%}  "
          f"{bytes_per_parameter[name]:.1f} bytes/parameter")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
for name, history in histories.items():
    left.plot(range(1, EPOCHS + 1), history.history["val_accuracy"], marker="o", label=name)
left.set(xlabel="epoch", ylabel="test accuracy")
left.legend()
right.barh(list(bytes_per_parameter), list(bytes_per_parameter.values()))
right.set(xlabel="training bytes per parameter")
plt.tight_layout()
plt.show()

"""
The measured study (`examples/low_precision_memory/`, several seeds, a CNN
and a small transformer) compares these configurations over longer runs,
including `Adam8bit` alone and bfloat16 weights with nearest rounding (which
loses every update below half a bfloat16 step).

## Where to go from here

* `AdamW8bit` and `SGD8bit` (momentum in 8 bits) work the same way.
* `StochasticRounding` wraps any Keras optimizer that writes its weights
  through `assign` (SGD works too).
"""
