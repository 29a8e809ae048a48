"""Pruning under MirroredStrategy (2 logical CPUs) equals single-device training."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_pruned_training_on_2_replicas_matches_one_device():
    completed = subprocess.run(
        [sys.executable, "-m", "tests.pruning.mirrored_pruning"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    for kind, result in results.items():
        assert result["masks_equal"], (kind, result)
        assert result["max_abs_diff"] <= 1e-5, (kind, result)  # all-reduce round-off
    assert results["magnitude"]["sparsity"] == pytest.approx(0.6, abs=0.02)
