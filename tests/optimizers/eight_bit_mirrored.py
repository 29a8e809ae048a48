"""Subprocess body: the 8-bit optimizers and StochasticRounding on 2 logical
CPUs vs one device, with the shared harness's model (`mirrored_equivalence`).

    python -m tests.optimizers.eight_bit_mirrored

Small blocks and `min_8bit_size=1` make every state of the harness's tiny
MLP 8-bit; `sr_adam8bit_bf16` trains it with bfloat16 variables. Prints one
JSON line in the harness's format.
"""

import json
import sys

from tests.optimizers import mirrored_equivalence as harness
from tf_lowprec.experiments.devices import use_logical_cpus

EIGHT_BIT = {"min_8bit_size": 1, "block_size": 16}
# SGD8bit and AdamW8bit share the machinery (blockwise_states): Adam's two
# tables and AdamW's decay are covered by one config.
FLOAT32 = {"adamw8bit": ("adamw8bit", {"weight_decay": 0.01, **EIGHT_BIT})}


def _sr_adam8bit(learning_rate):
    from tf_lowprec.optimizers import Adam8bit, StochasticRounding

    return StochasticRounding(Adam8bit(learning_rate * 0.1, **EIGHT_BIT), seed=11)


def main(replicas):
    devices = use_logical_cpus(replicas)  # before TensorFlow initialises
    import keras
    import numpy as np
    import tensorflow as tf

    from tf_lowprec.optimizers import registry

    harness.CONFIGS.update(FLOAT32)
    registry.register("sr_adam8bit_bf16", _sr_adam8bit)
    mirrored = tf.distribute.MirroredStrategy(devices)
    results = {}
    for name in [*FLOAT32, "sr_adam8bit_bf16"]:
        policy = "bfloat16" if name.endswith("bf16") else "float32"
        keras.mixed_precision.set_global_policy(policy)
        single = harness._train(tf.distribute.get_strategy(), name, False)
        multi = harness._train(mirrored, name, False)
        weights = [np.asarray(w, np.float32) for w in single.get_weights()]
        diff = max(
            float(np.max(np.abs(a - np.asarray(b, np.float32))))
            for a, b in zip(weights, multi.get_weights())
        )
        identical = all(
            all(
                np.array_equal(v.value.values[0].numpy(), c.numpy())
                for c in v.value.values
            )
            for v in multi.trainable_variables
        )
        results[name] = {
            "max_abs_diff": diff,
            "max_abs_weight": max(float(np.max(np.abs(w))) for w in weights),
            "replicas_identical": identical,
            "variable_dtype": str(single.trainable_variables[0].dtype),
            "state_dtypes": sorted({str(v.dtype) for v in multi.optimizer.variables}),
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
