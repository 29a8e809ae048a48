"""Subprocess body: one worker of a MultiWorkerMirroredStrategy GRDA run.

    TF_CONFIG='{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": i}}' \
        python -m tests.optimizers.multiworker_grda OUT.npz

Every worker builds the same model from the same explicit initial weights,
trains it with GRDA on the same global batches (tf.data splits each global
batch across the workers), and saves its final weights and threshold to
OUT.npz. Without TF_CONFIG it runs on one device: the reference result.

The loop is the standard tf.distribute custom loop (`strategy.run` +
`optimizer.apply`): it needs no workaround. Keras 3.15's `Model.fit` cannot
start under MultiWorkerMirroredStrategy on its own (`_maybe_symbolic_build`
eagerly reduces the first batch, which the collective strategy rejects:
keras-team/keras#20585, tensorflow/tensorflow#72388); with
`tf_lowprec.distribute.enable_multi_worker_fit()` it does (tests/distribute/).
"""

GLOBAL_BATCH = 16

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def train(strategy):
    import keras
    import numpy as np
    import tensorflow as tf

    from tf_lowprec.optimizers import GRDA

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.integers(0, 3, size=64).astype("int32")
    with strategy.scope():
        model = keras.Sequential(
            [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)]
        )
        init = np.random.default_rng(1)
        model.set_weights([init.normal(0, 0.3, w.shape).astype("float32") for w in model.get_weights()])
        optimizer = GRDA(0.05, c=0.02, mu=0.6, clipnorm=0.5)
        optimizer.build(model.trainable_variables)

    def replica_step(xb, yb):
        with tf.GradientTape() as tape:
            per_example = keras.losses.sparse_categorical_crossentropy(
                yb, model(xb, training=True), from_logits=True)
            # Mean over the *global* batch: the all-reduce SUM then gives the
            # same gradient as one device.
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=GLOBAL_BATCH)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)

    @tf.function
    def step(batch):
        strategy.run(replica_step, args=batch)

    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    for _ in range(2):
        for batch in strategy.experimental_distribute_dataset(data):
            step(batch)
    return model, optimizer


def main(argv):
    import numpy as np
    import tensorflow as tf

    if "TF_CONFIG" in os.environ:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    model, optimizer = train(strategy)
    np.savez(argv[0], *model.get_weights(), threshold=float(optimizer.threshold.numpy()))


if __name__ == "__main__":
    main(sys.argv[1:])
