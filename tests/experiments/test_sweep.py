"""Sweep runner on tiny generated datasets: rows, divergence, resume, CIFAR."""

import os

import pytest

from tests.data.formats import cifar_members, write_cifar_archive, write_idx_dataset
from tf_lowprec.experiments import cli
from tf_lowprec.experiments import sweep as sweep_module
from tf_lowprec.experiments.results_io import read_csv
from tf_lowprec.experiments.sweep import run_name, sweep


@pytest.fixture
def mnist_dir(tmp_path):
    directory = tmp_path / "mnist"
    write_idx_dataset(str(directory), n_train=64, n_test=32, seed=0)
    return str(directory)


def _tiny(mnist_dir, out, **kw):
    args = dict(dataset="mnist", model="mlp", optimizers=["sgd", "grda"], learning_rates=[0.1, 0.01],
                epochs=2, batch_size=16, data_dir=mnist_dir, out=str(out),
                model_kwargs={"hidden_units": [8]}, log_every=2, progress=False)
    args.update(kw)
    return sweep(**args)


@pytest.mark.slow
def test_rows_summary_and_plots(mnist_dir, tmp_path):
    rows, summary = _tiny(mnist_dir, tmp_path / "out")
    csv_rows = read_csv(tmp_path / "out" / "results.csv")
    assert len(csv_rows) == 2 * 2 * 2  # optimizers x lrs x epochs
    for row in csv_rows:
        for column in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds", "sparsity"):
            assert row[column] != ""
        assert row["diverged"] == "False"
        assert len(row["train_loss_blocks"].split()) == 2  # 4 steps per epoch, blocks of 2
    assert {(s["optimizer"], s["loss"]) for s in summary} == {
        ("sgd", "sparse_softmax_cross_entropy"), ("grda", "sparse_softmax_cross_entropy")}
    for s in summary:
        finals = [float(r["test_accuracy"]) for r in csv_rows
                  if r["optimizer"] == s["optimizer"] and r["epoch"] == "2"]
        assert s["test_accuracy"] == max(finals)
    for name in ("summary.md", "loss_curves.png", "accuracy_curves.png", "heatmap.png"):
        assert os.path.getsize(tmp_path / "out" / name) > 0


@pytest.mark.slow
def test_diverging_run_is_recorded_and_the_sweep_goes_on(mnist_dir, tmp_path):
    rows, summary = _tiny(mnist_dir, tmp_path / "out", optimizers=["sgd"], learning_rates=[10**9, 0.1])
    diverged = [r for r in rows if float(r["learning_rate"]) == 1e9]
    assert diverged and all(r["diverged"] for r in diverged)
    assert len([r for r in rows if float(r["learning_rate"]) == 0.1]) == 2  # ran after it
    assert summary[0]["best_learning_rate"] == 0.1
    assert summary[0]["diverged"] == "1e+09"


@pytest.mark.slow
def test_interrupted_sweep_resumes_without_redoing_or_losing_runs(mnist_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_make_run = sweep_module._make_run
    calls = []

    def counting(settings, optimizer, lr, loss, seed, verbose):
        run = real_make_run(settings, optimizer, lr, loss, seed, verbose)

        def wrapped():
            calls.append((optimizer, lr))
            if (optimizer, lr) == ("grda", 0.1) and interrupt:
                raise KeyboardInterrupt
            return run()
        return wrapped

    monkeypatch.setattr(sweep_module, "_make_run", counting)
    interrupt = True
    with pytest.raises(KeyboardInterrupt):
        _tiny(mnist_dir, out)
    done = {r["run"] for r in read_csv(out / "results.csv")}
    assert done == {run_name("sgd", 0.1, "sparse_softmax_cross_entropy", 0),
                    run_name("sgd", 0.01, "sparse_softmax_cross_entropy", 0)}

    interrupt, calls[:] = False, []
    rows, _ = _tiny(mnist_dir, out)
    assert calls == [("grda", 0.1), ("grda", 0.01)]
    assert len(read_csv(out / "results.csv")) == 8 and len(rows) == 8


def test_resume_with_other_settings_is_refused(mnist_dir, tmp_path):
    out = tmp_path / "out"
    os.makedirs(out)
    sweep_module._check_resume(str(out), {k: 1 for k in sweep_module._FIXED})
    with pytest.raises(ValueError, match="epochs: 1 -> 3"):
        sweep_module._check_resume(str(out), {**{k: 1 for k in sweep_module._FIXED}, "epochs": 3})


def test_cli_names_a_bad_optimizer_before_training(capsys, tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--optimizers", "sgd,nope", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "nope" in err and "adam" in err  # lists the valid names
    assert not os.path.exists(tmp_path / "results.csv")


@pytest.mark.slow
def test_cifar10_from_generated_archive(tmp_path):
    data_dir = tmp_path / "data"
    write_cifar_archive(data_dir / "cifar-10-python.tar.gz", cifar_members("cifar10", n=8))
    rows, _ = sweep("cifar10", "cnn", ["sgd"], [0.05], epochs=1, batch_size=8,
                    data_dir=str(data_dir), out=str(tmp_path / "out"),
                    model_kwargs={"filters": [4], "dense_units": 8}, progress=False)
    assert len(rows) == 1 and 0.0 <= rows[0]["test_accuracy"] <= 1.0


def test_tensorboard_writes_one_run_per_configuration(mnist_dir, tmp_path):
    import tensorflow as tf

    from tf_lowprec.experiments.sweep import tensorboard_run_dir

    _tiny(mnist_dir, tmp_path / "tb", optimizers=["grda"], learning_rates=[0.1, 0.1234567],
          epochs=1, tensorboard=True)
    root = tmp_path / "tb" / "tensorboard"
    expected = {tensorboard_run_dir("grda", lr, "sparse_softmax_cross_entropy", 0)
                for lr in (0.1, 0.1234567)}
    assert {p.name for p in root.iterdir()} == expected
    for run in expected:
        tags = set()
        for path in tf.io.gfile.glob(str(root / run / "*" / "events.out.tfevents.*")):
            for event in tf.compat.v1.train.summary_iterator(path):
                tags.update(value.tag for value in event.summary.value)
        assert {"epoch_loss", "sparsity/global", "grda/threshold"} <= tags, (run, tags)
