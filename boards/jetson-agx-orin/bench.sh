#!/usr/bin/env bash
# Benchmark table on a jetson-agx-orin: run on the device (from anywhere); see profile.json for the set-up.
#   bash boards/jetson-agx-orin/bench.sh [--frames 100] [--data DATA]   (extra flags go to benchmarks.run)
set -euo pipefail
BOARD=jetson-agx-orin
BACKENDS="${BACKENDS:-tensorrt onnxruntime}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../common.sh"
source "$here/../jetson/bench_common.sh"
check_install
jetson_prepare
bench "$@"
