"""benchmarks/gpu/run.sh on a machine without a GPU: one clear line, nothing written, exit 0."""

import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_run_sh_skips_gpu_rows_without_a_gpu(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(["bash", os.path.join(ROOT, "benchmarks", "gpu", "run.sh"),
                           "--out", str(tmp_path / "gpu")],
                          check=False, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert ("no GPU visible to TensorFlow: skipping every GPU row (steps, quantizer, scaling)"
            in done.stdout)
    assert not (tmp_path / "gpu").exists()
