#!/usr/bin/env bash
# Benchmark table on an Intel x86-64 CPU: run on the device (from anywhere); see profile.json for the set-up.
#   bash boards/intel-x86/bench.sh [--frames 100] [--data DATA]   (extra flags go to benchmarks.run)
set -euo pipefail
BOARD=intel-x86
BACKENDS="${BACKENDS:-openvino onnxruntime}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../common.sh"
bench "$@"
