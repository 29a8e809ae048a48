"""LocalCluster: TF_CONFIG, pinning, failure and interrupt handling (plain Python workers)."""

import json
import os
import sys

import pytest

from tf_lowprec.distribute.local_cluster import (
    LocalCluster,
    WorkerFailed,
    core_shares,
    free_ports,
    tf_config,
)

# Prints what a worker sees: its TF_CONFIG, thread variables and cores.
REPORT = (
    "import json, os; print(json.dumps({'tf_config': os.environ.get('TF_CONFIG'), "
    "'threads': os.environ.get('TF_NUM_INTRAOP_THREADS'), "
    "'cores': sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else None}))"
)


def test_core_shares_split_contiguously_and_wrap():
    assert core_shares(2, [0, 1, 2, 3, 4]) == [[0, 1, 2], [3, 4]]
    assert core_shares(1, [0, 1]) == [[0, 1]]
    assert core_shares(3, [5]) == [[5], [5], [5]]
    with pytest.raises(ValueError, match="workers=0"):
        core_shares(0)


def test_free_ports_and_tf_config():
    ports = free_ports(3)
    assert len(set(ports)) == 3
    config = tf_config(["127.0.0.1:1", "127.0.0.1:2"], 1)
    assert config == {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                      "task": {"type": "worker", "index": 1}}


def test_workers_get_their_config_threads_and_cores(tmp_path):
    cores = core_shares(2)
    with LocalCluster(2, [sys.executable, "-c", REPORT], cores=cores, log_dir=str(tmp_path)) as cluster:
        cluster.wait(timeout=60)
    seen = []
    for i in range(2):
        with open(cluster.log_path(i)) as f:
            seen.append(json.loads(f.read()))
    configs = [json.loads(s["tf_config"]) for s in seen]
    assert [c["task"]["index"] for c in configs] == [0, 1]
    assert configs[0]["cluster"] == configs[1]["cluster"]
    assert all(a.startswith("127.0.0.1:") for a in configs[0]["cluster"]["worker"])
    assert [s["threads"] for s in seen] == [str(len(c)) for c in cores]
    if hasattr(os, "sched_setaffinity"):
        assert [s["cores"] for s in seen] == cores


def test_a_dying_worker_fails_the_run_and_stops_the_others(tmp_path):
    # Worker 1 dies at once; worker 0 would otherwise wait forever.
    body = ("import os, sys, time; i = os.environ['TF_CONFIG'].count('\"index\": 1'); "
            "print('boom from', i, flush=True); sys.exit(3) if i else time.sleep(600)")
    cluster = LocalCluster(2, [sys.executable, "-c", body], log_dir=str(tmp_path), grace=2)
    with cluster, pytest.raises(WorkerFailed, match=r"worker 1 of 2 exited with status 3(.|\n)*boom from 1"):
        cluster.wait(timeout=60)
    assert [p.poll() is not None for p in cluster.processes] == [True, True]


def test_interrupt_or_timeout_stops_every_worker(tmp_path):
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    cluster = LocalCluster(2, sleeper, log_dir=str(tmp_path), grace=2)
    with pytest.raises(KeyboardInterrupt), cluster:
        raise KeyboardInterrupt  # Ctrl-C in the parent
    assert all(p.poll() is not None for p in cluster.processes)
    cluster = LocalCluster(1, sleeper, log_dir=str(tmp_path), tf_config=False, grace=2)
    with cluster, pytest.raises(TimeoutError, match="still running after 0.5 s"):
        cluster.wait(timeout=0.5)
    assert cluster.processes[0].poll() is not None


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="workers=0"):
        LocalCluster(0, ["true"])
    with pytest.raises(ValueError, match="one list per worker"):
        LocalCluster(2, ["true"], cores=[[0]])
    with pytest.raises(ValueError, match="one process"):
        LocalCluster(2, ["true"], tf_config=False)
