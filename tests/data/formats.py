"""Writers for tiny dataset files in the real upstream formats (test fixtures).

Written independently of the readers under test: IDX headers are packed by hand,
CIFAR batches are pickled dicts with byte-string keys (what the upstream Python 2
pickles decode to with ``encoding="bytes"``), stored in a tar.gz with the upstream
folder names.
"""

import gzip
import io
import os
import pickle
import struct
import tarfile

import numpy as np

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """IDX encoding of `array` (uint8 by default; big-endian data for wider types)."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
             0x0E: ">f8"}[type_code]
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.asarray(array, dtype=dtype).tobytes()


def write_file(path, payload: bytes, gz: bool) -> str:
    path = os.fspath(path) + (".gz" if gz else "")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(gzip.compress(payload) if gz else payload)
    return path


def fake_mnist(n: int, seed: int, num_classes: int = 10):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    y = rng.integers(0, num_classes, size=(n,), dtype=np.uint8)
    return x, y


def write_idx_split(directory, split: str, x, y, gz: bool = True):
    """Writes `x` (N, 28, 28) and `y` (N,) as the IDX image/label files of `split`."""
    images, labels = IDX_FILES[split]
    return (write_file(os.path.join(directory, images), idx_bytes(x), gz),
            write_file(os.path.join(directory, labels), idx_bytes(y), gz))


def write_idx_dataset(directory, n_train=6, n_test=4, seed=0, gz=True):
    """A complete tiny MNIST-format dataset; returns {split: (x, y)}."""
    out = {}
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
        x, y = fake_mnist(n, s)
        write_idx_split(directory, split, x, y, gz)
        out[split] = (x, y)
    return out


CIFAR_LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)],
                ["test_batch"], "cifar-10-python.tar.gz"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "cifar-100-python.tar.gz"),
}


def cifar_batch(name: str, n: int, seed: int) -> dict:
    """One batch dict as the upstream pickles hold it (byte-string keys)."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    if name == "cifar10":
        labels = {b"labels": [int(v) for v in rng.integers(0, 10, n)]}
    else:  # fine labels 0..99; coarse 0..19 must be ignored
        labels = {b"fine_labels": [int(v) for v in rng.integers(0, 100, n)],
                  b"coarse_labels": [int(v) for v in rng.integers(0, 20, n)]}
    return {b"batch_label": b"testing batch", b"data": data,
            b"filenames": [b"img_%d.png" % i for i in range(n)], **labels}


def cifar_members(name: str, n: int = 3, seed: int = 0) -> dict:
    """{archive member path: pickled bytes} for the whole dataset, `n` per batch."""
    folder, train, test, _ = CIFAR_LAYOUT[name]
    # Protocol 4 stores bytes natively (protocol 2 in Python 3 would route them
    # through `_codecs.encode`, which upstream's Python 2 pickles never contain).
    return {f"{folder}/{m}": pickle.dumps(cifar_batch(name, n, seed + i), protocol=4)
            for i, m in enumerate(train + test)}


def write_cifar_archive(path, members: dict) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for member, payload in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def write_cifar_folder(directory, members: dict) -> str:
    """Extracts `members` under `directory`; returns the batches folder path."""
    for member, payload in members.items():
        path = os.path.join(os.fspath(directory), member)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(payload)
    return os.path.join(os.fspath(directory), next(iter(members)).split("/")[0])


def expected_cifar(name: str, members: dict, split: str):
    """Oracle: NHWC images and labels of `split`, decoded straight from the dicts."""
    folder, train, test, _ = CIFAR_LAYOUT[name]
    key = b"labels" if name == "cifar10" else b"fine_labels"
    xs, ys = [], []
    for m in (train if split == "train" else test):
        batch = pickle.loads(members[f"{folder}/{m}"])
        n = len(batch[key])
        img = np.zeros((n, 32, 32, 3), np.uint8)
        for c in range(3):  # plane c holds channel c, row-major 32x32
            img[..., c] = batch[b"data"][:, c * 1024:(c + 1) * 1024].reshape(n, 32, 32)
        xs.append(img)
        ys.append(np.array(batch[key]))
    return np.concatenate(xs), np.concatenate(ys)


# --- Python 2 pickles, opcode by opcode -------------------------------------------
# The upstream CIFAR files were written by Python 2 (protocol 2): keys are Python 2
# `str` (BINSTRING opcodes, bytes under encoding="bytes") and arrays reference
# `numpy.core.multiarray`. Python 3 cannot produce such a stream, so we emit it.

def _py2_str(b: bytes) -> bytes:
    if len(b) < 256:
        return b"U" + bytes([len(b)]) + b  # SHORT_BINSTRING
    return b"T" + struct.pack("<i", len(b)) + b  # BINSTRING


def _py2_int(v: int) -> bytes:
    return b"K" + bytes([v]) if 0 <= v < 256 else b"J" + struct.pack("<i", v)


def _py2_uint8_array(a: np.ndarray) -> bytes:
    # _reconstruct(ndarray, (0,), 'b'), then BUILD with
    # (1, shape, dtype('u1', 0, 1) + its state, fortran=False, raw bytes)
    out = (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n"
           + _py2_int(0) + b"\x85" + _py2_str(b"b") + b"\x87R")
    out += b"(" + _py2_int(1) + b"(" + b"".join(_py2_int(d) for d in a.shape) + b"t"
    out += b"cnumpy\ndtype\n" + _py2_str(b"u1") + _py2_int(0) + _py2_int(1) + b"\x87R"
    out += (b"(" + _py2_int(3) + _py2_str(b"|") + b"NNN" + _py2_int(-1) + _py2_int(-1)
            + _py2_int(0) + b"tb")
    return out + b"\x89" + _py2_str(np.ascontiguousarray(a).tobytes()) + b"tb"


def py2_pickle(batch: dict) -> bytes:
    """Protocol-2 pickle of a CIFAR batch dict as Python 2 + numpy 1 wrote it."""
    out = b"\x80\x02}("
    for key, value in batch.items():
        out += _py2_str(key)
        if isinstance(value, np.ndarray):
            out += _py2_uint8_array(value)
        elif isinstance(value, list) and all(isinstance(v, int) for v in value):
            out += b"](" + b"".join(_py2_int(v) for v in value) + b"e"
        elif isinstance(value, list):
            out += b"](" + b"".join(_py2_str(v) for v in value) + b"e"
        else:
            out += _py2_str(value)
    return out + b"u."
