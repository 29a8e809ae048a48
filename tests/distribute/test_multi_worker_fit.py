"""`model.fit` under MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1.

One module fixture does all the multi-process work (TensorFlow start-up
dominates): launch 1 runs every `fit` of `tests.distribute.fit_worker` on two
workers and then a copy of the GRDA run in which worker 1 SIGKILLs itself in
epoch 1; launch 2 restarts both workers, which resume that run from
`BackupAndRestore`. The one-process references run in this process.
"""

import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.distribute import fit_worker
from tf_lowprec import distribute
from tf_lowprec.distribute import multi_worker_fit
from tf_lowprec.distribute.local_cluster import (
    LocalCluster,
    WorkerFailed,
    python_module_command,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNS = ("grda", "lowprec", "pruned_swa", "svrg")
PARTS = ("symbolic_build", "reduce_logs", "checkpoint_paths")


def _cluster(out, *args):
    return LocalCluster(
        2, python_module_command("tests.distribute.fit_worker", out, *args), cwd=ROOT,
        env={"CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"},
        log_dir=os.path.join(out, "logs"),
    )


def _load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("multi_worker_fit"))
    facts = {}
    with _cluster(out, *RUNS, "grda_killed", "--kill-at", "1:2") as cluster:
        with pytest.raises(WorkerFailed):
            cluster.wait(timeout=400)
        facts["returncodes"] = [p.returncode for p in cluster.processes]
    backup = os.path.join(out, "backup_grda_killed")
    with open(os.path.join(backup, "training_metadata.json")) as f:
        facts["backup_metadata"] = json.load(f)
    facts["backup_files"] = sorted(os.listdir(backup))
    with _cluster(out, "grda_killed") as cluster:
        cluster.wait(timeout=400)
    single = os.path.join(out, "single")
    os.makedirs(single)
    for name in RUNS:
        fit_worker.fit(name, single, tf.distribute.get_strategy(), "single")
    return out, facts


def test_pinned_keras_needs_every_part_and_enable_is_idempotent():
    """The probes find the three gaps in Keras 3.15; after enabling, none is left."""
    if keras.__version__.startswith("3.15."):
        assert distribute.needs_workaround() == dict.fromkeys(PARTS, True)
    needed = tuple(p for p, need in distribute.needs_workaround().items() if need)
    try:
        assert distribute.enable_multi_worker_fit() == needed
        assert distribute.needs_workaround() == dict.fromkeys(PARTS, False)
        assert distribute.enable_multi_worker_fit() == ()
    finally:
        distribute.disable_multi_worker_fit()
    assert tuple(p for p, need in distribute.needs_workaround().items() if need) == needed


def test_a_fixed_keras_is_left_alone(monkeypatch):
    """A symbolic build that reads the local batch (the fix) is not replaced."""
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    def fixed(self, iterator=None, data_batch=None):
        for _, _, it in iterator or ():
            data_batch = keras.tree.map_structure(
                lambda v: self.distribute_strategy.experimental_local_results(v)[0], next(it))
            break
        self._symbolic_build(data_batch=data_batch)

    monkeypatch.setattr(TensorFlowTrainer, "_maybe_symbolic_build", fixed)
    assert distribute.needs_workaround()["symbolic_build"] is False
    try:
        assert "symbolic_build" not in distribute.enable_multi_worker_fit()
        assert TensorFlowTrainer._maybe_symbolic_build is fixed
    finally:
        distribute.disable_multi_worker_fit()


def test_fixed_log_reduction_and_checkpoints_are_left_alone(monkeypatch):
    """The other two probes: a Keras whose logs reduce over replicas only, and
    whose callbacks route a worker's checkpoint elsewhere, needs neither part."""
    from keras.src.backend.tensorflow import trainer as tf_trainer

    monkeypatch.setattr(tf_trainer, "reduce_per_replica", lambda values, strategy, reduction: (
        keras.tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)))
    for cls in (keras.callbacks.ModelCheckpoint, keras.callbacks.BackupAndRestore):
        monkeypatch.setattr(cls, "_save_model", lambda self, *args, **kwargs: None)
    try:
        assert distribute.needs_workaround() == {
            "symbolic_build": True, "reduce_logs": False, "checkpoint_paths": False}
        assert distribute.enable_multi_worker_fit() == ("symbolic_build",)
    finally:
        distribute.disable_multi_worker_fit()


def test_enabled_fit_without_strategy_is_unchanged(tmp_path):
    """On one device the patched methods run Keras's own code: same result, bit for bit."""
    results = []
    for enable in (False, True):
        if enable:
            distribute.enable_multi_worker_fit()
        try:
            fit_worker.fit("grda", str(tmp_path / str(enable)), tf.distribute.get_strategy(), "single")
        finally:
            distribute.disable_multi_worker_fit()
        results.append(_load(tmp_path / str(enable) / "grda_single.npz"))
    for key in results[0]:
        np.testing.assert_array_equal(results[0][key], results[1][key])


def test_checkpoint_paths_chief_and_worker(tmp_path):
    chief, worker = multi_worker_fit._ProbeStrategy(), multi_worker_fit._ProbeStrategy()
    chief.extended.should_checkpoint = True
    path = str(tmp_path / "ckpt" / "{epoch:02d}.keras")
    assert distribute.checkpoint_paths.worker_path(path, chief) == path
    assert distribute.checkpoint_paths.worker_path(path, worker) == str(
        tmp_path / "ckpt" / "workertemp_1" / "{epoch:02d}.keras")
    os.makedirs(tmp_path / "ckpt" / "workertemp_1")
    distribute.checkpoint_paths.remove_worker_dir(str(tmp_path / "ckpt"), chief)
    assert os.path.isdir(tmp_path / "ckpt" / "workertemp_1")
    distribute.checkpoint_paths.remove_worker_dir(str(tmp_path / "ckpt"), worker)
    assert os.listdir(tmp_path / "ckpt") == []


@pytest.mark.slow
def test_workers_installed_every_needed_part(results):
    out, _ = results
    needed = [p for p, need in distribute.needs_workaround().items() if need]
    for task in (0, 1):
        with open(os.path.join(out, f"installed_{task}.json")) as f:
            assert json.load(f) == needed


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNS)
def test_two_workers_end_identical_and_equal_one_process(results, name):
    out, _ = results
    w0, w1 = (_load(os.path.join(out, f"{name}_{task}.npz")) for task in (0, 1))
    single = _load(os.path.join(out, "single", f"{name}_single.npz"))
    assert w0.keys() == w1.keys() == single.keys()
    for key in w0:
        # Every weight and optimizer variable (iterations, GRDA's threshold,
        # quantized momenta, SWA averages, SVRG snapshots) holds the same bits
        # on both workers ...
        np.testing.assert_array_equal(w0[key], w1[key], err_msg=key)
        # ... and equals one device on the same global batches, up to the
        # summation order of the all-reduce.
        np.testing.assert_allclose(w0[key], single[key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.slow
def test_callbacks_ran_under_the_strategy(results):
    out, _ = results
    pruned = _load(os.path.join(out, "pruned_swa_0.npz"))
    single = _load(os.path.join(out, "single", "pruned_swa_single.npz"))
    # SparsityLogger logged every epoch; pruning reached its 50% target.
    assert pruned["sparsity"].shape == (fit_worker.EPOCHS,)
    assert pruned["sparsity"][-1] == pytest.approx(0.45, abs=0.02)
    np.testing.assert_array_equal(pruned["sparsity"], single["sparsity"])


@pytest.mark.slow
def test_chief_writes_the_keras_checkpoints(results):
    out, _ = results
    assert glob.glob(os.path.join(out, "**", "workertemp_*"), recursive=True) == []
    assert sorted(os.listdir(os.path.join(out, "ckpt_grda"))) == ["e1.keras", "e2.keras", "e3.keras"]
    # BackupAndRestore deleted its backup at the end of each finished run.
    assert glob.glob(os.path.join(out, "backup_*")) == []
    restored = keras.saving.load_model(os.path.join(out, "ckpt_grda", "e3.keras"))
    final = _load(os.path.join(out, "grda_0.npz"))
    for i, w in enumerate(restored.get_weights()):
        np.testing.assert_array_equal(w, final[f"w{i}"])
    for i, v in enumerate(restored.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(v), final[f"opt{i}"])


@pytest.mark.slow
def test_killed_worker_resumes_from_backup_and_ends_as_uninterrupted(results):
    out, facts = results
    # Worker 1 SIGKILLed itself; worker 0, blocked in a collective, was stopped.
    assert facts["returncodes"][1] == -9
    # The chief's epoch-0 backup; no worker file next to it.
    assert facts["backup_metadata"] == {"epoch": 1, "batch": 0}
    assert facts["backup_files"] == ["latest.weights.h5", "training_metadata.json"]
    uninterrupted = _load(os.path.join(out, "grda_0.npz"))
    for task in (0, 1):
        resumed = _load(os.path.join(out, f"grda_killed_{task}.npz"))
        # fit restarted at epoch 1: its history holds epochs 1 and 2 only.
        np.testing.assert_array_equal(resumed.pop("loss"), uninterrupted["loss"][1:])
        for key, value in resumed.items():
            np.testing.assert_array_equal(value, uninterrupted[key], err_msg=key)
