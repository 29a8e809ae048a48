"""Reader for the IDX format of MNIST and Fashion-MNIST (gzip-compressed or not).

IDX layout (http://yann.lecun.com/exdb/mnist/, section "FILE FORMATS"): a big-endian
header of two zero bytes, one type byte (0x08 = uint8, 0x09 = int8, 0x0B = int16,
0x0C = int32, 0x0D = float32, 0x0E = float64) and one byte giving the number of
dimensions ``n``; then ``n`` big-endian uint32 sizes; then the data, C order. The
files ``train-images-idx3-ubyte`` (magic 0x00000803) hold an ``(N, 28, 28)`` uint8
array and ``train-labels-idx1-ubyte`` (magic 0x00000801) an ``(N,)`` uint8 array.

Every inconsistency raises ``ValueError`` naming the file: a bad magic number, a size
that does not match the header (truncated or padded file), a corrupt gzip stream.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib

import numpy as np

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_bytes(path) -> bytes:
    """Reads `path`, transparently decompressing gzip (detected by content)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise ValueError(f"{path}: corrupt gzip data ({type(e).__name__}: {e}).") from e


def parse_idx(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decodes an uncompressed IDX byte string into a native-endian numpy array."""
    if len(raw) < 4:
        raise ValueError(f"{source}: not an IDX file: only {len(raw)} bytes long.")
    zeros, type_code, ndim = raw[:2], raw[2], raw[3]
    if zeros != b"\x00\x00" or type_code not in _IDX_TYPES or ndim == 0:
        magic = int.from_bytes(raw[:4], "big")
        raise ValueError(
            f"{source}: wrong magic number 0x{magic:08X}; an IDX file starts with "
            "0x00000801 (labels) or 0x00000803 (images), i.e. 0x0000 + type byte "
            "(0x08 uint8 ... 0x0E float64) + number of dimensions."
        )
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(
            f"{source}: truncated IDX header: needs {header_size} bytes for "
            f"{ndim} dimensions, file has {len(raw)}."
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header_size])
    dtype = _IDX_TYPES[type_code]
    expected = header_size + math.prod(dims) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "has trailing bytes"
        raise ValueError(
            f"{source}: file {problem}: header says shape {dims} of {dtype.name} "
            f"= {expected} bytes in all, but the data is {len(raw)} bytes."
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # native order, and a writable copy


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Reads an IDX file (``.gz`` or uncompressed) into a numpy array.

    Args:
        path: path to the file. Compression is detected from the content, not the
            file name.

    Returns:
        A native-endian, writable numpy array with the shape and dtype in the header.

    Raises:
        ValueError: wrong magic number, size mismatch with the header, corrupt gzip.
    """
    return parse_idx(read_bytes(path), source=os.fspath(path))
