"""Tracking benchmark: per-frame points vs confirmed tracks on labelled clips (ir-drone/val).

    python -m benchmarks.track [--data ../shared/data/ir-drone --split val] [--frame-stride 1]
        [--clips N] [--model ARTIFACT] [--tracker NAME=VALUE ...] [--sweep NAME=V1,V2 ...]
    python -m benchmarks.track --sweep-thr [--thr-grid T,..] [--mn M/N,..] [--birth B,..] [--img PNG] [--write-op]

Why: a tracker is worth its place only if it removes false alarms without losing targets; this
measures both on real thermal clips, with the standard tracking scores (MOTA, IDF1, HOTA,
identity switches from TrackEval, see benchmarks.track_metrics) and the tracker's own time per
frame (also on 10 synthetic targets; goal <= 0.3 ms). Goals: >= 3x fewer false points per frame
at <= 1 point of recall lost.

Detections come from `edge.inference.predictor.Predictor` (default: the shipped model for --backend) and
are cached per model sha256 and clip (benchmarks.track_data), so a tracker sweep costs seconds
and a new default model is picked up by rerunning the same command. Each row runs the tracker
exactly as `edge.run --track` does; only the registration shifts (ego-motion) come from the cache.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.track_data import ClipSet, clip_names, load_or_detect
from benchmarks.track_metrics import have_trackeval, score_points, score_tracks
from benchmarks.track_runs import plain, run_tracker, synthetic_speed  # noqa: F401  (benchmarks.track API)
from edge.tracking.tracker import TrackerConfig

CONF_LOW = 0.05  # cached detections: every peak above this (rows filter at their own threshold: exact, see
# benchmarks.track_sweep); also the "any threshold" of the miss classes
MTI_PX = 5.0  # the moving-target row's min_travel_px


def false_point_kinds(clips, conf: float, near_px: float = 20.0) -> dict:
    """Why the per-frame detector's false points are false (what a tracker can and cannot remove):
    'duplicate' a second peak within `near_px` of a labelled target that is also found; 'offset'
    within `near_px` of a target that is missed (found, but > 5 px from its box centre);
    'persistent' seen within 4 px in >= 5 of the 10 neighbouring frames (an object, not noise);
    'flicker' the rest."""
    from edge.metrics.matching import match_greedy

    out = {"duplicate": 0, "offset": 0, "persistent": 0, "flicker": 0}
    for c in clips:
        dets = [d[:, :2] for d in c.detections(conf)]
        for i, (g, d) in enumerate(zip(c.gt, dets)):
            m = match_greedy(g, d, 5.0)
            found = m.gt_matched()
            for j in np.flatnonzero(~m.pred_matched()):
                dist = np.hypot(*(g - d[j]).T) if len(g) else np.zeros(0)
                if len(dist) and dist.min() < near_px:
                    out["duplicate" if found[int(np.argmin(dist))] else "offset"] += 1
                    continue
                seen = sum(1 for k in range(max(0, i - 5), min(len(dets), i + 6))
                           if k != i and len(dets[k]) and np.hypot(*(dets[k] - d[j]).T).min() < 4.0)
                out["persistent" if seen >= 5 else "flicker"] += 1
    return out


def registration_speed(root: Path, split: str, clip: str, cfg: TrackerConfig, frames: int = 100) -> float:
    """CPU ms per frame of ego-motion registration (`registration_image` + `estimate_shift`, the
    tracker's own calls) over the first `frames` frames of one clip."""
    import cv2

    from benchmarks.track_data import iter_clip_frames
    from edge.tracking.ego_motion import estimate_shift, registration_image

    imgs = []
    for _, it in iter_clip_frames(root, split, 1, [clip]):
        for _, f, _ in itertools.islice(it, frames):
            imgs.append(f)
    if len(imgs) < 2:
        return float("nan")
    prev = registration_image(imgs[0], cfg.ego_scale)
    win = cv2.createHanningWindow((prev.shape[1], prev.shape[0]), cv2.CV_32F)
    t = time.thread_time()
    for f in imgs[1:]:
        cur = registration_image(f, cfg.ego_scale)
        estimate_shift(prev, cur, cfg.ego_method, cfg.ego_min_response, win)
        prev = cur
    return (time.thread_time() - t) * 1000 / (len(imgs) - 1)


def row(name: str, clips_res, det_conf: float, times=None, cfg=None) -> dict:
    r = {"row": name, "det_conf": det_conf, **score_points(clips_res), **score_tracks(clips_res)}
    if times is not None:
        r.update(track_ms_mean=float(times.mean()), track_ms_p99=float(np.percentile(times, 99)))
    if cfg is not None:
        r["tracker"] = cfg.to_dict()
    return r


def _f(v, fmt):
    return "n/a" if v is None else format(v, fmt)


def table(rows: list[dict]) -> str:
    head = ("| row | P | R | F1 | false pts/frame | MOTA | IDF1 | HOTA | ID switches | tracker CPU ms/frame |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        lines.append(f"| {r['row']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['fppi']:.3f} | "
                     f"{_f(r.get('mota'), '.3f')} | {_f(r.get('idf1'), '.3f')} | {_f(r.get('hota'), '.3f')} | "
                     f"{_f(r.get('idsw'), 'd')} | {_f(r.get('track_ms_mean'), '.3f')} |")
    return "\n".join(lines)


def sweep(clips, base: TrackerConfig, det_conf: float, specs: list[str], ref: dict, log) -> list[dict]:
    """Every combination of `NAME=V1,V2,...` (plus `det_conf=`): recall lost and FP reduction."""
    names, values = [], []
    for s in specs:
        k, _, vs = s.partition("=")
        names.append(k)
        values.append(vs.split(","))
    out = []
    for combo in itertools.product(*values):
        kv = dict(zip(names, combo))
        dc = float(kv.pop("det_conf", det_conf))
        try:
            cfg = TrackerConfig.from_pairs([f"{k}={v}" for k, v in kv.items()], base)
        except ValueError as e:  # e.g. birth_hits > birth_window: not a tracker
            log(f"{' '.join(f'{k}={v}' for k, v in zip(names, combo))}  skipped: {e}")
            continue
        res, _ = run_tracker(clips, cfg, dc)
        p = score_points(res)
        r = {**dict(zip(names, combo)), "recall": p["recall"], "fppi": p["fppi"], "f1": p["f1"],
             "recall_lost_pts": 100 * (ref["recall"] - p["recall"]), "fp_reduction": ref["fppi"] / max(p["fppi"], 1e-9)}
        out.append(r)
        log(" ".join(f"{k}={v}" for k, v in zip(names, combo)) +
            f"  R {p['recall']:.4f} ({-r['recall_lost_pts']:+.2f} pts)  fppi {p['fppi']:.4f} ({r['fp_reduction']:.2f}x)  "
            f"F1 {p['f1']:.4f}")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.track", description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/ir-drone", help="labelled clips (videos/, labels/, <split>.txt)")
    p.add_argument("--split", default="val")
    p.add_argument("--frame-stride", type=int, default=1, help="keep every k-th frame of each clip")
    p.add_argument("--clips", type=int, help="only the first N clips of the split")
    p.add_argument("--model", help="artifact (default: the shipped model for --backend)")
    p.add_argument("--backend", default="openvino")
    p.add_argument("--conf", type=float, help="detector threshold (default: the model's sidecar)")
    p.add_argument("--tracker", nargs="*", default=[], metavar="NAME=VALUE", help="TrackerConfig overrides")
    p.add_argument("--sweep", nargs="*", metavar="NAME=V1,V2", help="grid over tracker options (and det_conf)")
    p.add_argument("--cache", default="runs/track_cache")
    p.add_argument("--out", default="runs/track", help="folder for track.json and track.md")
    p.add_argument("--synthetic-frames", type=int, default=2000)
    p.add_argument("--threads", type=int, help="detector runtime threads (default: the runtime's)")
    p.add_argument("--sweep-thr", action="store_true", help="detector threshold x M-of-N confirmation: per-frame "
                   "and track P/R/F1/false points, Pd-FPPI plot, the tracking operating point (benchmarks.track_sweep)")
    p.add_argument("--thr-grid", metavar="T1,T2", help="with --sweep-thr: detector thresholds")
    p.add_argument("--mn", metavar="M/N,...", help="with --sweep-thr: birth_hits/birth_window pairs")
    p.add_argument("--birth", metavar="B1,B2", help="with --sweep-thr: birth_score floors (0: none)")
    p.add_argument("--merge", metavar="PX1,PX2", help="with --sweep-thr: merge_px values (0: off)")
    p.add_argument("--img", help="with --sweep-thr: also write the plot here (e.g. docs/img/track_pd_fppi.png)")
    p.add_argument("--write-op", action="store_true", help="with --sweep-thr: store the tracking operating point "
                   "in the model's sidecars (the checkpoint's and every artifact's beside it)")
    return p


def sweep_thr(args, pred, clips, conf: float, cfg: TrackerConfig, log) -> int:
    """`--sweep-thr`: benchmarks.track_sweep, its files in --out (and --img), --write-op into the sidecars."""
    import shutil

    from benchmarks.track_sweep import plot, run_sweep_thr, settings_text  # matplotlib lives there

    s = run_sweep_thr(args, clips, conf, cfg, CONF_LOW, log)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    marks = {f"per-frame, shipped {conf:g}": s["reference"], f"tracks, shipped {conf:g}": s["shipped_tracks"],
             f"tracking operating point {s['best']['thr']:g}": s["best"]}
    png = plot(s["frame_rows"], s["curve"], marks, out / "track_pd_fppi.png",
               f"{Path(args.data).name} {args.split}: {s['clips']} clips, {s['frames']} frames; {pred.model_path.name}",
               f"confirmed tracks ({settings_text(s['best'])})")
    if args.img:
        Path(args.img).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, args.img)
    head = (f"{args.data} {args.split}: {s['clips']} clips, {s['frames']} frames (stride {args.frame_stride}); "
            f"{pred.model_path.name} ({pred.backend.name}); {len(s['track_rows'])} tracker runs")
    lines = [head, "", *s["lines"]]
    if args.write_op:
        from quantize.pick import set_tracking_point

        folder = pred.model_path if pred.model_path.is_dir() else pred.model_path.parent
        sides = set_tracking_point(folder.parent, s["entry"])
        lines.append(f"tracking operating point written into {len(sides)} sidecar(s) under {folder.parent.parent}")
    print("\n".join(lines))
    (out / "track_sweep.json").write_text(json.dumps({k: v for k, v in s.items() if k != "lines"}, indent=2) + "\n")
    (out / "track_sweep.md").write_text("\n".join(lines) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from edge.inference.predictor import Predictor

    def log(s):
        print(s, file=sys.stderr, flush=True)

    root = Path(args.data)
    names = clip_names(root, args.split)[: args.clips or None]
    pred = Predictor(args.model, args.backend, args.threads, conf=CONF_LOW)
    conf = float(args.conf if args.conf is not None else pred.meta.codec.get("thr", 0.35))
    cfg = TrackerConfig.from_pairs(args.tracker)
    ego = (cfg.ego_method, cfg.ego_scale)
    clips = load_or_detect(pred, ClipSet(root, args.split, args.frame_stride, names), Path(args.cache), CONF_LOW,
                           ego, log)
    base = plain(clips, conf)
    ref = row("per-frame points (no tracking)", base, conf)
    if args.sweep:
        sweep(clips, cfg, conf, args.sweep, ref, log)
        return 0
    if args.sweep_thr:
        return sweep_thr(args, pred, clips, conf, cfg, log)
    res, times = run_tracker(clips, cfg, conf)
    rows = [ref, row("confirmed tracks" + (" (ego-motion)" if cfg.ego_motion else ""), res, conf, times, cfg)]
    other = replace(cfg, ego_motion=not cfg.ego_motion)
    res2, times2 = run_tracker(clips, other, conf)
    rows.append(row("confirmed tracks" + (" (ego-motion)" if other.ego_motion else " (no ego-motion)"), res2, conf,
                    times2, other))
    if cfg.min_travel_px == 0:  # what moving-target indication buys and costs (not a default: see its doc)
        mti = replace(cfg, ego_motion=True, min_travel_px=MTI_PX)
        res3, times3 = run_tracker(clips, mti, conf)
        rows.append(row(f"moving tracks only (min_travel_px={MTI_PX:g}, ego-motion)", res3, conf, times3, mti))
    syn = synthetic_speed(10, args.synthetic_frames, cfg=replace(cfg, ego_motion=False))
    frames = sum(len(c.frames) for c in clips)
    summary = {
        "data": str(root), "split": args.split, "frame_stride": args.frame_stride, "clips": len(clips),
        "frames": frames, "model": str(pred.model_path), "backend": pred.backend.name, "det_conf": conf,
        "detector_wall_ms_mean": float(np.mean([c.infer_ms for c in clips])),
        "ego_cpu_ms": registration_speed(root, args.split, names[0], cfg), "rows": rows, "synthetic_10": syn,
        "fp_reduction": ref["fppi"] / max(rows[1]["fppi"], 1e-9), "false_points": false_point_kinds(clips, conf),
        "recall_lost_pts": 100 * (ref["recall"] - rows[1]["recall"]), "trackeval": have_trackeval(),
    }
    md = table(rows)
    lines = [f"{args.data} {args.split}: {len(clips)} clips, {frames} frames (stride {args.frame_stride}); "
             f"{pred.model_path.name} ({pred.backend.name}), detector threshold {conf:g}", "", md, "",
             f"false points per frame {summary['fp_reduction']:.2f}x fewer, recall "
             f"{-summary['recall_lost_pts']:+.2f} points (goals: >= 3x, >= -1 point)",
             f"tracker on 10 synthetic targets: {syn['mean_ms']:.3f} ms/frame mean CPU, {syn['p99_ms']:.3f} p99, "
             f"{syn['wall_p50_ms']:.3f} wall p50 (goal <= 0.3); ego-motion registration ({cfg.ego_method}) "
             f"{summary['ego_cpu_ms']:.2f} ms/frame CPU"]
    fp = summary["false_points"]
    lines.append(f"per-frame false points: {sum(fp.values())} = " + ", ".join(f"{v} {k}" for k, v in fp.items())
                 + " (benchmarks.track.false_point_kinds)")
    if not summary["trackeval"]:
        lines.append("MOTA / IDF1 / HOTA: n/a (pip install trackeval==1.3.0, the `track` extra)")
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "track.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "track.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    from edge.cli import run_cli

    sys.exit(run_cli(main))
