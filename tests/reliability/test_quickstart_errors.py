"""Quickstart: bad flags and missing data stop it before any training, in one line."""

import pytest

from tf_lowprec import quickstart


def _error(capsys, *argv):
    with pytest.raises(SystemExit) as info:
        quickstart.main(list(argv))
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("argv, expected", [
    (("--c", "inf"), "argument --c: must be a finite number >= 0, got 'inf'"),
    (("--c", "-1"), "argument --c: must be a finite number >= 0, got '-1'"),
    (("--mu", "nan"), "argument --mu: must be a finite number > 0, got 'nan'"),
    (("--learning-rate", "inf"), "argument --learning-rate: must be a finite number > 0"),
    (("--epochs", "2.5"), "argument --epochs: must be an integer, got '2.5'"),
    (("--seed", "-3"), "argument --seed: must be in [0, 2**31), got '-3'"),
])
def test_bad_flags(capsys, argv, expected):
    assert expected in _error(capsys, *argv)


def test_missing_data_is_one_line(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    line = _error(capsys, "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "o"))
    assert "Could not find the 'fashion_mnist' dataset (train split)" in line
    assert not (tmp_path / "o").exists()


def test_output_path_under_a_file_is_refused_before_training(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    line = _error(capsys, "--out", str(tmp_path / "file" / "out"))
    assert "--out" in line and "cannot be created" in line
