"""Datasets as tf.data pipelines: MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100.

Local files first (``data_dir``, ``$TF_LOWPREC_DATA``, system dirs, Keras cache; see
`tf_lowprec.data.locate`), then the ``keras.datasets`` download. Normalization
constants are documented in `tf_lowprec.data.catalog`.

    >>> from tf_lowprec import data
    >>> train = data.load("fashion_mnist", "train", batch_size=128)
    >>> data.info("cifar10").num_classes
    10
"""

from tf_lowprec.data.catalog import NAMES, SPLITS, DatasetInfo, info
from tf_lowprec.data.idx import read_idx
from tf_lowprec.data.loader import load, load_numpy
from tf_lowprec.data.locate import ENV_VAR, DatasetNotFoundError

__all__ = [
    "DatasetInfo", "DatasetNotFoundError", "ENV_VAR", "NAMES", "SPLITS",
    "info", "load", "load_numpy", "read_idx",
]
