"""Every optimizer under MirroredStrategy equals single-device training.

Runs `tests/optimizers/mirrored_equivalence.py` in a subprocess with N
logical CPU devices (N = 2 and 4), so CI needs no GPU.
"""

import json
import os
import subprocess
import sys

import pytest

from tf_lowprec.optimizers import registry

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# SVRG/HALP need their variance-reduced train step; tests/optimizers/test_svrg.py
# and test_halp.py check them under MirroredStrategy.
NEEDS_TRAIN_STEP = {"svrg", "halp"}
TF_LOWPREC = ["grda", "grda+clipnorm", "grda+global_clipnorm", "grda+clipvalue",
              "proximal_sgd", "proximal_adagrad", "proximal_sgd+clipnorm",
              "proximal_adagrad+global_clipnorm"]


def _run(replicas, names, sparse_names=TF_LOWPREC):
    completed = subprocess.run(
        [sys.executable, "-m", "tests.optimizers.mirrored_equivalence", str(replicas),
         ",".join(names), ",".join(sparse_names)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _assert_equivalent(results):
    for name, r in results.items():
        assert r["replicas_identical"], name
        # float32 round-off of a sum split across replicas, over 8 steps
        assert r["max_abs_diff"] <= 2e-6 * max(1.0, r["max_abs_weight"]), (name, r)


@pytest.mark.slow
def test_every_registered_optimizer_on_2_replicas():
    names = sorted((set(registry.available()) - NEEDS_TRAIN_STEP) | set(TF_LOWPREC))
    names.append("keras_sgd+clipnorm")
    results = _run(2, names)
    control = {k: results.pop(k) for k in list(results) if k.startswith("keras_sgd+clipnorm")}
    _assert_equivalent(results)
    # Keras clips each replica's gradient before the all-reduce: the same
    # check catches it, which is why tf_lowprec optimizers clip afterwards.
    assert control["keras_sgd+clipnorm"]["max_abs_diff"] > 1e-3


@pytest.mark.slow
def test_tf_lowprec_optimizers_on_4_replicas():
    _assert_equivalent(_run(4, TF_LOWPREC))
