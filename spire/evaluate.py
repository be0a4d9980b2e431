"""`python -m spire.evaluate`: score a checkpoint on a labelled split, with curves and overlays.

Why: a number is only useful with the frames behind it. This tool runs a trained checkpoint (or
an official SPIRE release) on whole frames through `edge`'s preprocessing and decoder, prints the
SPIRE convention (P / R(Pd) / F1 / Fa, greedy matching within 5 px), the BasicIRSTD-style Pd
and false points per frame (3 px) and an order-independent Hungarian score, writes PR and
Pd-FPPI curves and PNG overlays of the frames with misses or false alarms.

    python -m spire.evaluate --data /data/sirst-v2 --split val --json val.json --out runs/eval
    python -m spire.evaluate --official SPIRE-SIRST4-512-epoch230-lr0.005.pth --data /data/nuaa-sirst

Without --weights/--official the shipped model is used (edge.zoo.default_checkpoint()).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from edge.codecs import build_codec
from edge.metrics.matching import match
from edge.metrics.points import PointMetrics
from edge.preprocess import PreprocessConfig, to_255

from . import engine
from .cli import default_weights, open_roots, run_main, write_json
from .data import Reporter, iter_eval_frames

# BGR colours of the overlays: ground truth, true positive, false alarm, miss.
GT, TP, FP, MISS = (0, 200, 0), (255, 80, 0), (0, 0, 255), (0, 255, 255)
NO_VR = 0.999999  # the codecs require vr < 1; this keeps every peak above 1e-6 x the best one
SWEEP_FLOOR = 0.05  # decode down to this score so the PR / Pd-FPPI sweeps have candidates


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m spire.evaluate", description=__doc__.split("\n\n")[0])
    a = p.add_argument
    src = p.add_mutually_exclusive_group()
    src.add_argument("--weights", help="checkpoint .pt or its folder (default: the shipped model)")
    src.add_argument("--official", help="an official SPIRE .pth (faithful hrpe, preprocessing and codec)")
    a("--data", nargs="+", required=True, help="dataset root(s)")
    a("--format", default="auto", choices=["auto", "nuaa", "basicirstd", "spire-json", "lesps", "video"])
    a("--split", default="test", help="list name (S.txt in the NUAA layout), a .txt path, or 'all'")
    a("--frame-stride", type=int, default=1, help="video-clip roots: score every k-th frame of each clip")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--imgsz", type=int, help="letterbox whole frames to S (default: the model's own mode)")
    g.add_argument("--native", action="store_true", help="whole frames at native resolution, padded to 32")
    a("--no-vr", action="store_true", help="turn off SPIRE's 65 %% relative-peak rule (faithful codecs)")
    a("--thr", type=float, help="decode threshold (default: the model's codec)")
    a("--max-dist", type=float, default=5.0, help="hit radius in image px (SPIRE: 5)")
    a("--max-frames", type=int, default=0, help="evaluate the first N frames only (0: all)")
    a("--json", help="write the metrics here")
    a("--out", help="folder for curves and overlays")
    a("--max-overlays", type=int, default=20)
    a("--threads", type=int)
    a("--device", default="auto")
    a("--quiet", action="store_true")
    return p


def load_model(weights: str | None, official: str | None):
    """(model, PreprocessConfig, codec, description) for a checkpoint, an official file or the default."""
    from spire.models import CheckpointError, load_checkpoint, load_official

    if official:
        model = load_official(official)
        cfg = model.cfg
        return model, cfg.preprocess_config(), cfg.build_codec(), {"official": str(official)}
    path = Path(weights) if weights else default_weights()
    try:
        model, ckpt = load_checkpoint(path)
    except CheckpointError as e:
        if "no 'arch'" not in str(e):
            raise
        return load_model(None, str(path))  # an official release passed as --weights
    meta = ckpt.get("meta") or {}
    cfg = model.cfg
    pre = PreprocessConfig.from_dict(meta["preprocess"]) if meta.get("preprocess") else cfg.preprocess_config()
    codec = build_codec(meta["codec"]) if meta.get("codec") else cfg.build_codec()
    return model, pre, codec, {"weights": str(path), "epoch": ckpt.get("epoch")}


def adjust(pre: PreprocessConfig, codec, imgsz: int | None, no_vr: bool, thr: float | None):
    """Apply --imgsz / --no-vr / --thr to the model's preprocessing and codec."""
    cd = codec.to_dict()
    if imgsz and (imgsz <= 0 or imgsz % 32):
        from .cli import UsageError

        raise UsageError(f"--imgsz {imgsz}: must be a positive multiple of 32 (e.g. {max(32, imgsz // 32 * 32)})")
    if imgsz:
        pre = dataclasses.replace(pre, imgsz=int(imgsz))
        cd["input_size"] = int(imgsz)
    if no_vr:
        cd["vr"] = NO_VR
    if thr is not None:
        cd["thr"] = float(thr)
    return pre, build_codec(cd)


def to_bgr8(frame: np.ndarray, pre: PreprocessConfig) -> np.ndarray:
    """Any frame as an 8-bit BGR picture for drawing (16-bit through the model's AGC)."""
    img = np.clip(to_255(frame, pre.norm), 0, 255).astype(np.uint8)
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR)


def draw_overlay(frame_bgr: np.ndarray, gt: np.ndarray, pred: np.ndarray, max_dist: float, method: str) -> np.ndarray:
    """GT circles green, true positives blue, false alarms red, misses yellow (2x for small frames)."""
    m = match(gt, pred, max_dist, method)
    hit, tp = m.gt_matched(), m.pred_matched()
    k = 2 if max(frame_bgr.shape[:2]) < 640 else 1
    img = cv2.resize(frame_bgr, None, fx=k, fy=k, interpolation=cv2.INTER_NEAREST) if k > 1 else frame_bgr.copy()
    r = max(4, int(round(max_dist * k)))

    def pt(p):
        return int(round((p[0] + 0.5) * k - 0.5)), int(round((p[1] + 0.5) * k - 0.5))

    for p, h in zip(gt, hit):
        cv2.circle(img, pt(p), r, GT if h else MISS, 1, cv2.LINE_AA)
    for p, t in zip(pred, tp):
        c = pt(p)
        cv2.drawMarker(img, c, TP if t else FP, cv2.MARKER_CROSS, 2 * r, 1, cv2.LINE_AA)
    text = f"TP {m.tp}  FP {m.fp}  miss {m.fn}"
    cv2.putText(img, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def evaluate(args) -> dict:
    """Run the evaluation described by parsed `args`; returns the result dict (also --json)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    info = engine.setup_distributed(args.device)
    model, pre, codec, source = load_model(args.weights, args.official)
    pre, codec = adjust(pre, codec, args.imgsz, args.no_vr, args.thr)
    native = bool(args.native) or (not args.imgsz and not pre.scale_up)
    model.to(info.device).eval()
    reporter = Reporter()
    sets = open_roots(args.data, args.format, args.split, reporter=reporter, stride=args.frame_stride)
    metrics = PointMetrics(max_dist=args.max_dist)
    records = []  # (set index, frame index, name, gt, kept predictions, errors)

    def on_frame(fr, pts, hm):
        keep = pts.scores >= codec.thr
        pred = pts.xy[keep].astype(np.float64)
        m = match(fr.points, pred, args.max_dist, "greedy")
        records.append((k, fr.index, fr.name, fr.points, pred, m.fp + m.fn))

    t0 = time.perf_counter()
    spf = []
    for k, ds in enumerate(sets):
        frames = iter_eval_frames(ds, pre, native, reporter)
        if args.max_frames:
            from itertools import islice

            frames = islice(frames, max(0, args.max_frames - len(metrics)))
        _, s = engine.score_frames(model, frames, codec, info.device, metrics, min(SWEEP_FLOOR, codec.thr),
                                   on_frame, progress=not args.quiet)
        spf.append(s)
    if not len(metrics):
        from edge.errors import DatasetError

        raise DatasetError(f"{', '.join(args.data)}: no readable frames in split {args.split!r}; check --split/--format")
    r = metrics.compute(codec.thr)
    basic = PointMetrics(max_dist=3.0, frames=metrics.frames).compute(codec.thr)
    hung = PointMetrics(max_dist=args.max_dist, method="hungarian", frames=metrics.frames).compute(codec.thr)
    result = {k: r[k] for k in ("precision", "recall", "f1", "fa_per_pixel", "fppi", "images", "targets",
                                "tp", "fp", "fn", "loc_error_px")}
    result.update({
        "pd": r["recall"], "threshold": codec.thr, "max_dist": args.max_dist, "matching": "greedy (SPIRE)",
        "basicirstd": {"pd": basic["pd"], "false_points_per_frame": basic["fppi"], "max_dist": 3.0},
        "hungarian": {k: hung[k] for k in ("precision", "recall", "f1", "fppi")},
        "model": source, "data": [str(d) for d in args.data], "split": args.split,
        "resolution": "native (padded to 32)" if native else f"letterbox {pre.imgsz}",
        "preprocess": pre.to_dict(), "codec": codec.to_dict(),
        "seconds_per_frame": float(np.mean(spf)), "seconds": time.perf_counter() - t0,
        "data_problems": reporter.messages,
    })
    if args.out:
        out = Path(args.out)
        rows = metrics.sweep(np.unique(np.r_[np.linspace(min(SWEEP_FLOOR, codec.thr), 1.0, 40), codec.thr]))
        from edge.metrics.curves import average_precision

        result["ap"] = average_precision(rows)
        result["curves"] = {k: str(v) for k, v in metrics.save_curves(out, [row["score_thr"] for row in rows]).items()}
        result["overlays"] = write_overlays(out / "overlays", sets, records, pre, args)
    print_report(result)
    if args.json:
        write_json(args.json, result)
    return result


def write_overlays(folder: Path, sets, records, pre, args) -> list[str]:
    """PNG overlays of the frames with the most misses + false alarms (at most --max-overlays)."""
    bad = sorted((rec for rec in records if rec[5] > 0), key=lambda rec: -rec[5])[: args.max_overlays]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for k, idx, name, gt, pred, _ in bad:
        try:
            frame = sets[k][idx].frame
        except Exception:  # the frame broke after scoring: skip the picture, keep the numbers
            continue
        path = folder / f"{name}.png"
        cv2.imwrite(str(path), draw_overlay(to_bgr8(frame, pre), gt, pred, args.max_dist, "greedy"))
        written.append(str(path))
    return written


def print_report(r: dict) -> None:
    print(f"{r['images']} images, {r['targets']} targets ({r['resolution']}, threshold {r['threshold']:g})")
    print(f"SPIRE convention (greedy, <= {r['max_dist']:g} px): P {r['precision'] * 100:.2f}  "
          f"R(Pd) {r['recall'] * 100:.2f}  F1 {r['f1'] * 100:.2f}  Fa {r['fa_per_pixel'] * 1e8:.2f} x1e-8 "
          f"[TP {r['tp']} FP {r['fp']} FN {r['fn']}]")
    b, h = r["basicirstd"], r["hungarian"]
    print(f"BasicIRSTD-style (<= 3 px): Pd {b['pd'] * 100:.2f}  false points/frame {b['false_points_per_frame']:.3f}")
    print(f"Hungarian (<= {r['max_dist']:g} px): P {h['precision'] * 100:.2f}  R {h['recall'] * 100:.2f}  "
          f"F1 {h['f1'] * 100:.2f}  false points/frame {h['fppi']:.3f}")
    if "ap" in r:
        print(f"AP {r['ap']:.4f}; curves and {len(r['overlays'])} overlay(s) in {Path(r['curves']['pr']).parent}")


def main(argv=None) -> int:
    evaluate(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
