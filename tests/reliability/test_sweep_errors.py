"""Sweep result files under concurrency and user error: nothing lost, one-line errors.

Every error here is found by `sweep.plan` or the lock/resume check, before
any training, so these tests train nothing.
"""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from tests.data.formats import write_idx_dataset
from tf_lowprec.experiments import cli
from tf_lowprec.experiments import sweep as sweep_module
from tf_lowprec.experiments.output_lock import DirectoryLock, DirectoryLockedError


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("data") / "mnist"
    write_idx_dataset(str(directory), n_train=64, n_test=32, seed=0)
    return str(directory)


def _cli_error(capsys, mnist_dir, out, *extra):
    args = ["sweep", "--data-dir", mnist_dir, "--out", str(out), "--optimizers", "sgd",
            "--learning-rates", "0.1", "--batch-size", "16",
            "--model-kwargs", '{"hidden_units": [4]}', *extra]
    with pytest.raises(SystemExit) as info:
        cli.main(args)
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("usage: tf-lowprec sweep")
    error_lines = [line for line in lines if "error:" in line]
    assert len(error_lines) == 1 and error_lines[0] == lines[-1]  # one line, last
    return error_lines[0]


def test_second_writer_is_refused_and_the_first_loses_nothing(capsys, mnist_dir, tmp_path):
    out = tmp_path / "out"
    with DirectoryLock(out):  # a sweep in progress (flock: per open file, so in-process works)
        (out / "results.csv").write_text("run,epoch\nkept,1\n")
        message = _cli_error(capsys, mnist_dir, out)
        assert f"{out} is in use by another writer (pid {os.getpid()})" in message
    assert (out / "results.csv").read_text() == "run,epoch\nkept,1\n"
    assert not (out / "sweep_config.json").exists()


def test_lock_held_by_another_process_and_freed_by_sigkill(capsys, mnist_dir, tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; sys.argv[0] = 'tf-lowprec'\n"  # no TensorFlow import (see tf_lowprec/__init__)
         "from tf_lowprec.experiments.output_lock import DirectoryLock\n"
         f"lock = DirectoryLock({str(out)!r}).acquire()\n"
         "print('locked', flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        message = _cli_error(capsys, mnist_dir, out)
        assert f"is in use by another writer (pid {holder.pid})" in message
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    DirectoryLock(out).acquire().release()  # the kernel dropped the dead holder's lock


def test_lock_is_released_on_exit_and_by_a_crash(tmp_path):
    lock = DirectoryLock(tmp_path)
    with lock:
        with pytest.raises(DirectoryLockedError):
            DirectoryLock(tmp_path).acquire()
    with DirectoryLock(tmp_path):  # free again
        pass
    with pytest.raises(RuntimeError), DirectoryLock(tmp_path):
        raise RuntimeError("crash")
    DirectoryLock(tmp_path).acquire().release()


def test_run_keys_hold_exact_learning_rates():
    a = sweep_module.run_name("sgd", 0.1234567, "ce", 0)
    b = sweep_module.run_name("sgd", 0.1234568, "ce", 0)
    assert a != b  # both were "lr=0.123457"
    assert "lr=0.1234567 " in a
    assert sweep_module.run_name("sgd", 1e-4, "ce", 0) != sweep_module.run_name("sgd", 1.00000001e-4, "ce", 0)


@pytest.mark.parametrize("extra, expected", [
    (("--limit", "8"), "training subset (8 examples) is smaller than one batch (batch_size=16)"),
    (("--model-kwargs", "{not json"), "argument --model-kwargs: not valid JSON"),
    (("--model-kwargs", "[1, 2]"), "argument --model-kwargs: must be a JSON object"),
    (("--model-kwargs", '{"nope": 1}'), "model 'mlp' rejects model_kwargs={'nope': 1}"),
    (("--model-kwargs", '{"hidden_units": [0]}'), "hidden_units=[0]"),
    (("--learning-rates", "nan"), "learning_rates=nan"),
    (("--learning-rates", "0.1,inf"), "learning_rates=inf"),
    (("--learning-rates", "0.1,x"), "argument --learning-rates: expected comma-separated numbers"),
    (("--optimizers", "sgd,svrg"), "optimizer 'svrg' needs tf_lowprec.training.VarianceReduced"),
    (("--optimizers", "halp"), "optimizer 'halp' needs tf_lowprec.training.VarianceReduced"),
    (("--limit", "0"), "--limit: must be >= 1"),
])
def test_bad_arguments_are_one_line_errors_before_training(capsys, mnist_dir, tmp_path, extra, expected):
    out = tmp_path / "out"
    message = _cli_error(capsys, mnist_dir, out, *extra)
    assert expected in message, message
    assert not out.exists()  # nothing written


def test_out_that_is_a_file_or_under_one(capsys, mnist_dir, tmp_path):
    (tmp_path / "file").write_text("x")
    assert "is a file" in _cli_error(capsys, mnist_dir, tmp_path / "file")
    assert "cannot be created" in _cli_error(capsys, mnist_dir, tmp_path / "file" / "sub")


def test_missing_data_dir_is_a_one_line_error(capsys, tmp_path):
    message = _cli_error(capsys, str(tmp_path / "typo"), tmp_path / "out")
    assert "typo' does not exist" in message


def _plan(mnist_dir, out, **kw):
    args = dict(dataset="mnist", model="mlp", optimizers=["sgd"], learning_rates=[0.1],
                batch_size=16, data_dir=mnist_dir, out=str(out), model_kwargs={"hidden_units": [4]})
    args.update(kw)
    return sweep_module.plan(**args)


def test_resume_refuses_other_settings_and_other_data(capsys, mnist_dir, tmp_path):
    out = tmp_path / "out"
    settings = _plan(mnist_dir, out)
    sweep_module._check_resume(str(out), {k: settings[k] for k in sweep_module._FIXED})
    assert json.loads((out / "sweep_config.json").read_text())["data_dir"] == mnist_dir

    copy = str(tmp_path / "copy" / "mnist")
    shutil.copytree(mnist_dir, copy)
    moved = _plan(copy, out)
    with pytest.raises(sweep_module.ResumeRefusedError, match=r"data_dir: '.*' -> '.*copy/mnist'"):
        sweep_module._check_resume(str(out), {k: moved[k] for k in sweep_module._FIXED})
    message = _cli_error(capsys, mnist_dir, out, "--epochs", "2")
    assert "holds a sweep with other settings (epochs: 1 -> 2)" in message


def test_plan_names_bad_python_arguments(mnist_dir, tmp_path):
    with pytest.raises(ValueError, match="epochs=0"):
        _plan(mnist_dir, tmp_path / "o", epochs=0)
    with pytest.raises(ValueError, match="seeds=-1"):
        _plan(mnist_dir, tmp_path / "o", seeds=[-1])
    with pytest.raises(ValueError, match="model_kwargs must be a JSON object"):
        _plan(mnist_dir, tmp_path / "o", model_kwargs=[1])


def test_interrupt_is_one_message_and_exit_130(capsys, monkeypatch, mnist_dir, tmp_path):
    def interrupted(settings, verbose=0, progress=True):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_module, "run", interrupted)
    code = cli.main(["sweep", "--data-dir", mnist_dir, "--out", str(tmp_path / "out"),
                     "--optimizers", "sgd", "--learning-rates", "0.1", "--batch-size", "16",
                     "--model-kwargs", '{"hidden_units": [4]}'])
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err
    assert "interrupted; finished runs are saved" in err and "again to resume" in err
