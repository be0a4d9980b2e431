"""`python -m spire.evaluate`: score a checkpoint on a labelled split, with curves and overlays.

Why: a number is only useful with the frames behind it. This tool runs a trained checkpoint (or
an official SPIRE release) through `edge.inference.predictor.Predictor` with the torch backend
(`spire.torch_backend`): the same read / preprocess / tile / decode path `edge.run` runs an
exported model through, at the size the checkpoint's exports were made, so the F1 here is the
F1 on the device (a checkpoint without exports yet is scored as training validated it: whole
frames, unless it letterboxes). It prints the SPIRE convention (P / R(Pd) / F1 / Fa, greedy
matching within 5 px), the BasicIRSTD-style Pd and false points per frame (3 px) and an
order-independent Hungarian score, writes PR and Pd-FPPI curves and PNG overlays of the frames
with misses or false alarms. `--mode native` scores whole frames at native resolution instead
(padded to 32, never cut into tiles); `--imgsz S` letterboxes every frame to S.

    python -m spire.evaluate --data /data/sirst-v2 --split val --json val.json --out runs/eval
    python -m spire.evaluate --official SPIRE-SIRST4-512-epoch230-lr0.005.pth --data /data/nuaa-sirst

Without --weights/--official the shipped model is used (edge.model.zoo.default_checkpoint()).
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

from edge.outputs.annotate import FrameInfo, annotate, frame_errors
from edge.cli import run_cli
from edge.codecs import build_codec
from edge.metrics.constants import BASICIRSTD_HIT_PX, HIT_RADIUS_PX, SWEEP_FLOOR
from edge.metrics.matching import match
from edge.metrics.points import PointMetrics
from edge.inference.predictor import MODES, default_mode
from edge.inference.preprocess import PreprocessConfig
from edge.scoring import score

from . import engine
from .cli import add_data_options, default_weights, open_roots, write_json
from .data import Reporter, iter_eval_frames
from .torch_backend import torch_predictor

NO_VR = 0.999999  # the codecs require vr < 1; this keeps every peak above 1e-6 x the best one


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m spire.evaluate", description=__doc__.split("\n\n")[0])
    a = p.add_argument
    src = p.add_mutually_exclusive_group()
    src.add_argument("--weights", help="checkpoint .pt or its folder (default: the shipped model)")
    src.add_argument("--official", help="an official SPIRE .pth (faithful hrpe, preprocessing and codec)")
    add_data_options(p, data_help="dataset root(s)", split="test",
                     split_help="list name (S.txt in the NUAA layout), a .txt path, or 'all'",
                     stride=1, stride_help="video-clip roots: score every k-th frame of each clip")
    a("--mode", choices=MODES, help="static: as edge.run on the checkpoint's exports (frames that fit padded to S, "
      "larger ones tiled; the default when it has exports, 'native' while it has none, 'resize' for --official) | "
      "auto (torch's own: frames that fit padded to 32, larger ones tiled) | tile | resize (letterbox to S) | "
      "native (whole frames, padded to 32)")
    a("--imgsz", type=int, help="input / tile size S (default: the size of the checkpoint's exports, else its own); "
      "without --mode: letterbox whole frames to S")
    a("--native", action="store_true", help="same as --mode native")
    a("--no-vr", action="store_true", help="turn off SPIRE's 65 %% relative-peak rule (faithful codecs)")
    a("--thr", type=float, help="decode threshold (default: the model's codec)")
    a("--max-dist", type=float, default=HIT_RADIUS_PX, help="hit radius in image px (SPIRE: %(default)s)")
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
    from spire.models.checkpoint import resolve_checkpoint

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
    meta = dict(ckpt.get("meta") or {})  # the model's contract (its sidecar's threshold and fit win)
    cfg = model.cfg
    pre = PreprocessConfig.from_dict(meta["preprocess"]) if meta.get("preprocess") else cfg.preprocess_config()
    codec = build_codec(meta["codec"]) if meta.get("codec") else cfg.build_codec()
    return model, pre, codec, {"weights": str(resolve_checkpoint(path)), "epoch": ckpt.get("epoch"),
                               "deployed": pre.imgsz if ckpt.get("deployed") else None}


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


def pick_mode(args, source: dict, deployed: int | None, scale_up: bool) -> str:
    """--mode, else --native, else letterbox for --imgsz alone or --official, else what edge.run does with
    the checkpoint's exports ('static': frames that fit padded to their input size, larger ones tiled),
    else, with no export yet, `edge.inference.predictor.default_mode` (whole frames, as training validated)."""
    if args.mode and args.native and args.mode != "native":
        from .cli import UsageError

        raise UsageError(f"--native and --mode {args.mode} disagree; pass one of them")
    if args.native:
        return "native"
    if args.mode:
        return args.mode
    if args.imgsz or "official" in source:
        return "resize"
    return "static" if deployed else default_mode("auto", deployed, scale_up)


def resolution(mode: str, size: int) -> str:
    """How the frames were run, in words (the result's 'resolution')."""
    return {"native": "native (padded to 32)", "resize": f"letterbox {size}", "tile": f"tiles of {size}",
            "static": f"as edge.run on the {size} px exports (frames that fit padded to {size}, larger ones tiled)",
            "auto": f"auto {size} (frames that fit padded to 32, larger ones tiled at {size})"}[mode]


def evaluate(args) -> dict:
    """Run the evaluation described by parsed `args`; returns the result dict (also --json)."""
    from edge.outputs.runfolders import check_out_path

    check_out_path(args.out)  # before the model runs: a path under a file fails now, in one line
    check_out_path(args.json, "--json", file=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    info = engine.setup_distributed(args.device)
    model, pre, codec, source = load_model(args.weights, args.official)
    deployed = source.get("deployed")  # its contract's input size, whatever folders exist here
    mode = pick_mode(args, source, deployed, pre.scale_up)
    size = args.imgsz or deployed or pre.imgsz
    pre, codec = adjust(pre, codec, size, args.no_vr, args.thr)
    pred = torch_predictor(model, pre, codec, mode, device=info.device,
                           model_path=source.get("weights") or source.get("official"))
    reporter = Reporter()
    sets = open_roots(args.data, args.format, args.split, reporter=reporter, stride=args.frame_stride)
    metrics = PointMetrics(max_dist=args.max_dist)
    records = []  # (set index, frame index, name, gt, kept predictions, errors)

    def on_frame(fr, pts):  # fr: an edge.scoring.LabelledFrame
        kept = pts.filter(codec.thr)
        m = match(fr.points, kept.xy.astype(np.float64), args.max_dist, "greedy")
        records.append((k, fr.index, fr.name, fr.points, kept, m.fp + m.fn))

    t0 = time.perf_counter()
    spf = []
    for k, ds in enumerate(sets):
        left = max(0, args.max_frames - len(metrics)) if args.max_frames else None
        res = score(pred, iter_eval_frames(ds, reporter), thr=min(SWEEP_FLOOR, codec.thr), metrics=metrics,
                    on_frame=on_frame, progress=not args.quiet, desc="evaluating", limit=left)
        spf.append(res.seconds_per_frame)
    if not len(metrics):
        from edge.errors import DatasetError

        raise DatasetError(f"{', '.join(args.data)}: no readable frames in split {args.split!r}; check --split/--format")
    r = metrics.compute(codec.thr)
    basic = PointMetrics(max_dist=BASICIRSTD_HIT_PX, frames=metrics.frames).compute(codec.thr)
    hung = PointMetrics(max_dist=args.max_dist, method="hungarian", frames=metrics.frames).compute(codec.thr)
    result = {k: r[k] for k in ("precision", "recall", "f1", "fa_per_pixel", "fppi", "images", "targets",
                                "tp", "fp", "fn", "loc_error_px")}
    result.update({
        "pd": r["recall"], "threshold": codec.thr, "max_dist": args.max_dist, "matching": "greedy (SPIRE)",
        "basicirstd": {"pd": basic["pd"], "false_points_per_frame": basic["fppi"], "max_dist": BASICIRSTD_HIT_PX},
        "hungarian": {k: hung[k] for k in ("precision", "recall", "f1", "fppi")},
        "model": source, "data": [str(d) for d in args.data], "split": args.split,
        "resolution": resolution(mode, pre.imgsz), "mode": mode,
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
        result["overlays"] = write_overlays(out / "overlays", sets, records, args)
    print_report(result)
    if args.json:
        write_json(args.json, result)
    return result


def write_overlays(folder: Path, sets, records, args) -> list[str]:
    """PNG overlays (edge.outputs.annotate, the pictures edge.run draws) of the frames with the most misses +
    false alarms (at most --max-overlays)."""
    bad = sorted((rec for rec in records if rec[5] > 0), key=lambda rec: -rec[5])[: args.max_overlays]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for k, idx, name, gt, pred, _ in bad:
        try:
            frame = sets[k][idx].frame
        except Exception:  # the frame broke after scoring: skip the picture, keep the numbers
            continue
        path = folder / f"{name}.png"
        errors = frame_errors(pred, gt, args.max_dist)
        cv2.imwrite(str(path), annotate(frame, pred, gt, FrameInfo(index=idx, name=name), errors=errors))
        written.append(str(path))
    return written


def print_report(r: dict) -> None:
    print(f"{r['images']} images, {r['targets']} targets ({r['resolution']}, threshold {r['threshold']:g})")
    print(f"SPIRE convention (greedy, <= {r['max_dist']:g} px): P {r['precision']:.4f}  "
          f"R(Pd) {r['recall']:.4f}  F1 {r['f1']:.4f}  Fa {r['fa_per_pixel'] * 1e8:.2f} x1e-8 "
          f"[TP {r['tp']} FP {r['fp']} FN {r['fn']}]")
    b, h = r["basicirstd"], r["hungarian"]
    print(f"BasicIRSTD-style (<= 3 px): Pd {b['pd']:.4f}  false points/frame {b['false_points_per_frame']:.3f}")
    print(f"Hungarian (<= {r['max_dist']:g} px): P {h['precision']:.4f}  R {h['recall']:.4f}  "
          f"F1 {h['f1']:.4f}  false points/frame {h['fppi']:.3f}")
    if "ap" in r:
        print(f"AP {r['ap']:.4f}; curves and {len(r['overlays'])} overlay(s) in {Path(r['curves']['pr']).parent}")


def main(argv=None) -> int:
    evaluate(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
