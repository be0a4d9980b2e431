"""Command line for the model zoo: list variants with their cost, import official weights.

    python -m spire.models --summary [--imgsz 512] [--models 'hrpe*'] [--json]
    python -m spire.models --import-official SPIRE-SIRST4-512-epoch230-lr0.005.pth --out weights/spire-sirst4
"""
from __future__ import annotations

import argparse
import json
import sys

from edge.cli import run_cli
from edge.errors import SpireEdgeError


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m spire.models", description=__doc__.splitlines()[0])
    ap.add_argument("--summary", action="store_true", help="table of params and MACs per model")
    ap.add_argument("--imgsz", type=int, default=512, help="square input size for MACs (default 512)")
    ap.add_argument("--models", default="*", help="wildcard over model names (default '*')")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    ap.add_argument("--import-official", metavar="PTH", help="official SPIRE .pth to convert")
    ap.add_argument("--out", help="output folder for --import-official")
    args = ap.parse_args(argv)
    if args.imgsz <= 0 or args.imgsz % 32:
        raise SpireEdgeError(f"--imgsz {args.imgsz}: must be a positive multiple of 32 (e.g. 512)")
    if args.import_official:
        if not args.out:
            raise SpireEdgeError("--import-official needs --out FOLDER (where the checkpoint and "
                                 "metadata.json go)")
        from .official import import_official

        print(import_official(args.import_official, args.out))
    if args.summary or not args.import_official:
        from .summary import format_table, summarize

        rows = summarize(args.models, args.imgsz)
        if not rows:
            raise SpireEdgeError(f"--models {args.models!r}: matches no model; see "
                                 "`python -m spire.models --summary`")
        print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
