"""Running the tracker over cached detections: per-frame points, tracks, and its time per frame.

Why its own module: the tracking benchmark (`benchmarks.track`) and its threshold sweep
(`benchmarks.track_sweep`) both run these; here neither imports the other.
"""
from __future__ import annotations

import time

import numpy as np

from benchmarks.track_metrics import ClipResult
from edge.tracking.tracker import Tracker, TrackerConfig

__all__ = ["run_tracker", "plain", "synthetic_speed"]


def run_tracker(clips, cfg: TrackerConfig, det_conf: float) -> tuple[list[ClipResult], np.ndarray]:
    """Every clip through a fresh Tracker; (per-clip reported tracks, per-frame update CPU times in ms).

    CPU time (time.thread_time) rather than wall time: on a shared host wall time would measure
    the scheduler; on an idle core the two agree."""
    out, times = [], []
    for c in clips:
        tr = Tracker(cfg)
        xy, sc, ids = [], [], []
        ok = c.response >= cfg.ego_min_response
        for k, d, sh, good in zip(c.frames, c.detections(det_conf), c.shift, ok):
            motion = (sh if good else (0.0, 0.0)) if cfg.ego_motion else None
            t = time.thread_time()
            tracks = tr.update(d, None, int(k), motion)
            times.append(time.thread_time() - t)
            xy.append(np.array([t_.xy for t_ in tracks]).reshape(-1, 2))
            sc.append(np.array([t_.score for t_ in tracks]))
            ids.append(np.array([t_.id for t_ in tracks], np.int64))
        out.append(ClipResult(c.name, c.gt, xy, sc, ids, c.hw))
    return out, np.asarray(times) * 1000.0


def plain(clips, conf: float) -> list[ClipResult]:
    """The per-frame detector's points at its threshold (no identities)."""
    res = []
    for c in clips:
        d = c.detections(conf)
        res.append(ClipResult(c.name, c.gt, [x[:, :2] for x in d], [x[:, 2] for x in d], None, c.hw))
    return res


def synthetic_speed(n_targets: int = 10, frames: int = 2000, seed: int = 0, cfg: TrackerConfig | None = None) -> dict:
    """Tracker time per frame (ms) on `n_targets` constant-velocity points with 0.3 px noise,
    one missed detection in 20 and two clutter points a frame (all tracks confirmed). Every score
    is 0.95, above any birth floor a tuned tracker may have (`birth_score`), so tracks are born."""
    rng = np.random.default_rng(seed)
    p0 = rng.uniform(20, 600, (n_targets, 2))
    v = rng.uniform(-1.5, 1.5, (n_targets, 2))
    dets = []
    for i in range(frames):
        d = p0 + v * i + rng.normal(0, 0.3, p0.shape)
        d = d[rng.random(n_targets) > 0.05]
        d = np.concatenate([d, rng.uniform(0, 640, (2, 2))])
        dets.append(np.concatenate([d, np.full((len(d), 1), 0.95)], 1))
    tr = Tracker(cfg or TrackerConfig())
    ts, wall, n = [], [], []
    for i, d in enumerate(dets):
        t, w = time.thread_time(), time.perf_counter()
        out = tr.update(d, None, i)
        ts.append(time.thread_time() - t)
        wall.append(time.perf_counter() - w)
        n.append(len(out))
    ts, wall = np.asarray(ts[50:]) * 1000, np.asarray(wall[50:]) * 1000
    return {"targets": n_targets, "frames": frames, "mean_ms": float(ts.mean()), "p50_ms": float(np.median(ts)),
            "p99_ms": float(np.percentile(ts, 99)), "wall_p50_ms": float(np.median(wall)),
            "reported_mean": float(np.mean(n[50:]))}
