"""Scaling benchmark with the settings whose results are committed.

    python benchmarks/scaling.py --workers 1,2      # worker processes on this machine's cores
    python benchmarks/scaling.py                    # logical CPU devices, ~15 min on 2 cores
    python benchmarks/scaling.py --devices gpu      # on a machine with >= 4 GPUs

A thin wrapper over `tf-lowprec scale` (tf_lowprec/experiments/scaling.py);
any of its flags can be appended and override these defaults.

* `--workers`: 1 vs N processes under MultiWorkerMirroredStrategy on
  127.0.0.1, each pinned to its share of the cores, MLP and CNN, SGD and
  GRDA, global batch 128/512/2048; about 20-30 min on an idle 2-core
  machine. Results in benchmarks/results/scaling_workers/.
* otherwise: replicas of one process under MirroredStrategy (logical CPU
  devices or GPUs). Results in benchmarks/results/scaling_<devices>/.
"""

import os
import sys

from tf_lowprec.experiments import scaling

COMMON = ["--models", "mlp,cnn", "--optimizers", "sgd,grda"]
REPLICAS = COMMON + [
    "--replicas", "1,2,4", "--batch-sizes", "128,512",
    "--batch-schedules", "30+10*epoch,50+50*epoch,500+50*epoch", "--schedule-epochs", "3",
    "--steps", "30", "--repeats", "3", "--warmup", "3",
]
WORKERS = COMMON + ["--batch-sizes", "128,512,2048", "--steps", "10", "--repeats", "3", "--warmup", "2"]


def argv_with_defaults(argv):
    """The `tf-lowprec scale` arguments: this benchmark's defaults, then `argv`."""
    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    if "--workers" in argv:
        return WORKERS + ["--out", os.path.join(results, "scaling_workers")] + argv
    devices = argv[argv.index("--devices") + 1] if "--devices" in argv else "cpu"
    return REPLICAS + ["--out", os.path.join(results, f"scaling_{devices}")] + argv


if __name__ == "__main__":
    sys.exit(scaling.main(argv_with_defaults(sys.argv[1:])))
