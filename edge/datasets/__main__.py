"""`python -m edge.datasets`: inspect a dataset folder, convert it to SPIRE COCO-keypoint JSON, or import labels.

    python -m edge.datasets info SRC [--format F] [--split S]
    python -m edge.datasets convert SRC --format F --split S[,S2...] --out DST [--exclude LIST]
    python -m edge.datasets convert EXPORT --from cvat|labelstudio|coco --out DS [--videos DIR] [--split train]
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from edge.cli import run_cli

from . import FORMATS, open_dataset, write_spire_json
from .core import DatasetWarning
from .labeltools import TOOLS, check_out_name, import_labels


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
            p.add_argument("--out", required=True, help="destination folder (SPIRE JSON layout; with --from the "
                           "video layout for video tasks; a new or empty one)")
            p.add_argument("--exist-ok", action="store_true", help="--out already holds files: add these splits "
                           "to it (images and lists of the same name are replaced)")
            p.add_argument("--from", dest="tool", choices=TOOLS, help="SRC is a labelling tool's export (a file or a "
                           "folder of them): CVAT 1.1 XML, Label Studio JSON or COCO keypoints; --split names the "
                           "list written (default train)")
            p.add_argument("--videos", "--images", dest="media", help="with --from: the folder holding the videos "
                           "or images the export names (default: the export's folder)")
    return ap


def _main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "convert":  # before any frame is read: --out must be creatable and new (or --exist-ok)
        _check_out(args.out, args.exist_ok)
    warnings.simplefilter("ignore", DatasetWarning)  # problems are printed below instead
    if args.cmd == "convert" and args.tool:
        print(import_labels(args.src, args.tool, args.out, args.media, args.split))
        return 0
    if args.cmd == "convert":
        check_out_name(Path(args.out))  # `--out points.json` once made a folder of that name (issue 25)
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


def _check_out(out: str, exist_ok: bool) -> None:
    """Before any frame is read: --out must be creatable, and a folder holding files is written only with --exist-ok.

    Why: convert into a used folder replaced same-named images and lists silently (another
    dataset's, or an earlier conversion's). The same rule as run folders, with one difference:
    --exist-ok adds to the folder instead of taking OUT2, because adding splits to one dataset
    folder in several calls is what convert is for.
    """
    from edge.outputs.runfolders import OutputFolderError, check_out_path, is_used

    check_out_path(out, "--out")
    if is_used(out) and not exist_ok:
        raise OutputFolderError(f"--out {out} already holds files; pass another --out, or --exist-ok to add "
                                "these splits to it (images and lists of the same name are replaced)")


def main(argv=None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
