"""The command line: fast help, one-line errors (exit 2), no tracebacks."""

import os
import shutil
import subprocess
import sys

import pytest

_QUIET_TF = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}


def _run(code, *args):
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120, env=_QUIET_TF)


def test_top_level_help_does_not_import_tensorflow():
    # What the console script does: argv[0] is the `tf-lowprec` script.
    code = ("import sys; sys.argv[0] = '/venv/bin/tf-lowprec'\n"
            "from tf_lowprec.experiments.cli import main\n"
            "rc = main(['--help'])\n"
            "print('TF-IMPORTED' if 'tensorflow' in sys.modules else 'NO-TF', rc)")
    result = _run(code)
    assert result.stdout.strip().endswith("NO-TF 0"), result.stdout + result.stderr
    assert "usage: tf-lowprec" in result.stdout
    assert result.stderr == ""  # no TensorFlow log lines


@pytest.mark.skipif(shutil.which("tf-lowprec") is None, reason="console script not installed")
def test_console_script_help_prints_no_tensorflow_output():
    result = subprocess.run(["tf-lowprec", "--help"], capture_output=True, text=True,
                            timeout=120, env=_QUIET_TF)
    assert result.returncode == 0 and "usage: tf-lowprec" in result.stdout
    assert result.stderr == ""


def test_plain_import_still_imports_and_registers_everything():
    import keras

    import tf_lowprec

    assert {"tf_lowprec.optimizers", "tf_lowprec.layers", "tf_lowprec.training"} <= set(sys.modules)
    assert keras.saving.get_registered_object("tf_lowprec>GRDA") is tf_lowprec.optimizers.GRDA
