"""Training data for the pruning comparison, identical in Keras 3 and tf_keras processes.

`tf_lowprec.data.load` reshuffles every time an iterator is created, and
Keras 3's and tf_keras' `fit` create different numbers of iterators, so the
same seed would not give the two frameworks the same batches. Here the
examples are permuted once with numpy (`seed`) and the pipeline has no
randomness left: every epoch, in every process, sees the same batches in
the same order. Only tf.data and numpy are used (no Keras), so the TFMOT
process can import it safely.
"""

import numpy as np
import tensorflow as tf

from tf_lowprec import data
from tf_lowprec.data.loader import normalizer


def fixed_order_train(name, batch_size, seed=0, limit=None):
    """Normalized training batches in one fixed shuffled order (same every epoch).

    Returns:
        `(dataset, num_examples)`.
    """
    x, y = data.load_numpy(name, "train")
    if limit is not None:
        x, y = x[:limit], y[:limit]
    order = np.random.default_rng(seed).permutation(len(x))
    ds = tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(batch_size)
    ds = ds.map(normalizer(name), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE), len(x)
