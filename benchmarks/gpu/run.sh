#!/usr/bin/env bash
# The prepared GPU run (under 8 minutes on one GPU):
#   ResNet-18 step-time ratios GRDA/SGD, LowPrecision/SGD, QAT/float (CIFAR-shaped
#   random data), quantizer throughput vs the device's elementwise bandwidth, and
#   MirroredStrategy scaling over the visible GPUs.
# Writes benchmarks/results/gpu/{step_time_ratios,quantizer_throughput}.csv and
# benchmarks/results/gpu/scaling/scaling.csv. Without a GPU it prints one line
# and skips every GPU row. Extra arguments go to benchmarks/gpu/gpu_bench.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python benchmarks/gpu/gpu_bench.py "$@"
