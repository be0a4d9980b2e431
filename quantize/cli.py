"""Command-line plumbing shared by `python -m quantize.ptq` and `python -m quantize.qat`.

Why: both take the same model, data and output flags and must fail the same way — a user error
is one line (`error: <message>`, exit 2), never a traceback (docs/ARCHITECTURE.md).
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from edge.cli import run_cli


def add_common(p: argparse.ArgumentParser, weights_required: bool = False, calibration: bool = True) -> None:
    """Flags both tools share: model, calibration/validation data, output, fidelity."""
    p.add_argument("--weights", required=weights_required, default=None,
                   help="FP32 checkpoint (.pt or its folder); default: the shipped model")
    p.add_argument("--imgsz", type=int, default=None, help="input size S (multiple of 32); default: the checkpoint's")
    if calibration:
        p.add_argument("--frames", type=int, default=300, help="calibration frames (>= 100 recommended)")
    p.add_argument("--split", default="train", help="split of --data to calibrate/train on (never 'test')")
    p.add_argument("--val-data", default=None,
                   help="validation root for the fidelity report; default: --data when it has the --val-split list")
    p.add_argument("--val-split", default="val", help="validation split name (default: val)")
    p.add_argument("--val-frames", type=int, default=50, help="frames for the fidelity report (default 50)")
    p.add_argument("--ignored-scope", nargs="*", default=None,
                   help="module paths or node names kept in FP32 besides the head (e.g. stage4.0); "
                        "default: the architecture's INT8 recipe (spire.models ModelCfg.int8); alone: none")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for the fidelity/latency runs")
    p.add_argument("--bench-runs", type=int, default=30, help="latency runs per model in the report (0: skip)")
    p.add_argument("--no-fidelity", action="store_true", help="skip the fidelity report")
    from quantize.sanity import DEFAULT_MAX_DROP

    p.add_argument("--max-drop", type=float, default=DEFAULT_MAX_DROP,
                   help=f"fail (exit 2) when INT8 F1 falls more than this many points below FP32 "
                        f"(default {DEFAULT_MAX_DROP:g}; the artifact and its fidelity.json stay)")
    p.add_argument("--allow-drop", action="store_true", help="keep going whatever the F1 drop (report only)")
    p.add_argument("--seed", type=int, default=0)


def run_main(fn: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser, argv=None) -> int:
    """Parse, run, and turn the package's errors into one line + exit code 2 (edge.cli); Ctrl-C exits 130."""
    def main(argv) -> int:
        args = parser.parse_args(argv)
        try:
            return int(fn(args) or 0)
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 130

    return run_cli(main, argv)
