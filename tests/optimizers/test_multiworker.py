"""GRDA under MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tf_lowprec.distribute.local_cluster import free_ports, tf_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = "tests.optimizers.multiworker_grda"


def _env(tf_config=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _load(path):
    with np.load(path) as f:
        return float(f["threshold"]), [f[f"arr_{i}"] for i in range(len(f.files) - 1)]


@pytest.mark.slow
def test_two_workers_end_identical_and_equal_single_process(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    try:
        for index in range(2):
            config = tf_config(workers, index)
            processes.append(subprocess.Popen(
                [sys.executable, "-m", MODULE, str(tmp_path / f"worker{index}.npz")],
                cwd=ROOT, env=_env(config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            ))
        outputs = [p.communicate(timeout=240)[0].decode(errors="replace") for p in processes]
        for p, out in zip(processes, outputs):
            assert p.returncode == 0, out[-3000:]
    finally:
        for p in processes:  # bounded: never leave a worker behind
            if p.poll() is None:
                p.kill()
                p.wait()

    reference = subprocess.run([sys.executable, "-m", MODULE, str(tmp_path / "single.npz")],
                               cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=240)
    assert reference.returncode == 0, reference.stderr[-3000:]

    thr0, w0 = _load(tmp_path / "worker0.npz")
    thr1, w1 = _load(tmp_path / "worker1.npz")
    thr, w = _load(tmp_path / "single.npz")
    assert thr0 == thr1 == pytest.approx(thr, rel=1e-6)
    for a, b, ref in zip(w0, w1, w):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, ref, atol=2e-6)
