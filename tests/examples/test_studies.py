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
    runs = ["SVRG T=0.5", "HALP 8b T=0.5"]
    argv = TINY + ["--epochs", "2", "--batch-size", "32", "--runs", ",".join(runs),
                   "--eval-every", "2", "--no-progress"]
    out = _check_resume(module, argv, "halp_study.csv", runs, tmp_path, monkeypatch)
    summary = (out / "summary.md").read_text()
    assert "| HALP 8b T=0.5 | 1 |" in summary
    assert "| HALP 8b T=0.5 − SVRG T=0.5 | 1 |" in summary
    for name in ("curves_T_sweep.png", "deltas.png"):
        assert (out / name).stat().st_size > 0
    a = read_csv(str(out / "halp_study.csv"))
    assert [r["test_accuracy"] == "" for r in a] == [True, False, True, False]  # every 2nd
    # in rounds of one epoch (all runs to epoch 1, then to 2): the same training, epoch-major,
    # and the end of every round is evaluated
    rounds = tmp_path / "rounds"
    module.main(argv + ["--round", "1", "--out", str(rounds)])
    b = read_csv(str(rounds / "halp_study.csv"))
    assert [(r["run"], r["epoch"]) for r in b] == [
        (run, str(e)) for e in (1, 2) for run in runs]
    assert all(r["test_accuracy"] != "" for r in b)
    key = lambda r: (r["run"], r["epoch"])  # noqa: E731
    for x, y in zip(sorted(a, key=key), sorted(b, key=key)):
        assert {k: v for k, v in x.items() if k != "seconds" and not k.startswith("test")} \
            == {k: v for k, v in y.items() if k != "seconds" and not k.startswith("test")}


def test_halp_study_statistics():
    module = _load("examples", "halp", "halp_study.py")
    assert module.epoch_targets(10, 0) == [10]
    assert module.epoch_targets(10, 4) == [4, 8, 10]
    assert module.epoch_targets(10, 5) == [5, 10]
    assert module.epoch_targets(3, 5) == [3]
    # paired t = mean / (sd / sqrt(n)), against the two-sided 5 % critical value 4.303 (n = 3)
    text, significant = module.paired([1.0, 2.0, 3.0])
    assert text == "+2.00 ± 1.00 (3/3 > 0, t = +3.5)" and not significant
    text, significant = module.paired([-1.0, -1.1, -0.9])
    assert text == "-1.00 ± 0.10 (0/3 > 0, t = -17.3)" and significant
    args = module.parse_args(["--epochs", "6", "--limit", "256", "--batch-size", "128",
                              "--converge-window", "4"])
    losses = [2.0, 1.0, 0.8, 0.5, 0.4, 0.32]
    rows = [{"run": "SVRG T=1", "seed": "0", "epoch": str(e + 1), "train_loss": str(v),
             "test_accuracy": str(0.5 + e / 100)} for e, v in enumerate(losses)]
    stats, iterations = module.per_run_seed(rows, args)
    s = stats[("SVRG T=1", 0)]
    assert iterations == 12  # 2 steps per epoch: 100 iterations would be 50 epochs, 6 ran
    # least-squares slope of log(loss) over epochs 0..3 of the window: sum((x - 1.5) y) / 5
    y = np.log(losses[-4:])
    slope = (-1.5 * y[0] - 0.5 * y[1] + 0.5 * y[2] + 1.5 * y[3]) / 5
    assert s["rate"] == pytest.approx(1 - np.exp(slope)) and 0.2 < s["rate"] < 0.3
    assert s["loss"] == pytest.approx(np.mean(losses)) and s["best"] == pytest.approx(55.0)
    assert s["median_loss"] == pytest.approx(0.65)  # median of the 6 epoch means
    with pytest.raises(ValueError, match="--round"):
        module.parse_args(["--round", "-1"])
