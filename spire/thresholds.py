"""`python -m spire.thresholds --weights W --data ROOT... --split val`: choose a decode threshold.

Why: the threshold is a deployment choice made on validation, and the sets disagree (SIRST-V2's
large surveillance frames want a high one, faint drones in thermal video a low one). The
training-time pick (one joint threshold, whole frames) is not the runtime's: this scores each
validation root once through the runtime path (`edge.inference.predictor.Predictor`, the torch backend,
frames that fit run at their own size and larger ones tiled at `--imgsz`, as the OpenVINO export
runs) and prints, per root and threshold, P / R / F1, false points per frame and per target-free
frame. `python -m quantize.pick EXPORT_DIR --thr T --thr-rule "..."` (or the rung's release.json, quantize.release) sets it.

    python -m spire.thresholds --weights runs/abl/n_hp_last --data ../shared/data/sirst-v2 \\
        ../shared/data/ir-drone --split val --frame-stride 10
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from edge.cli import run_cli
from edge.metrics.matching import HIT_RADIUS_PX
from edge.metrics.points import PointMetrics
from edge.inference.predictor import MODES
from edge.scoring import score

from .cli import add_data_options, default_weights, open_roots, write_json
from .data import Reporter, iter_eval_frames
from .evaluate import adjust, load_model
from .torch_backend import torch_predictor

DEFAULT_THRS = (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m spire.thresholds", description=__doc__.split("\n\n")[0])
    a = p.add_argument
    a("--weights", default=None, help="checkpoint .pt or its folder (default: the shipped model)")
    add_data_options(p, data_help="validation root(s), each scored on its own", split="val",
                     split_help="the VALIDATION list (never a test split)",
                     stride=10, stride_help="video-clip roots: every k-th frame")
    a("--imgsz", type=int, default=512, help="tile size for frames larger than it (the exports' input)")
    a("--mode", default="auto", choices=MODES,
      help="how frames reach the network (edge.inference.predictor): auto = what OpenVINO/onnxruntime do (frames that fit at "
           "their own size), static = what fixed-input runtimes do (frames that fit padded to --imgsz)")
    a("--thr", type=float, nargs="+", default=list(DEFAULT_THRS), help="thresholds to report")
    a("--max-dist", type=float, default=HIT_RADIUS_PX, help="hit radius in image px (SPIRE: %(default)s)")
    a("--json", help="write the table here")
    a("--threads", type=int, default=None)
    a("--quiet", action="store_true")
    return p


def sweep(args) -> dict:
    """{root name: {threshold: PointMetrics.compute(threshold)}} over each root's frames, scored once."""
    if args.threads:
        torch.set_num_threads(args.threads)
    weights = args.weights or str(default_weights())
    model, pre, codec, _ = load_model(weights, None)
    floor = min(args.thr)
    pre, codec = adjust(pre, codec, args.imgsz, False, floor)
    pred = torch_predictor(model, pre, codec, args.mode, model_path=weights)
    out = {}
    for root in args.data:
        reporter = Reporter()
        (ds,) = open_roots([root], args.format, args.split, reporter=reporter, stride=args.frame_stride)
        metrics = PointMetrics(max_dist=args.max_dist)
        score(pred, iter_eval_frames(ds, reporter), thr=floor, metrics=metrics, progress=not args.quiet)
        out[Path(root).name] = {r["score_thr"]: r for r in metrics.sweep(args.thr)}
    return out


def print_table(table: dict) -> None:
    for name, rows in table.items():
        first = next(iter(rows.values()))
        print(f"{name}: {first['images']} frames, {first['targets']} targets, "
              f"{first['target_free_frames']} target-free")
        print("   thr      P      R     F1  false/frame  false/target-free frame")
        for t, r in rows.items():
            tf = r["fp_per_target_free_frame"]
            print(f"  {t:5.2f}  {r['precision']:.3f}  {r['recall']:.3f}  {r['f1']:.3f}  {r['fppi']:11.3f}  "
                  f"{'n/a' if tf is None or np.isnan(tf) else f'{tf:.3f}':>23}")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    table = sweep(args)
    print_table(table)
    if args.json:
        write_json(args.json, {k: {str(t): r for t, r in v.items()} for k, v in table.items()})
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
