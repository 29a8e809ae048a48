"""Atomic result files: complete or untouched, never half-written."""

import os

import matplotlib.pyplot as plt
import pytest

from tf_lowprec.experiments.results_io import read_csv, save_figure_atomic, write_csv_atomic


def test_round_trip_and_column_union(tmp_path):
    path = tmp_path / "sub" / "r.csv"
    write_csv_atomic(path, [{"a": 1, "b": 2}, {"a": 3, "c": "x"}])
    rows = read_csv(path)
    assert rows == [{"a": "1", "b": "2", "c": ""}, {"a": "3", "b": "", "c": "x"}]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "r.csv"
    write_csv_atomic(path, [{"a": 1}])

    def rows():
        yield {"a": 2}
        raise KeyboardInterrupt  # interrupted while producing rows

    with pytest.raises(KeyboardInterrupt):
        write_csv_atomic(path, rows())
    assert read_csv(path) == [{"a": "1"}]
    assert os.listdir(tmp_path) == ["r.csv"]


def test_unwritable_row_keeps_old_file(tmp_path):
    path = tmp_path / "r.csv"
    write_csv_atomic(path, [{"a": 1}])
    with pytest.raises(ValueError):
        write_csv_atomic(path, [{"a": 2}, {"zzz": 3}], fieldnames=["a"])
    assert read_csv(path) == [{"a": "1"}]
    assert os.listdir(tmp_path) == ["r.csv"]


def test_figure_is_a_png(tmp_path):
    figure = plt.figure()
    plt.plot([0, 1], [1, 0])
    save_figure_atomic(figure, str(tmp_path / "f.png"))
    with open(tmp_path / "f.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    plt.close(figure)
