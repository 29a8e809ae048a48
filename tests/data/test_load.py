"""load_numpy / load: values, normalization, shuffling, validation of contents."""

import gzip
import os

import numpy as np
import pytest

from tf_lowprec import data
from tf_lowprec.data import loader as load_module
from tf_lowprec.data import locate

from .conftest import REAL_SYSTEM_DIRS
from .formats import (
    cifar_batch,
    cifar_members,
    expected_cifar,
    fake_mnist,
    py2_pickle,
    write_cifar_archive,
    write_idx_dataset,
    write_idx_split,
)


def _collect(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def _oracle(x_uint8, name):
    meta = data.info(name)
    return ((x_uint8.astype(np.float32) / 255.0 - np.float32(meta.mean))
            / np.float32(meta.std))


@pytest.mark.parametrize("gz", [True, False])
def test_load_numpy_idx_values(tmp_path, gz):
    ref = write_idx_dataset(tmp_path, n_train=6, n_test=4, gz=gz)
    for split in ("train", "test"):
        x, y = data.load_numpy("mnist", split, data_dir=tmp_path)
        assert x.shape == (len(ref[split][0]), 28, 28, 1) and x.dtype == np.uint8
        assert y.dtype == np.int32
        np.testing.assert_array_equal(x[..., 0], ref[split][0])
        np.testing.assert_array_equal(y, ref[split][1])


def test_load_batches_normalization_and_order(tmp_path):
    ref = write_idx_dataset(tmp_path, n_train=7, n_test=5)
    ds = data.load("fashion_mnist", "test", batch_size=2, data_dir=tmp_path)
    batches = list(ds)
    assert [int(b[1].shape[0]) for b in batches] == [2, 2, 1]
    assert batches[0][0].dtype.name == "float32" and batches[0][1].dtype.name == "int32"
    x, y = _collect(ds)
    assert x.shape == (5, 28, 28, 1)
    # test split is not shuffled by default: file order, exact numpy oracle.
    np.testing.assert_allclose(x, _oracle(ref["test"][0][..., None], "fashion_mnist"),
                               rtol=0, atol=1e-6)
    np.testing.assert_array_equal(y, ref["test"][1])


def test_limit_and_drop_remainder(tmp_path):
    ref = write_idx_dataset(tmp_path, n_train=9)
    ds = data.load("mnist", batch_size=2, data_dir=tmp_path, limit=5, shuffle=False,
                   drop_remainder=True, prefetch=False)
    x, y = _collect(ds)
    np.testing.assert_array_equal(y, ref["train"][1][:4])
    assert ds.element_spec[0].shape.as_list() == [2, 28, 28, 1]


def test_seeded_shuffle_is_reproducible_permutation(tmp_path):
    ref = write_idx_dataset(tmp_path, n_train=40)
    order = lambda ds: _collect(ds)[1]  # noqa: E731
    x_flat = ref["train"][0].reshape(40, -1)

    def pixels(ds):  # identify examples by their (random, distinct) images
        x, _ = _collect(ds)
        x = np.round(x * data.info("mnist").std[0] * 255 + data.info("mnist").mean[0] * 255)
        return [int(np.flatnonzero((x_flat == row).all(1))[0]) for row in
                x.reshape(len(x), -1).astype(np.uint8)]

    a = data.load("mnist", batch_size=8, data_dir=tmp_path, seed=3)
    b = data.load("mnist", batch_size=8, data_dir=tmp_path, seed=3)
    c = data.load("mnist", batch_size=8, data_dir=tmp_path, seed=4)
    first = pixels(a)
    assert sorted(first) == list(range(40)) and first != list(range(40))
    assert pixels(b) == first
    assert pixels(c) != first
    assert pixels(a) != first  # a new epoch reshuffles
    np.testing.assert_array_equal(order(data.load("mnist", batch_size=8,
                                                  data_dir=tmp_path, seed=3)),
                                  ref["train"][1][first])


def test_cifar_archive_values_and_normalization(tmp_path):
    members = cifar_members("cifar10", n=3)
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", members)
    x, y = data.load_numpy("cifar10", "train", data_dir=tmp_path)
    ex, ey = expected_cifar("cifar10", members, "train")
    assert x.shape == (15, 32, 32, 3)  # five batches of 3
    np.testing.assert_array_equal(x, ex)
    np.testing.assert_array_equal(y, ey)
    xb, yb = _collect(data.load("cifar10", "test", data_dir=tmp_path, batch_size=4))
    ex, ey = expected_cifar("cifar10", members, "test")
    np.testing.assert_allclose(xb, _oracle(ex, "cifar10"), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(yb, ey)


def test_cifar_python2_pickles(tmp_path):
    """Byte-for-byte the kind of stream the upstream archive holds (Python 2, numpy 1)."""
    members = {m: py2_pickle(cifar_batch("cifar10", 3, seed=i))
               for i, m in enumerate(cifar_members("cifar10", n=3))}
    assert b"numpy.core.multiarray" in members["cifar-10-batches-py/test_batch"]
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", members)
    x, y = data.load_numpy("cifar10", "test", data_dir=tmp_path)
    batch = cifar_batch("cifar10", 3, seed=5)  # test_batch is the sixth member
    np.testing.assert_array_equal(x[1, 4, 7], batch[b"data"][1, [4 * 32 + 7 + c * 1024
                                                                  for c in range(3)]])
    np.testing.assert_array_equal(y, batch[b"labels"])


def test_cifar100_uses_fine_labels(tmp_path):
    members = cifar_members("cifar100", n=4)
    write_cifar_archive(tmp_path / "cifar100" / "cifar-100-python.tar.gz", members)
    x, y = data.load_numpy("cifar100", "test", data_dir=tmp_path)
    ex, ey = expected_cifar("cifar100", members, "test")
    np.testing.assert_array_equal(x, ex)
    np.testing.assert_array_equal(y, ey)


def test_image_label_count_mismatch(tmp_path):
    x, y = fake_mnist(5, seed=0)
    write_idx_split(tmp_path, "train", x, y[:4])
    with pytest.raises(ValueError, match=r"5 images but 4 labels"):
        data.load_numpy("mnist", data_dir=tmp_path)


def test_labels_out_of_range(tmp_path):
    x, y = fake_mnist(5, seed=0)
    y[2] = 10
    write_idx_split(tmp_path, "train", x, y)
    with pytest.raises(ValueError, match=r"train-images.*labels out of range.*0\.\.9"):
        data.load_numpy("mnist", data_dir=tmp_path)


def test_wrong_image_size(tmp_path):
    x = np.zeros((3, 20, 28), np.uint8)
    write_idx_split(tmp_path, "test", x, np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match=r"expected uint8 images of shape \(N, 28, 28, 1\)"):
        data.load_numpy("mnist", "test", data_dir=tmp_path)


def test_truncated_file_surfaces_through_load(tmp_path):
    write_idx_dataset(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-1]))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz: file truncated"):
        data.load("mnist", data_dir=tmp_path)


def test_mnist_npz(tmp_path):
    x, y = fake_mnist(4, seed=5)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    xt, yt = data.load_numpy("mnist", "test", data_dir=tmp_path)
    np.testing.assert_array_equal(xt[..., 0], x[:2])
    np.testing.assert_array_equal(yt, y[:2])


@pytest.mark.parametrize("kwargs, match", [
    ({"split": "validation"}, r"split='validation'.*train, test"),
    ({"batch_size": 0}, r"batch_size=0"),
    ({"batch_size": 2.5}, r"batch_size=2\.5"),
    ({"limit": -1}, r"limit=-1"),
    ({"seed": "a"}, r"seed='a'"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load("mnist", data_dir=tmp_path, **kwargs)


def test_keras_fallback_shapes(monkeypatch):
    """The download path is normalized like local files (mocked: no network)."""
    x, y = fake_mnist(3, seed=0)
    monkeypatch.setattr(load_module, "_keras_load_data",
                        lambda name: ((x, y), (x[:1], y[:1])))
    xt, yt = data.load_numpy("mnist", "train")
    assert xt.shape == (3, 28, 28, 1) and yt.dtype == np.int32
    # CIFAR from keras: labels (N, 1); images channels_first if so configured.
    xc = np.arange(2 * 3 * 32 * 32, dtype=np.uint32).astype(np.uint8).reshape(2, 3, 32, 32)
    yc = np.array([[1], [7]])
    monkeypatch.setattr(load_module, "_keras_load_data",
                        lambda name: ((xc, yc), (xc, yc)))
    xt, yt = data.load_numpy("cifar10", "test")
    np.testing.assert_array_equal(xt, xc.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(yt, [1, 7])


def test_real_debian_fashion_mnist(monkeypatch):
    """Loads the real files of the Debian package `dataset-fashion-mnist`."""
    if not all(os.path.isdir(d) for d in REAL_SYSTEM_DIRS.get("fashion_mnist", ["-"])):
        pytest.skip("Debian dataset-fashion-mnist is not installed")
    monkeypatch.setattr(locate, "SYSTEM_DIRS", REAL_SYSTEM_DIRS)
    meta = data.info("fashion_mnist")
    x, y = data.load_numpy("fashion_mnist", "train", download=False)
    assert x.shape == (60000, 28, 28, 1) and (y.min(), y.max()) == (0, 9)
    assert np.bincount(y).tolist() == [6000] * 10
    # The documented constants are this split's statistics.
    assert abs(x.mean() / 255 - meta.mean[0]) < 1e-4
    assert abs((x / 255.0).std() - meta.std[0]) < 1e-4
    xt, yt = data.load_numpy("fashion-mnist", "test", download=False)
    assert xt.shape == (10000, 28, 28, 1) and set(np.unique(yt)) == set(range(10))
