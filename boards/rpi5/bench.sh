#!/usr/bin/env bash
# Benchmark table on a Raspberry Pi 5: run on the device (from anywhere); see profile.json for the set-up.
#   bash boards/rpi5/bench.sh [--frames 100] [--data DATA]   (extra flags go to benchmarks.run)
set -euo pipefail
BOARD=rpi5
BACKENDS="${BACKENDS:-tflite onnxruntime}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../common.sh"
bench "$@"
