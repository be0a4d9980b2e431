#!/usr/bin/env bash
# Benchmark table on any arm64 Linux board: run on the device (from anywhere); see profile.json for the set-up.
#   bash boards/arm64-generic/bench.sh [--frames 100] [--data DATA]   (extra flags go to benchmarks.run)
set -euo pipefail
BOARD=arm64-generic
BACKENDS="${BACKENDS:-onnxruntime tflite}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../common.sh"
bench "$@"
