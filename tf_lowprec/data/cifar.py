"""Reader for the CIFAR-10/100 "python version" archives (the upstream pickles).

Upstream layout (https://www.cs.toronto.edu/~kriz/cifar.html):

  cifar-10-python.tar.gz
    cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch
  cifar-100-python.tar.gz
    cifar-100-python/train, test

Each member is a Python 2 pickle of a dict with (byte-string) keys ``data``, a
``(N, 3072)`` uint8 array holding the red, green then blue 32x32 planes of each image,
and ``labels`` (CIFAR-10) or ``fine_labels`` / ``coarse_labels`` (CIFAR-100), lists of
ints. We read the members straight out of the archive (nothing is extracted to disk)
or from an already-extracted folder, and return NHWC uint8 images.

Pickle can run code, so the unpickler only resolves the globals a numpy array
needs; anything else in a file is refused with ``ValueError``.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib

import numpy as np

# (folder inside the archive, members of the train split, member of the test split,
#  label key). CIFAR-100 uses the 100 fine labels.
LAYOUTS = {
    "cifar10": (
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "labels",
    ),
    "cifar100": ("cifar-100-python", ("train",), ("test",), "fine_labels"),
}

_NUMPY_GLOBALS = frozenset({
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),  # pickles written by numpy < 2
    ("numpy._core.multiarray", "_reconstruct"),  # ... and by numpy >= 2
})


def _latin1_bytes(text, encoding="latin1"):
    """`_codecs.encode` as Python 3 pickles bytes with protocol 0-2; latin-1 only."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode(..., {encoding!r})")
    return text.encode("latin1")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array reconstruction globals.

    Besides, `_codecs.encode` (how Python 3 writes `bytes` with pickle
    protocols 0-2) resolves to a latin-1-only replacement.
    """

    def find_class(self, module, name):
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def member_names(name: str, split: str) -> tuple[str, ...]:
    """Paths, relative to the archive root, of the members holding `split`."""
    folder, train, test, _ = LAYOUTS[name]
    return tuple(f"{folder}/{m}" for m in (train if split == "train" else test))


def parse_batch(raw: bytes, name: str, num_classes: int, source: str):
    """Decodes one pickled batch into ``(x uint8 (N, 32, 32, 3), y int32 (N,))``."""
    label_key = LAYOUTS[name][3]
    try:
        batch = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # unpickling can fail in many ways on a corrupt file
        raise ValueError(
            f"{source}: not a readable CIFAR batch ({type(e).__name__}: {e})."
        ) from e
    if not isinstance(batch, dict):
        raise ValueError(f"{source}: expected a pickled dict, got {type(batch).__name__}.")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    for key in ("data", label_key):
        if key not in batch:
            raise ValueError(
                f"{source}: missing key {key!r}; found keys {sorted(batch)}."
            )
    data, labels = batch["data"], np.asarray(batch[label_key])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"{source}: 'data' must be a uint8 array of shape (N, 3072); got "
            f"{getattr(data, 'dtype', type(data).__name__)} {np.shape(data)}."
        )
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{source}: {label_key!r} must be {data.shape[0]} integers (one per "
            f"image); got shape {labels.shape}, dtype {labels.dtype}."
        )
    check_labels(labels, num_classes, source)
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # planes -> NHWC
    return np.ascontiguousarray(x), labels.astype(np.int32)


def check_labels(labels: np.ndarray, num_classes: int, source: str) -> None:
    """Raises ValueError if any label is outside ``[0, num_classes)``."""
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise ValueError(
            f"{source}: labels out of range: expected 0..{num_classes - 1}, found "
            f"{bad.size} outside it (e.g. {int(bad[0])})."
        )


def _concat(parts):
    xs, ys = zip(*parts)
    return np.concatenate(xs), np.concatenate(ys)


def read_folder(folder, name: str, split: str, num_classes: int):
    """Reads `split` from an extracted folder (`cifar-10-batches-py/` or similar)."""
    parts = []
    for member in member_names(name, split):
        path = os.path.join(os.fspath(folder), member.split("/", 1)[1])
        with open(path, "rb") as f:
            parts.append(parse_batch(f.read(), name, num_classes, path))
    return _concat(parts)


def read_archive(archive, name: str, split: str, num_classes: int):
    """Reads `split` out of the upstream ``.tar.gz`` without extracting it."""
    archive = os.fspath(archive)
    wanted = member_names(name, split)
    found = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for info in tar:
                if info.name in wanted and info.isfile():
                    found[info.name] = tar.extractfile(info).read()
                    if len(found) == len(wanted):
                        break
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise ValueError(
            f"{archive}: corrupt or unreadable archive ({type(e).__name__}: {e})."
        ) from e
    missing = [m for m in wanted if m not in found]
    if missing:
        raise ValueError(
            f"{archive}: archive lacks {', '.join(missing)}; expected the upstream "
            f"layout {LAYOUTS[name][0]}/..."
        )
    return _concat(
        parse_batch(found[m], name, num_classes, f"{archive}:{m}") for m in wanted
    )
