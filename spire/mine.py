"""`python -m spire.mine`: list a model's false alarms on TRAINING frames, for hard-negative views.

Why: the background views of an epoch are random crops of target-free frames, and a random
192 px crop of a 1280 px surveillance frame almost never holds the one glint, cloud edge or
building corner the model fires on; validation shows those few places are where the false
alarms come from. This tool runs a checkpoint through the runtime path (`edge.inference.predictor`,
torch backend, the same tiling `edge.run` uses) over the training split, keeps every point
scored at least `--thr` that is farther than `--max-dist` from every label, and writes them as
CSV (root, name, x, y, score). `spire.train --hard-negatives FILE --hard-ratio R` then centres
that share of the background views on them. Mine training frames only: mining the validation
split would select the model on the frames it was taught to ignore.

    python -m spire.mine --weights spire-n --data ../shared/data/nuaa-sirst ../shared/data/sirst-v2 \
        --split train --out runs/mine/hard_negatives.csv
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from edge.cli import run_cli
from edge.metrics.matching import HIT_RADIUS_PX, pairwise_distances
from edge.scoring import score

from .cli import UsageError, add_data_options, open_roots

FIELDS = ("root", "name", "x", "y", "score")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m spire.mine", description=__doc__.split("\n\n")[0])
    a = p.add_argument
    a("--weights", default=None, help="checkpoint, its folder or a ladder name (default: the shipped model)")
    add_data_options(p, data_help="training dataset root(s)", split="train",
                     split_help="the TRAINING list (never the validation one)",
                     stride=10, stride_help="video-clip roots: every k-th frame (as spire.train)")
    a("--thr", type=float, default=0.3, help="keep false alarms scored at least this (below the decode threshold: "
      "near-misses teach as much as the alarms themselves)")
    a("--max-dist", type=float, default=HIT_RADIUS_PX, help="a point within this many px of a label is a hit, not mined")
    a("--out", required=True, help="CSV to write (refused if it exists)")
    a("--threads", type=int)
    a("--quiet", action="store_true")
    return p


def false_alarms(points_xy: np.ndarray, scores: np.ndarray, labels: np.ndarray, max_dist: float):
    """Rows (x, y, score) of the predictions farther than `max_dist` from every label."""
    xy = np.asarray(points_xy, np.float64).reshape(-1, 2)
    sc = np.asarray(scores, np.float64).reshape(-1)
    if len(labels):
        far = pairwise_distances(np.asarray(labels, np.float64).reshape(-1, 2), xy).min(axis=0) > max_dist
    else:
        far = np.ones(len(xy), bool)
    return [(float(x), float(y), float(s)) for (x, y), s in zip(xy[far], sc[far])]


def read_hard_negatives(path) -> dict[tuple[str, str], np.ndarray]:
    """{(root folder name, frame name): (k, 2) float32 xy} from a `spire.mine` CSV (one-line errors)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--hard-negatives {p}: no such file; write it with python -m spire.mine --out {p}")
    out: dict[tuple[str, str], list] = {}
    with p.open(newline="") as f:
        rd = csv.DictReader(f)
        if rd.fieldnames is None or not set(FIELDS[:4]) <= set(rd.fieldnames):
            raise UsageError(f"--hard-negatives {p}: not a spire.mine CSV (needs columns {', '.join(FIELDS)}); "
                             "rewrite it with python -m spire.mine")
        for row in rd:
            out.setdefault((row["root"], row["name"]), []).append((float(row["x"]), float(row["y"])))
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def mine(args) -> int:
    import torch

    from .data import Reporter, iter_eval_frames
    from .evaluate import adjust, load_model
    from .torch_backend import torch_predictor

    out = Path(args.out)
    if out.exists():
        raise UsageError(f"--out {out}: exists; pass a new file (mined lists are never overwritten)")
    if args.threads:
        torch.set_num_threads(args.threads)
    from edge.model.zoo import named_checkpoint

    weights = named_checkpoint(args.weights) if args.weights else None
    model, pre, codec, source = load_model(str(weights) if weights else None, None)
    size = source.get("deployed") or pre.imgsz
    pre, codec = adjust(pre, codec, size, False, None)
    pred = torch_predictor(model, pre, codec, "auto", model_path=source["weights"])
    reporter = Reporter()
    sets = open_roots(args.data, args.format, args.split, reporter=reporter, stride=args.frame_stride)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows, seen = [], []  # mined CSV rows; per scored frame, whether it had a false alarm

    def keep_false_alarms(fr, pts):  # on_frame of edge.scoring.score: this frame's mined rows
        found = false_alarms(pts.xy, pts.scores, fr.points, args.max_dist)
        seen.append(bool(found))
        rows.extend((root, fr.name, f"{x:.2f}", f"{y:.2f}", f"{s:.4f}") for x, y, s in found)

    for ds in sets:
        root = Path(str(ds.root)).name
        score(pred, iter_eval_frames(ds, reporter), thr=args.thr, on_frame=keep_false_alarms,
              progress=not args.quiet, desc=f"mining {root}")
    frames_with = sum(seen)
    tmp = out.with_suffix(out.suffix + ".part")
    with tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        w.writerows(rows)
    tmp.replace(out)
    print(f"{len(rows)} false alarm(s) scored >= {args.thr:g} on {frames_with} training frame(s) of "
          f"{', '.join(str(d) for d in args.data)} ({args.split}) -> {out}")
    print(f"next: python -m spire.train ... --hard-negatives {out} --hard-ratio 0.5")
    return 0


def main(argv=None) -> int:
    return mine(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(run_cli(main))
