"""`load_numpy` (decoded uint8 arrays) and `load` (a normalized, batched tf.data pipeline).

Named `loader` rather than `load` so the module is not shadowed by the `load`
function that `tf_lowprec.data` re-exports.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tf_lowprec import validation
from tf_lowprec.data import catalog, cifar, idx, locate


def _validate(x, y, meta: catalog.DatasetInfo, source: str):
    """Checks decoded arrays against the catalog; returns ``(x NHWC uint8, y int32)``."""
    if x.ndim == 3 and meta.input_shape[-1] == 1:
        x = x[..., None]  # MNIST-style (N, H, W) -> (N, H, W, 1)
    if x.dtype != np.uint8 or x.shape[1:] != meta.input_shape:
        raise ValueError(
            f"{source}: expected uint8 images of shape (N, "
            f"{', '.join(map(str, meta.input_shape))}); got {x.dtype} {x.shape}."
        )
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # keras' CIFAR labels are (N, 1)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{source}: expected 1-D integer labels; got {y.dtype} {y.shape}.")
    if len(x) != len(y):
        raise ValueError(
            f"{source}: {len(x)} images but {len(y)} labels; the two must match."
        )
    cifar.check_labels(y, meta.num_classes, source)
    return np.ascontiguousarray(x), y.astype(np.int32)


def _read(src: locate.Source, name: str, split: str, meta: catalog.DatasetInfo):
    if src.kind == "idx":
        images, labels = src.paths
        x, y = idx.read_idx(images), idx.read_idx(labels)
        if x.ndim != 3:
            raise ValueError(f"{images}: expected a 3-D (N, H, W) image file; got "
                             f"shape {x.shape}.")
        if y.ndim != 1:
            raise ValueError(f"{labels}: expected a 1-D label file; got shape {y.shape}.")
        return _validate(x, y, meta, f"{images} + {labels}")
    if src.kind == "npz":
        (path,) = src.paths
        prefix = "x_train" if split == "train" else "x_test"
        try:
            with np.load(path, allow_pickle=False) as f:
                x, y = f[prefix], f[prefix.replace("x_", "y_")]
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"{path}: not a readable mnist.npz ({e}).") from e
        return _validate(x, y, meta, path)
    if src.kind == "cifar_folder":
        return cifar.read_folder(src.paths[0], name, split, meta.num_classes)
    return cifar.read_archive(src.paths[0], name, split, meta.num_classes)


def _keras_load_data(name: str):
    """``keras.datasets.<name>.load_data()``; module-level so tests can replace it."""
    import keras  # imported lazily: only the download fallback needs it

    return getattr(keras.datasets, name).load_data()


def _download(name: str, split: str, meta: catalog.DatasetInfo, report):
    try:
        train, test = _keras_load_data(name)
    except Exception as e:  # keras raises plain Exception("URL fetch failure ...")
        reason = (f"nothing found locally and the download with "
                  f"keras.datasets.{name}.load_data() failed "
                  f"({type(e).__name__}: {e}).")
        raise locate.DatasetNotFoundError(
            locate.not_found_message(name, split, report, reason)
        ) from e
    x, y = train if split == "train" else test
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[1] == 3 and x.shape[-1] != 3:
        x = x.transpose(0, 2, 3, 1)  # keras honours image_data_format="channels_first"
    return _validate(x, y, meta, f"keras.datasets.{name}")


def load_numpy(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Loads one split as numpy arrays, local files first.

    See `tf_lowprec.data.locate` for the search order and accepted file layouts.

    Args:
        name: `"mnist"`, `"fashion_mnist"` (or `"fashion-mnist"`), `"cifar10"`,
            `"cifar100"` (fine labels).
        split: `"train"` or `"test"`. Defaults to `"train"`.
        data_dir: directory holding the files directly or in a `<name>/`
            subfolder; when given, the only place searched (a missing, empty or
            non-directory `data_dir` raises `DatasetNotFoundError`). Defaults
            to `None` (the search order of `tf_lowprec.data.locate`).
        download: when nothing is found locally (and no `data_dir` is given), fall back to
            `keras.datasets.<name>.load_data()` (needs internet). Defaults to `True`.

    Returns:
        `(x, y)`: `x` uint8 of shape `(N, H, W, C)`, `y` int32 of shape `(N,)`.

    Raises:
        ValueError: unknown name or split; a file that is corrupt, truncated, has a
            wrong magic number, mismatched counts or out-of-range labels.
        DatasetNotFoundError: (a `FileNotFoundError`) nothing found and download
            disabled or failed, or nothing usable in the given `data_dir`; the
            message lists every place looked.
    """
    meta = catalog.info(name)
    name = meta.name
    catalog.check_split(split)
    src, report = locate.locate(name, split, data_dir)
    if src is not None:
        return _read(src, name, split, meta)
    if data_dir is not None:
        raise locate.DatasetNotFoundError(locate.not_found_message(
            name, split, report, f"nothing usable in data_dir {os.fspath(data_dir)!r} (no "
            "other location is searched, and nothing is downloaded, when data_dir is given)."))
    if not download:
        raise locate.DatasetNotFoundError(locate.not_found_message(
            name, split, report, "nothing found locally and download=False."))
    return _download(name, split, meta, report)


def normalizer(name: str):
    """The batch map `(x uint8, y) -> ((x / 255 - mean) / std as float32, y)`."""
    meta = catalog.info(name)
    mean = tf.constant(meta.mean, tf.float32)
    std = tf.constant(meta.std, tf.float32)

    def normalize(x, y):
        return (tf.cast(x, tf.float32) / 255.0 - mean) / std, y

    return normalize


def load(
    name: str,
    split: str = "train",
    batch_size: int = 128,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    shuffle: bool | None = None,
    seed: int = 0,
    limit: int | None = None,
    download: bool = True,
    drop_remainder: bool = False,
    prefetch: bool = True,
) -> tf.data.Dataset:
    """Loads a dataset as a normalized, shuffled, batched `tf.data.Dataset`.

    Files are decoded once to numpy (`load_numpy`, local files first), then fed with
    `from_tensor_slices`; normalization (`catalog` constants) runs vectorized on
    each batch.

    Args:
        name: `"mnist"`, `"fashion_mnist"` (or `"fashion-mnist"`), `"cifar10"`,
            `"cifar100"`.
        split: `"train"` or `"test"`. Defaults to `"train"`.
        batch_size: examples per batch. Defaults to `128`.
        data_dir: directory searched first (see `load_numpy`). Defaults to `None`.
        shuffle: shuffle the examples (fully, re-shuffled every epoch). Defaults to
            `None`, meaning `True` for `"train"` and `False` for `"test"`.
        seed: shuffle seed. Same `seed` (and same global TF seed, which
            `keras.utils.set_random_seed` sets) gives the same order. Defaults to `0`.
        limit: keep only the first `limit` examples of the split (before shuffling);
            for tests and quick runs. Defaults to `None` (all).
        download: allow the `keras.datasets` download fallback. Defaults to `True`.
        drop_remainder: drop the last, smaller batch. Defaults to `False`.
        prefetch: prefetch batches (`tf.data.AUTOTUNE`). Defaults to `True`.

    Returns:
        A dataset of `(images, labels)`: float32 `(batch, H, W, C)` and int32
        `(batch,)`; models take it with `from_logits=True` sparse losses.

    Example:
        >>> ds = load("fashion_mnist", "train", batch_size=128)
        >>> model.fit(ds, epochs=1)
    """
    meta = catalog.info(name)
    catalog.check_split(split)
    validation.positive_int(batch_size, "batch_size")
    validation.optional(validation.positive_int, limit, "limit")
    validation.integer(seed, "seed")
    x, y = load_numpy(meta.name, split, data_dir=data_dir, download=download)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    if shuffle is None:
        shuffle = split == "train"

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=int(seed), reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(normalizer(meta.name), num_parallel_calls=tf.data.AUTOTUNE)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds
