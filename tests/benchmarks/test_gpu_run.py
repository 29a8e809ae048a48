"""benchmarks/gpu/run.sh on a machine without a GPU: one clear line, nothing written, exit 0."""

import importlib.util
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu", "run.sh")


def _gpu_bench():
    spec = importlib.util.spec_from_file_location(
        "gpu_bench", os.path.join(ROOT, "benchmarks", "gpu", "gpu_bench.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_sh_is_valid_bash_and_runs_gpu_bench():
    subprocess.run(["bash", "-n", SCRIPT], check=True)
    with open(SCRIPT) as f:
        assert 'exec python benchmarks/gpu/gpu_bench.py "$@"' in f.read()


def test_without_a_gpu_every_gpu_row_is_skipped_with_one_line(tmp_path, capsys):
    # The test session hides GPUs (CUDA_VISIBLE_DEVICES="" in conftest).
    assert _gpu_bench().main(["--out", str(tmp_path / "gpu")]) == 0
    out = capsys.readouterr().out
    assert out == ("gpu_bench: no GPU visible to TensorFlow: skipping every GPU row "
                   "(steps, quantizer, scaling); nothing written.\n")
    assert not (tmp_path / "gpu").exists()


def test_unknown_section_is_named(capsys):
    with pytest.raises(SystemExit):
        _gpu_bench().main(["--sections", "steps,speed"])
    assert "--sections: unknown ['speed']" in capsys.readouterr().err
