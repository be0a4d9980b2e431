"""`python -m export`: one checkpoint -> one edge artifact folder with its metadata.json.

    python -m export --target onnx                           # the shipped model, FP32
    python -m export --weights runs/train/best.pt --target openvino --precision int8 --data DATA
    python -m export --target tensorrt --precision fp16 --imgsz 640

Why a thin CLI: all rules live in export.formats (targets, precisions) and export.exporter
(dispatch, int8 hand-off to quantize.ptq); here only flags, the one-line error and the next step.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.cli import run_cli
from export.exporter import DEFAULT_OUT, ExportConfig, export_model, next_command
from export.formats import FORMATS, PRECISIONS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, default=None,
                   help="checkpoint (.pt) or its folder; default: the shipped model (weights/shipped/best.pt)")
    p.add_argument("--target", "--format", dest="target", required=True, help=f"one of {', '.join(FORMATS)}")
    p.add_argument("--precision", default="fp32", help=f"one of {', '.join(PRECISIONS)} (default fp32)")
    p.add_argument("--imgsz", type=int, default=None,
                   help="static input size (rounded up to a multiple of 32); default: the checkpoint's")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"parent folder of the artifact (default {DEFAULT_OUT})")
    q = p.add_argument_group("int8 (passed to quantize.ptq)")
    q.add_argument("--data", default=None, help="calibration dataset root (train/val split, never test)")
    q.add_argument("--split", default="train", help="calibration split (default train)")
    q.add_argument("--frames", type=int, default=None, help="calibration frames (quantize.ptq's default when unset)")
    q.add_argument("--ignored-scope", nargs="*", default=(), help="extra node names kept in float")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18; 17 for tensorrt)")
    p.add_argument("--no-lint", action="store_true", help="skip polygraphy's lint of TensorRT ONNX files")
    p.add_argument("--exist-ok", action="store_true", help="the artifact folder already holds files: write to "
                   "NAME2, NAME3, ... beside it (default: refuse; an existing folder is never replaced)")
    return p


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = ExportConfig(target=args.target, weights=args.weights, precision=args.precision, imgsz=args.imgsz,
                       out=args.out, data=args.data, split=args.split, frames=args.frames,
                       ignored_scope=tuple(args.ignored_scope or ()), opset=args.opset, lint=not args.no_lint,
                       exist_ok=args.exist_ok)
    folder = export_model(cfg)
    print(f"artifact: {folder}")
    print(f"next: {next_command(folder, args.target.strip().lower())}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
