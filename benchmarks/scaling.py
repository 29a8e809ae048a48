"""Scaling benchmark with the settings whose results are committed.

    python benchmarks/scaling.py                    # logical CPU devices, ~15 min on 2 cores
    python benchmarks/scaling.py --devices gpu      # on a machine with >= 4 GPUs

A thin wrapper over `tf-lowprec scale` (tf_lowprec/experiments/scaling.py);
any of its flags can be appended and override these defaults. Results go to
benchmarks/results/scaling_<devices>/.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tf_lowprec.experiments import scaling  # noqa: E402

DEFAULTS = [
    "--replicas", "1,2,4", "--models", "mlp,cnn", "--optimizers", "sgd,grda",
    "--batch-sizes", "128,512",
    "--batch-schedules", "30+10*epoch,50+50*epoch,500+50*epoch", "--schedule-epochs", "3",
    "--steps", "30", "--repeats", "3", "--warmup", "3",
]

if __name__ == "__main__":
    argv = sys.argv[1:]
    devices = argv[argv.index("--devices") + 1] if "--devices" in argv else "cpu"
    out = ["--out", os.path.join(os.path.dirname(__file__), "results", f"scaling_{devices}")]
    sys.exit(scaling.main(DEFAULTS + out + argv))
