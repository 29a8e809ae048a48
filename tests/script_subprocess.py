"""Runs a test file as a script in a fresh Python process and reads its result.

TensorFlow's logical devices (two logical CPUs for a `MirroredStrategy`)
must be configured before TensorFlow initialises, which a pytest process
has long done. The tests that need them run their own file as a script, in
a fresh process without GPUs, and read the one JSON line it prints:

    results = script_results(__file__)  # the module's `results` fixture

    if __name__ == "__main__":
        _main()  # configures the devices, measures, prints one JSON line
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_test_script(path):
    """Runs `python path` from the repository root; returns its last JSON line as a dict.

    Fails the test with the end of the script's stderr if it exits non-zero.
    """
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3",
               KERAS_BACKEND="tensorflow", PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, os.path.abspath(path)], check=False,
                          capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def script_results(path):
    """A module-scoped fixture: `run_test_script(path)`, run once per test module."""

    @pytest.fixture(scope="module")
    def results():
        return run_test_script(path)

    return results
