"""`python -m edge.datasets`: inspect a dataset folder or convert it to SPIRE COCO-keypoint JSON.

    python -m edge.datasets info SRC [--format F] [--split S]
    python -m edge.datasets convert SRC --format F --split S[,S2...] --out DST [--exclude LIST]
"""
from __future__ import annotations

import argparse
import sys
import warnings

from edge.cli import run_cli

from . import FORMATS, open_dataset, write_spire_json
from .core import DatasetWarning


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m edge.datasets", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("info", "convert"):
        p = sub.add_parser(name)
        p.add_argument("src", help="dataset folder (the one holding images/)")
        p.add_argument("--format", default="auto", choices=("auto", *FORMATS))
        p.add_argument("--split", default="train", help="list name(s), comma-separated, a list file, or 'all'")
        p.add_argument("--exclude", default=None, help="list file of names to leave out")
        p.add_argument("--centroid", default="geometric", choices=("geometric", "intensity"))
        p.add_argument("--stride", type=int, default=1, help="video-clip layout: every k-th frame of each clip")
        if name == "convert":
            p.add_argument("--out", required=True, help="destination folder (SPIRE JSON layout)")
    return ap


def _main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "convert":  # before any frame is read: an --out under a file cannot be written
        from edge.argcheck import check_out_path

        check_out_path(args.out)
    warnings.simplefilter("ignore", DatasetWarning)  # problems are printed below instead
    for split in args.split.split(","):
        ds = open_dataset(args.src, args.format, split, exclude=args.exclude, centroid=args.centroid,
                          stride=args.stride)
        if args.cmd == "info":
            if all(e.points is not None for e in ds.entries):  # labels stored as points: no decoding
                counts = [len(e.points) for e in ds.entries]
            else:
                counts = [len(ds[i].points) for i in range(len(ds))]
            clips = f" in {len(ds.clips)} clips (stride {args.stride})" if ds.format == "video" else ""
            print(f"{ds.root}: format {ds.format}, split {split}: {len(ds)} frames{clips}, {sum(counts)} targets, "
                  f"{sum(c == 0 for c in counts)} target-free frames")
        else:
            path = write_spire_json(ds, args.out, split=split)
            print(f"{split}: {len(ds)} frames -> {path}")
        for p in ds.problems:
            print(f"  warning: {p}")
    return 0


def main(argv=None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
