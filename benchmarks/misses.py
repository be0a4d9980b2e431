"""`python -m benchmarks.misses [--model M] --data ROOT... --split val`: what the targets a model misses are.

Why: recall is what the detector lacks on frames it never saw, and the remedy depends on the kind of
miss: a threshold change helps a target whose peak is just under it, data or architecture one that
gets no response at all. Each set is scored once through the runtime path (`edge.scoring.score`,
the model's own threshold) while every candidate down to `--floor` is kept; each missed label is
put in the first class that applies:

    near edge    within EDGE_PX of the frame border (tiles and padding are thinnest there)
    below thr    a candidate within the hit radius, scoring under the threshold: the operating point
    off centre   a candidate at the threshold within OFF_CENTRE_PX: a large target or a box centre
    faint        no candidate, and the target hardly stands out (SCR < FAINT_SCR, edge.metrics.scr)
    in clutter   no candidate although it stands out: the background fooled the network

Writes `OUT/misses.json` and `OUT/misses.md` (one row per set) in a new run folder.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.cli import run_cli
from edge.metrics.constants import HIT_RADIUS_PX
from edge.metrics.matching import pairwise_distances
from edge.metrics.points import PointMetrics
from edge.metrics.scr import measure_scr
from edge.outputs.runfolders import check_out_path, save_report
from edge.scoring import SourceFrames, score
from edge.sources import open_source

CLASSES = ("near edge", "below thr", "off centre", "faint", "in clutter")
EDGE_PX = 8.0
OFF_CENTRE_PX = 12.0
FAINT_SCR = 2.0


@dataclass
class MissCounts:
    """Missed labels of one set by class, out of its labels."""

    targets: int = 0
    found: int = 0
    classes: dict = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))

    def row(self, name: str) -> str:
        missed = self.targets - self.found
        cells = " | ".join(f"{self.classes[c]} ({self.classes[c] / max(missed, 1):.0%})" for c in CLASSES)
        return f"| {name} | {self.targets} | {self.found / max(self.targets, 1):.3f} | {missed} | {cells} |"


def classify(frame: np.ndarray, gt: np.ndarray, xy: np.ndarray, scores: np.ndarray, thr: float) -> list[str]:
    """The class of every label of one frame that no point at `thr` found (CLASSES, first that applies)."""
    if not len(gt):
        return []
    kept = xy[scores >= thr]
    d_kept = pairwise_distances(gt, kept) if len(kept) else np.full((len(gt), 1), np.inf)
    d_all = pairwise_distances(gt, xy) if len(xy) else np.full((len(gt), 1), np.inf)
    h, w = frame.shape[:2]
    scr = None  # measured only on a frame that has a miss without any candidate (the per-frame cost)
    out = []
    for i, (x, y) in enumerate(gt):
        if d_kept[i].min() <= HIT_RADIUS_PX:
            continue
        if min(x, y, w - 1 - x, h - 1 - y) < EDGE_PX:
            out.append("near edge")
        elif d_all[i].min() <= HIT_RADIUS_PX:
            out.append("below thr")
        elif d_kept[i].min() <= OFF_CENTRE_PX:
            out.append("off centre")
        else:
            scr = measure_scr(frame, gt) if scr is None else scr
            out.append("faint" if np.isnan(scr[i]) or scr[i] < FAINT_SCR else "in clutter")  # inf: on a flat sky
    return out


def misses_of(predictor, root: str, split: str, stride: int, floor: float, progress: bool) -> MissCounts:
    """Score one set at the model's threshold and class its misses from the candidates down to `floor`."""
    thr = predictor.conf
    counts = MissCounts()

    def on_frame(fr, pts):
        gt = np.asarray(fr.points, np.float64).reshape(-1, 2)
        counts.targets += len(gt)
        for c in classify(fr.frame, gt, pts.xy.astype(np.float64), pts.scores, thr):
            counts.classes[c] += 1

    source = open_source(root, None, split, stride)
    try:
        res = score(predictor, SourceFrames(source), thr=min(floor, thr), on_frame=on_frame, progress=progress,
                    desc=f"  {Path(root).name}", metrics=PointMetrics())  # frames kept: scored at `thr` below
    finally:
        source.close()
    counts.found = int(res.compute(thr)["tp"])
    return counts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.misses", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="artifact folder or ladder name (default: the default model)")
    p.add_argument("--backend", default=None, help="runtime (default: the artifact's)")
    p.add_argument("--data", nargs="+", required=True, help="labelled roots, each classed on its own")
    p.add_argument("--split", default="val", help="the VALIDATION list (never a test split)")
    p.add_argument("--frame-stride", type=int, default=1, help="video roots: every k-th frame")
    p.add_argument("--floor", type=float, default=0.1, help="lowest candidate score kept to class a miss")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="runs/misses", help="run folder (a new one if it holds a run)")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv=None) -> int:
    from edge.inference.predictor import Predictor
    from edge.model.zoo import resolve_artifact

    a = build_parser().parse_args(argv)
    check_out_path(a.out, "--out")  # before the scoring, not after it
    model = resolve_artifact(a.model, a.backend or "openvino") if a.model else None
    pred = Predictor(model, backend=a.backend, threads=a.threads)
    rows, table = {}, []
    for root in a.data:
        c = misses_of(pred, root, a.split, a.frame_stride, a.floor, not a.quiet)
        rows[Path(root).name] = {"targets": c.targets, "found": c.found, "misses": dict(c.classes)}
        table.append(c.row(Path(root).name))
    head = ("| set | targets | recall | missed | " + " | ".join(CLASSES) + " |\n|---|---:|---:|---:|"
            + "---:|" * len(CLASSES))
    md = (f"misses of {pred.model_path} at threshold {pred.conf} ({a.split}):\n\n{head}\n"
          + "\n".join(table) + "\n")
    out = save_report(a.out, "misses", {"model": str(pred.model_path), "thr": pred.conf, "sets": rows}, md)
    print(md + f"saved: {out}/misses.md")
    return 0

if __name__ == "__main__":
    sys.exit(run_cli(main))
