"""Scaling benchmark runner: logical CPU devices and worker processes (plumbing, not speed)."""

import sys

import pytest

from tf_lowprec.experiments import cli, scaling
from tf_lowprec.experiments.results_io import read_csv


@pytest.mark.slow
def test_scale_writes_rows_for_every_config_and_replica_count(tmp_path):
    code = cli.main([
        "scale", "--replicas", "1,4", "--models", "mlp", "--optimizers", "grda",
        "--batch-sizes", "32", "--batch-schedules", "30+10*epoch", "--schedule-epochs", "2",
        "--steps", "2", "--repeats", "1", "--warmup", "1", "--out", str(tmp_path),
    ])
    assert code == 0
    rows = read_csv(tmp_path / "scaling.csv")
    assert len(rows) == 2 * 3  # (batch 32, schedule epochs 0 and 1) x replicas {1, 4}
    assert {r["global_batch"] for r in rows} == {"32", "30", "40"}
    # 30 does not split over 4 replicas: rounded up to 32 there, kept at 1 replica.
    used = {(r["replicas"], r["global_batch"]): r["global_batch_used"] for r in rows}
    assert used[("4", "30")] == "32" and used[("1", "30")] == "30" and used[("4", "40")] == "40"
    for r in rows:
        assert "logical CPU devices" in r["device_kind"]
        assert float(r["images_per_second"]) > 0
        n = int(r["replicas"])
        assert float(r["efficiency"]) == pytest.approx(float(r["speedup"]) / n)
        if n == 1:
            assert float(r["speedup"]) == 1.0
    with open(tmp_path / "scaling.png", "rb") as f:
        assert f.read(4) == b"\x89PNG"


@pytest.mark.slow
def test_scale_workers_launches_a_cluster_and_baselines(tmp_path):
    # One core: the 2-worker cluster shares it and the one-worker baseline
    # is the one-process run itself (2 launches in all). --warmup 0 returns.
    code = cli.main([
        "scale", "--workers", "1,2", "--cores", "1", "--models", "mlp", "--optimizers", "grda",
        "--batch-sizes", "15", "--steps", "2", "--repeats", "1", "--warmup", "0",
        "--out", str(tmp_path),
    ])
    assert code == 0
    rows = read_csv(tmp_path / "scaling_workers.csv")
    assert [(r["workers"], r["cores_per_worker"], r["total_cores"]) for r in rows] == [
        ("1", "1", "1"), ("2", "1", "1")]
    assert [r["global_batch_used"] for r in rows] == ["15", "16"]  # even split over 2 workers
    one, two = rows
    assert float(one["speedup_vs_total_threads"]) == 1.0 == float(one["speedup_vs_worker_threads"])
    assert float(two["images_per_second"]) > 0
    assert float(two["speedup_vs_total_threads"]) == pytest.approx(
        float(two["images_per_second"]) / float(one["images_per_second"]))
    assert float(two["efficiency_vs_worker_threads"]) == pytest.approx(
        float(two["speedup_vs_worker_threads"]) / 2)
    with open(tmp_path / "scaling_workers.png", "rb") as f:
        assert f.read(4) == b"\x89PNG"


@pytest.mark.parametrize("argv, message", [
    (["--replicas", "2,4"], "--replicas must include 1"),
    (["--replicas", "1,0"], "--replicas"),
    (["--workers", "2"], "--workers must include 1"),
    (["--steps", "0"], "--steps"),
    (["--warmup", "-1"], "--warmup"),
    (["--batch-sizes", "0"], "--batch-sizes"),
    (["--models", "mlp,resnet99"], "--models: unknown ['resnet99']"),
    (["--optimizers", "sgd,adamm"], "--optimizers: unknown ['adamm']"),
    (["--devices", "gpu", "--replicas", "1,2"], "--devices gpu --replicas 2: 0 GPU(s) visible"),
    (["--devices", "gpu", "--workers", "1,2"], "--workers runs on CPU cores"),
    (["--workers", "1,2", "--cores", "999"], "--cores: 999 requested"),
])
def test_bad_arguments_are_one_line_and_launch_nothing(argv, message, capsys, monkeypatch):
    def no_launch(*args, **kwargs):
        raise AssertionError("launched a process before validating")

    monkeypatch.setattr(scaling, "LocalCluster", no_launch)
    with pytest.raises(SystemExit) as exit_info:
        scaling.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_replicas_and_workers_are_exclusive(capsys):
    with pytest.raises(SystemExit) as exit_info:
        scaling.main(["--replicas", "1,2", "--workers", "1,2"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_failing_worker_fails_the_run_with_its_log(tmp_path, capsys, monkeypatch):
    def dying(*args):
        return [sys.executable, "-c", "import sys; print('out of memory, say'); sys.exit(4)"]

    monkeypatch.setattr(scaling, "python_module_command", dying)
    code = scaling.main(["--workers", "1,2", "--models", "mlp", "--optimizers", "sgd",
                         "--batch-sizes", "8", "--out", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert "failed: worker 0 of 1 exited with status 4" in err and "out of memory, say" in err
    assert not (tmp_path / "scaling_workers.csv").exists()


def test_ctrl_c_stops_every_worker(tmp_path, capsys, monkeypatch):
    started = []

    def sleeper(*args):
        return [sys.executable, "-c", "import time; time.sleep(600)"]

    def interrupted(self, *args, **kwargs):
        started.extend(self.processes)
        raise KeyboardInterrupt

    monkeypatch.setattr(scaling, "python_module_command", sleeper)
    monkeypatch.setattr(scaling.LocalCluster, "wait", interrupted)
    code = scaling.main(["--workers", "1,2", "--models", "mlp", "--optimizers", "sgd",
                         "--batch-sizes", "8", "--out", str(tmp_path)])
    assert code == 130
    assert "interrupted; every worker was stopped" in capsys.readouterr().err
    assert len(started) == 1 and started[0].poll() is not None
