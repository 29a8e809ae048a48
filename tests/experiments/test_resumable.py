"""ResumableStudy: one row per (run, seed, epoch), checkpoints, identical resumes."""

import keras
import numpy as np
import pytest

from tf_lowprec.experiments.results_io import read_csv
from tf_lowprec.experiments.resumable import (
    ResumableStudy,
    checkpoint_name,
    epoch_dataset,
    epoch_order,
    load_variables,
    save_variables,
)


class _State:
    """A random walk whose step depends on the seed's RNG draws: the state is one variable."""

    def __init__(self):
        self.w = keras.Variable(np.zeros(3, np.float32))
        self.variables = [self.w]


def _step(state, epoch):
    order = epoch_order(5, 7, epoch)  # depends only on (seed, epoch)
    state.w.assign(state.w.numpy() * 0.5 + order[:3].astype(np.float32))
    return {"w0": float(state.w.numpy()[0]), "w_sum": float(state.w.numpy().sum())}


class Interrupt(Exception):
    """Stands for a killed process."""


def interrupting(step, after):
    """`step` that raises `Interrupt` once it has run `after` epochs (over all runs)."""
    done = []

    def interrupted(state, epoch):
        if len(done) == after:
            raise Interrupt
        done.append(epoch)
        return step(state, epoch)

    return interrupted


def test_epoch_order_depends_on_seed_and_epoch_only():
    np.testing.assert_array_equal(epoch_order(10, 3, 2), epoch_order(10, 3, 2))
    assert sorted(epoch_order(10, 3, 2)) == list(range(10))
    assert not np.array_equal(epoch_order(50, 3, 2), epoch_order(50, 3, 3))
    assert not np.array_equal(epoch_order(50, 3, 2), epoch_order(50, 4, 2))
    x = np.arange(6, dtype=np.float32)[:, None]
    batches = [b[1].numpy().tolist() for b in epoch_dataset(x, np.arange(6), 4, 3, 1)]
    assert [len(b) for b in batches] == [4, 2]
    assert [i for b in batches for i in b] == epoch_order(6, 3, 1).tolist()


def test_interrupted_study_resumes_identically(tmp_path):
    straight = ResumableStudy(str(tmp_path / "a.csv"), str(tmp_path / "ca"), progress=False)
    for seed in (0, 1):
        straight.train("walk", seed, 4, _State, _step)
    path = str(tmp_path / "b.csv")
    study = ResumableStudy(path, str(tmp_path / "cb"), progress=False)
    study.train("walk", 0, 4, _State, _step)
    with pytest.raises(Interrupt):
        study.train("walk", 1, 4, _State, interrupting(_step, 2))
    assert study.epochs_done("walk", 1) == [1, 2]  # the finished epochs are on disk
    assert len(read_csv(path)) == 6
    resumed = ResumableStudy(path, str(tmp_path / "cb"), progress=False)
    calls = []

    def counting(state, epoch):
        calls.append(epoch)
        return _step(state, epoch)

    assert resumed.train("walk", 0, 4, _State, counting) is None  # complete: skipped
    resumed.train("walk", 1, 4, _State, counting)
    assert calls == [2, 3]  # continues after the checkpoint
    def key(r):
        return r["seed"], int(r["epoch"])

    expected = sorted(read_csv(str(tmp_path / "a.csv")), key=key)
    assert sorted(read_csv(path), key=key) == expected
    assert [r["epoch"] for r in expected if r["seed"] == "1"] == ["1", "2", "3", "4"]
    _, a = load_variables(str(tmp_path / "ca" / checkpoint_name("walk", 1)))
    _, b = load_variables(str(tmp_path / "cb" / checkpoint_name("walk", 1)))
    np.testing.assert_array_equal(a[0], b[0])


def test_row_written_but_checkpoint_missing_retrains_that_epoch(tmp_path):
    study = ResumableStudy(str(tmp_path / "r.csv"), str(tmp_path / "c"), progress=False)
    study.train("walk", 0, 3, _State, _step)
    expected = read_csv(str(tmp_path / "r.csv"))
    state = _State()
    _step(state, 0)
    save_variables(study.checkpoint_path("walk", 0), state.variables, 1)  # as after epoch 1
    study.rows = [r for r in study.rows if r["epoch"] != 3]  # epoch 3 was never recorded
    study.train("walk", 0, 3, _State, _step)
    assert read_csv(str(tmp_path / "r.csv")) == expected


def test_checkpoint_mismatch_is_a_value_error(tmp_path):
    path = str(tmp_path / "c.npz")
    save_variables(path, [keras.Variable(np.ones(2, np.float32))], 1)
    with pytest.raises(ValueError, match="shape"):
        load_variables(path, [keras.Variable(np.ones(3, np.float32))])
    with pytest.raises(ValueError, match="holds 1 variables"):
        load_variables(path, [keras.Variable(np.ones(2, np.float32))] * 2)
    assert checkpoint_name("GRDA mu=0.7", 2) == "GRDA_mu=0.7-seed2.npz"
