"""IDX reader: round trips and every way a file can be broken."""

import gzip

import numpy as np
import pytest

from tf_lowprec.data import read_idx

from .formats import fake_mnist, idx_bytes, write_file


@pytest.mark.parametrize("gz", [True, False])
def test_round_trip_uint8(tmp_path, gz):
    x, _ = fake_mnist(5, seed=0)
    path = write_file(tmp_path / "train-images-idx3-ubyte", idx_bytes(x), gz)
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (5, 28, 28)
    np.testing.assert_array_equal(out, x)
    out[0, 0, 0] = 1  # writable copy, not a view of the file bytes


def test_gzip_detected_by_content_not_name(tmp_path):
    x = np.arange(6, dtype=np.uint8)
    path = tmp_path / "labels.gz"  # claims gz, is plain
    path.write_bytes(idx_bytes(x))
    np.testing.assert_array_equal(read_idx(path), x)


def test_wide_big_endian_types_become_native(tmp_path):
    x = np.array([[1, -2, 70000], [3, 4, -5]], dtype=np.int32)
    path = write_file(tmp_path / "a.idx", idx_bytes(x, 0x0C), gz=False)
    out = read_idx(path)
    assert out.dtype == np.dtype("int32") and out.dtype.isnative
    np.testing.assert_array_equal(out, x)


def test_wrong_magic(tmp_path):
    raw = bytearray(idx_bytes(np.zeros((2, 3), np.uint8)))
    raw[0:4] = b"\x12\x34\x08\x02"
    path = write_file(tmp_path / "bad", bytes(raw), gz=True)
    with pytest.raises(ValueError, match=r"bad\.gz.*wrong magic number 0x12340802"):
        read_idx(path)


def test_unknown_type_byte(tmp_path):
    raw = bytearray(idx_bytes(np.zeros((2,), np.uint8)))
    raw[2] = 0x07
    path = write_file(tmp_path / "bad", bytes(raw), gz=False)
    with pytest.raises(ValueError, match="wrong magic number 0x00000701"):
        read_idx(path)


def test_truncated_data(tmp_path):
    raw = idx_bytes(fake_mnist(3, seed=1)[0])
    path = write_file(tmp_path / "short", raw[:-10], gz=True)
    with pytest.raises(ValueError, match=r"short\.gz: file truncated.*\(3, 28, 28\)"):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    raw = idx_bytes(np.zeros((4,), np.uint8)) + b"\x00"
    path = write_file(tmp_path / "long", raw, gz=False)
    with pytest.raises(ValueError, match="has trailing bytes"):
        read_idx(path)


def test_truncated_header_and_tiny_file(tmp_path):
    path = write_file(tmp_path / "hdr", idx_bytes(np.zeros((2, 2), np.uint8))[:9], gz=False)
    with pytest.raises(ValueError, match="truncated IDX header"):
        read_idx(path)
    path = write_file(tmp_path / "tiny", b"\x00\x00", gz=False)
    with pytest.raises(ValueError, match="only 2 bytes"):
        read_idx(path)


def test_corrupt_gzip(tmp_path):
    payload = gzip.compress(idx_bytes(fake_mnist(3, seed=2)[0]))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(payload[: len(payload) // 2])  # stream ends early
    with pytest.raises(ValueError, match=r"cut\.gz: corrupt gzip"):
        read_idx(cut)
    flipped = bytearray(payload)
    flipped[-6] ^= 0xFF  # damage the CRC/length trailer
    bad = tmp_path / "crc.gz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match=r"crc\.gz: corrupt gzip"):
        read_idx(bad)
