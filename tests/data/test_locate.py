"""Search order, accepted layouts, and the nothing-found error."""

import os
import pickle

import numpy as np
import pytest

from tf_lowprec import data
from tf_lowprec.data import locate

from .formats import (
    cifar_members,
    expected_cifar,
    fake_mnist,
    write_cifar_archive,
    write_cifar_folder,
    write_idx_dataset,
    write_idx_split,
)


def _labels(name, split="train", **kw):
    return data.load_numpy(name, split, download=False, **kw)[1]


def test_data_dir_beats_env_var(tmp_path, monkeypatch):
    arg = write_idx_dataset(tmp_path / "arg", seed=10)
    env = write_idx_dataset(tmp_path / "env", seed=20)
    monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "env"))
    np.testing.assert_array_equal(_labels("mnist", data_dir=tmp_path / "arg"),
                                  arg["train"][1])
    np.testing.assert_array_equal(_labels("mnist"), env["train"][1])


@pytest.mark.parametrize("sub", ["fashion_mnist", "fashion-mnist", None])
def test_env_var_subfolder_or_flat(tmp_path, monkeypatch, sub):
    root = tmp_path / "root"
    ref = write_idx_dataset(root / sub if sub else root, seed=3)
    monkeypatch.setenv(locate.ENV_VAR, str(root))
    np.testing.assert_array_equal(_labels("fashion-mnist", "test"), ref["test"][1])


def test_subfolder_beats_flat_files(tmp_path):
    flat = write_idx_dataset(tmp_path, seed=1)
    sub = write_idx_dataset(tmp_path / "mnist", seed=2)
    got = _labels("mnist", data_dir=tmp_path)
    np.testing.assert_array_equal(got, sub["train"][1])
    assert not np.array_equal(got, flat["train"][1])


def test_env_var_beats_system_dir_beats_keras_cache(tmp_path, monkeypatch):
    system = tmp_path / "usr_share"
    cache = tmp_path / "keras_home" / "datasets" / "fashion-mnist"  # KERAS_HOME layout
    ref_cache = write_idx_dataset(cache, seed=7)
    np.testing.assert_array_equal(_labels("fashion_mnist"), ref_cache["train"][1])
    ref_sys = write_idx_dataset(system, seed=8)
    monkeypatch.setattr(locate, "SYSTEM_DIRS", {"fashion_mnist": (str(system),)})
    np.testing.assert_array_equal(_labels("fashion_mnist"), ref_sys["train"][1])
    ref_env = write_idx_dataset(tmp_path / "env", seed=9)
    monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "env"))
    np.testing.assert_array_equal(_labels("fashion_mnist"), ref_env["train"][1])


def test_keras_fallback_home(tmp_path):
    """Keras writes to /tmp/.keras when its home is not writable; we look there too."""
    ref = write_idx_dataset(tmp_path / "tmp_keras" / "datasets" / "fashion-mnist")
    np.testing.assert_array_equal(_labels("fashion_mnist"), ref["train"][1])


def test_keras_cache_mnist_npz(tmp_path):
    x, y = fake_mnist(3, seed=4)
    path = tmp_path / "keras_home" / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)
    np.testing.assert_array_equal(_labels("mnist"), y)


def test_uncompressed_dotted_spelling(tmp_path):
    x, y = fake_mnist(3, seed=5)
    images, labels = write_idx_split(tmp_path, "test", x, y, gz=False)
    os.rename(images, tmp_path / "t10k-images.idx3-ubyte")
    np.testing.assert_array_equal(_labels("mnist", "test", data_dir=tmp_path), y)


@pytest.mark.parametrize("layout", [
    "archive", "folder", "folder_itself", "keras_archive", "keras_folder"])
def test_cifar10_layouts(tmp_path, monkeypatch, layout):
    members = cifar_members("cifar10", n=2, seed=11)
    root = tmp_path / "data"
    if layout == "archive":
        write_cifar_archive(root / "cifar-10-python.tar.gz", members)
    elif layout == "folder":
        write_cifar_folder(root / "cifar10", members)  # <dir>/cifar10/cifar-10-batches-py
    elif layout == "folder_itself":
        root = write_cifar_folder(root, members)  # data_dir is the batches folder
    else:  # what keras >= 3.6 leaves in its cache
        monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
        cache = tmp_path / "kh" / "datasets"
        if layout == "keras_archive":
            write_cifar_archive(cache / "cifar-10-batches-py-target_archive", members)
        else:
            write_cifar_folder(cache / "cifar-10-batches-py-target", members)
        root = None
    x, y = data.load_numpy("cifar10", "test", data_dir=root, download=False)
    ex, ey = expected_cifar("cifar10", members, "test")
    np.testing.assert_array_equal(x, ex)
    np.testing.assert_array_equal(y, ey)


def test_cifar100_extracted_folder(tmp_path):
    members = cifar_members("cifar100", n=3, seed=2)
    write_cifar_folder(tmp_path, members)
    x, y = data.load_numpy("cifar100", "train", data_dir=tmp_path, download=False)
    ex, ey = expected_cifar("cifar100", members, "train")
    np.testing.assert_array_equal(x, ex)
    np.testing.assert_array_equal(y, ey)


def test_cifar_corrupt_archive(tmp_path):
    path = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", cifar_members("cifar10"))
    raw = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"cifar-10-python\.tar\.gz: corrupt"):
        data.load_numpy("cifar10", data_dir=tmp_path)


def test_cifar_archive_missing_member(tmp_path):
    members = cifar_members("cifar10")
    del members["cifar-10-batches-py/data_batch_3"]
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", members)
    with pytest.raises(ValueError, match=r"lacks cifar-10-batches-py/data_batch_3"):
        data.load_numpy("cifar10", data_dir=tmp_path)


def test_cifar_bad_batches(tmp_path):
    members = cifar_members("cifar10", n=3)
    key = "cifar-10-batches-py/test_batch"
    batch = pickle.loads(members[key])
    batch[b"labels"][1] = 10
    members[key] = pickle.dumps(batch, protocol=4)
    write_cifar_archive(tmp_path / "a" / "cifar-10-python.tar.gz", members)
    with pytest.raises(ValueError, match=r"test_batch: labels out of range"):
        data.load_numpy("cifar10", "test", data_dir=tmp_path / "a")
    batch[b"labels"] = batch[b"labels"][:2]
    members[key] = pickle.dumps(batch, protocol=4)
    write_cifar_archive(tmp_path / "b" / "cifar-10-python.tar.gz", members)
    with pytest.raises(ValueError, match=r"test_batch: 'labels' must be 3 integers"):
        data.load_numpy("cifar10", "test", data_dir=tmp_path / "b")


class _Gadget:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_cifar_refuses_arbitrary_pickle_globals(tmp_path):
    members = cifar_members("cifar10", n=2)
    members["cifar-10-batches-py/test_batch"] = pickle.dumps({b"data": _Gadget()})
    folder = write_cifar_folder(tmp_path, members)
    with pytest.raises(ValueError, match=r"test_batch: not a readable CIFAR batch.*system"):
        data.load_numpy("cifar10", "test", data_dir=folder)


def test_incomplete_dir_is_skipped_and_reported(tmp_path, monkeypatch):
    x, y = fake_mnist(3, seed=0)
    images, labels = write_idx_split(tmp_path / "partial", "train", x, y)
    os.remove(labels)
    monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "partial"))
    ref = write_idx_dataset(tmp_path / "keras_home" / "datasets", seed=1)
    np.testing.assert_array_equal(_labels("mnist"), ref["train"][1])  # env dir skipped
    # A given data_dir is never skipped: an incomplete one is an error.
    with pytest.raises(data.DatasetNotFoundError, match=r"incomplete: has "
                       r"train-images-idx3-ubyte\.gz but no train labels file"):
        _labels("mnist", data_dir=tmp_path / "partial")


def test_nothing_found_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setattr(locate, "SYSTEM_DIRS", {"fashion_mnist": ("/nonexistent/fm",)})
    monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "envdir"))
    with pytest.raises(FileNotFoundError):  # DatasetNotFoundError is one
        data.load("fashion-mnist", download=False)
    (tmp_path / "envdir").mkdir()  # an existing base is searched in each layout
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load("fashion-mnist", download=False)
    msg = str(err.value)
    for place in ["/nonexistent/fm",
                  tmp_path / "envdir" / "fashion_mnist",
                  tmp_path / "envdir" / "fashion-mnist",
                  tmp_path / "keras_home" / "datasets",
                  tmp_path / "tmp_keras" / "datasets"]:
        assert f"{place}: does not exist" in msg, place
    assert f"$TF_LOWPREC_DATA: {tmp_path / 'envdir'}: no matching files" in msg
    assert "download=False" in msg
    assert "train-images-idx3-ubyte.gz" in msg and locate.ENV_VAR in msg
    assert "apt-get install dataset-fashion-mnist" in msg


def test_download_failure_is_reported(tmp_path):
    """conftest's fallback raises like keras does offline; no network is touched."""
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load_numpy("cifar100", "test")
    msg = str(err.value)
    assert "keras.datasets.cifar100.load_data() failed" in msg
    assert "URL fetch failure" in msg
    assert "$TF_LOWPREC_DATA: (not set)" in msg and "data_dir argument: (not set)" in msg
    assert "cifar-100-python.tar.gz" in msg
    assert "apt-get" not in msg
