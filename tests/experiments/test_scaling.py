"""Scaling benchmark runner on logical CPU devices (correct plumbing, not speed)."""

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


@pytest.mark.parametrize("argv, message", [
    (["--replicas", "2,4"], "--replicas must include 1"),
    (["--replicas", "1,0"], "--replicas"),
    (["--steps", "0"], "--steps"),
    (["--batch-sizes", "0"], "--batch-sizes"),
])
def test_bad_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit):
        scaling.main(argv)
    assert message in capsys.readouterr().err
