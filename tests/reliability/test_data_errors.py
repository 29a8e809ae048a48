"""data_dir mistakes are errors, never a silent fall back to another copy."""

import pickle

import numpy as np
import pytest

from tests.data.formats import cifar_members, write_cifar_folder, write_idx_dataset
from tf_lowprec import data
from tf_lowprec.data import locate


@pytest.fixture
def other_copy(tmp_path, monkeypatch):
    """A complete MNIST in $TF_LOWPREC_DATA: the copy a typo used to load."""
    write_idx_dataset(tmp_path / "env", seed=5)
    monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "env"))


def test_missing_data_dir_is_an_error(tmp_path, other_copy):
    with pytest.raises(data.DatasetNotFoundError, match=r"data_dir '.*typo' does not exist"):
        data.load_numpy("mnist", data_dir=tmp_path / "typo")


def test_data_dir_that_is_a_file_is_an_error(tmp_path, other_copy):
    (tmp_path / "file").write_text("x")
    with pytest.raises(data.DatasetNotFoundError, match="is a file, not a directory"):
        data.load_numpy("mnist", data_dir=tmp_path / "file")


def test_empty_data_dir_is_an_error_and_nothing_is_downloaded(tmp_path, other_copy):
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_numpy("mnist", data_dir=tmp_path / "empty", download=True)
    message = str(info.value)
    assert "nothing usable in data_dir" in message and "empty: no matching files" in message
    assert "$TF_LOWPREC_DATA" not in message  # not searched


def test_data_dir_of_wrong_type_names_the_argument():
    with pytest.raises(TypeError, match="data_dir=3"):
        data.load_numpy("mnist", data_dir=3)


def test_cifar_batch_pickled_by_python3_protocol_2_is_read(tmp_path):
    members = cifar_members("cifar10", n=3)
    name = "cifar-10-batches-py/test_batch"
    batch = pickle.loads(members[name], encoding="bytes")
    members[name] = pickle.dumps(batch, protocol=2)  # Python 3 writer, old protocol
    x, y = data.load_numpy("cifar10", "test", data_dir=write_cifar_folder(tmp_path, members))
    assert x.shape == (3, 32, 32, 3) and len(y) == 3
    expected = np.asarray(batch[b"labels"])
    np.testing.assert_array_equal(y, expected)


def test_cifar_unpickler_allows_latin1_bytes_only():
    from tf_lowprec.data.cifar import _NumpyOnlyUnpickler

    class Sneaky:
        def __reduce__(self):
            import _codecs
            return (_codecs.encode, ("x", "rot13"))

    import io
    with pytest.raises(pickle.UnpicklingError, match="rot13"):
        _NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(Sneaky(), protocol=2))).load()
