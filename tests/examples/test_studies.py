"""The issue-15 studies (gRDA, SWALP, HALP) on tiny data: outputs, and an interrupted run
resumes to exactly the rows and weights of an uninterrupted one."""

import importlib.util
import os

import numpy as np
import pytest

from tests.experiments.test_resumable import Interrupt, interrupting
from tf_lowprec.experiments.results_io import read_csv
from tf_lowprec.experiments.resumable import checkpoint_name, load_variables

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--limit", "64", "--test-limit", "100", "--seeds", "0"]


def _load(*path):
    spec = importlib.util.spec_from_file_location(path[-1][:-3], os.path.join(ROOT, *path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _interrupt_after(module, epochs, monkeypatch):
    """Makes the script's epoch function raise after `epochs` epochs (like a killed process)."""
    original = module.train_epoch
    monkeypatch.setattr(module, "train_epoch",
                        lambda *a, **k: interrupting(original(*a, **k), epochs))


def _check_resume(module, argv, csv_name, runs, tmp_path, monkeypatch, after=1):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    module.main(argv + ["--out", str(straight)])
    with monkeypatch.context() as patch:
        _interrupt_after(module, after, patch)
        with pytest.raises(Interrupt):
            module.main(argv + ["--out", str(resumed)])
    assert len(read_csv(str(resumed / csv_name))) == after
    module.main(argv + ["--out", str(resumed)])
    a, b = read_csv(str(straight / csv_name)), read_csv(str(resumed / csv_name))
    assert [(r["run"], r["seed"], r["epoch"]) for r in a] == [
        (run, "0", str(e)) for run in runs for e in (1, 2)]
    for x, y in zip(a, b):
        assert {k: v for k, v in x.items() if k != "seconds"} == \
            {k: v for k, v in y.items() if k != "seconds"}
    for run in runs:
        _, u = load_variables(str(straight / "checkpoints" / checkpoint_name(run, 0)))
        _, v = load_variables(str(resumed / "checkpoints" / checkpoint_name(run, 0)))
        for p, q in zip(u, v):
            np.testing.assert_array_equal(p, q)
    return straight


@pytest.mark.slow
def test_grda_study(tmp_path, monkeypatch):
    module = _load("examples", "grda_directional_pruning", "mu_sweep.py")
    argv = TINY + ["--epochs", "2", "--drop-epoch", "1", "--mus", "0.7", "--valley-points", "3",
                   "--no-progress"]
    out = tmp_path / "out"
    module.main(argv + ["--out", str(out)])  # resuming is checked on the other two studies
    rows = read_csv(str(out / "grda_study.csv"))
    assert [(r["run"], r["epoch"]) for r in rows] == [
        ("SGD", "1"), ("SGD", "2"), ("GRDA mu=0.7", "1"), ("GRDA mu=0.7", "2")]
    assert float(rows[-1]["sparsity"]) > 10 * float(rows[1]["sparsity"])  # GRDA prunes
    assert float(rows[-1]["learning_rate"]) == pytest.approx(0.01)  # the drop after epoch 1
    valley = read_csv(str(out / "valley_summary.csv"))
    assert [(r["first"], r["second"]) for r in valley] == [("SGD", "GRDA mu=0.7")]
    assert float(valley[0]["barrier"]) >= 0 and 0 < float(valley[0]["angle_degrees"]) < 90
    for name in ("curves.png", "layer_sparsity.png", "valley.png", "valley.csv"):
        assert (out / name).stat().st_size > 0
    assert "Same valley" in (out / "summary.md").read_text()


@pytest.mark.slow
def test_swalp_study(tmp_path, monkeypatch):
    module = _load("examples", "swalp", "swalp_experiment.py")
    argv = TINY + ["--epochs", "2", "--swa-start", "1", "--averages-per-epoch", "2",
                   "--batch-size", "16", "--precisions", "fp", "--verbose", "0"]
    out = _check_resume(module, argv, "runs.csv", ["fp"], tmp_path, monkeypatch)
    rows = read_csv(str(out / "runs.csv"))
    # 4 steps/epoch: the per-epoch average has the weights after epochs 1 and 2, the other
    # one every 2 steps from the end of epoch 1 (steps 4, 6, 8)
    assert [r["swa_epoch_num_averaged"] for r in rows] == ["1", "2"]
    assert [r["swa_fraction_num_averaged"] for r in rows] == ["1", "3"]
    summary = (out / "summary.md").read_text()
    assert "SGD-FP" in summary and "SWA-FP (2/epoch)" in summary
    assert (out / "curves.png").stat().st_size > 0


@pytest.mark.slow
def test_halp_study(tmp_path, monkeypatch):
    module = _load("examples", "halp", "halp_study.py")
    argv = TINY + ["--epochs", "2", "--batch-size", "32", "--runs", "HALP 8b T=0.5",
                   "--no-progress"]
    out = _check_resume(module, argv, "halp_study.csv", ["HALP 8b T=0.5"], tmp_path, monkeypatch)
    assert "| HALP 8b T=0.5 | 1 |" in (out / "summary.md").read_text()
    assert (out / "curves_T_sweep.png").stat().st_size > 0
