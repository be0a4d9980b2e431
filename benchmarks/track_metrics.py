"""Scores of `benchmarks.track`: point P/R/F1 and false points per frame (edge.metrics, the
runtime's own convention) and MOTA / IDF1 / HOTA / identity switches from TrackEval.

Why TrackEval (`pip install trackeval==1.3.0`, the `track` extra): MOTA, IDF1 and HOTA have
subtle definitions (which matches count, how an identity switch is charged, HOTA's matching that
favours good associations), and a maintained implementation is what makes our figures comparable
with published ones; it works with numpy 2 (motmetrics 1.4.0 would give MOTA and IDF1 but no HOTA).

Points have no boxes, so similarity is a function of the distance d: 1 - 0.04 d / 5 inside a
5 px gate, 0 outside. TrackEval's CLEAR and Identity count a match at similarity >= 0.5 and HOTA
averages over thresholds 0.05..0.95: every one of them is then exactly the 5 px gate, and closer
pairs are still preferred. Ground-truth ids: one id per label row order within a clip (ir-drone
has one target per clip). A row without tracking reports each detection under its own id, so
its MOTA / IDF1 / HOTA show what per-frame points give a user who wants tracks.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np

from edge.metrics import PointMetrics

__all__ = ["GATE_PX", "similarity", "ClipResult", "score_points", "score_tracks", "have_trackeval"]

GATE_PX = 5.0


def similarity(gt: np.ndarray, pred: np.ndarray, gate: float = GATE_PX) -> np.ndarray:
    """(G, P) similarity in [0.96, 1] within `gate` px, else 0 (see the module docstring)."""
    if len(gt) == 0 or len(pred) == 0:
        return np.zeros((len(gt), len(pred)))
    d = np.sqrt(((np.asarray(gt, float)[:, None] - np.asarray(pred, float)[None]) ** 2).sum(-1))
    return np.where(d <= gate, 1.0 - 0.04 * d / gate, 0.0)


class ClipResult:
    """Per-frame predictions of one clip: xy (N, 2), scores (N,), ids (N,) (None: one id each)."""

    def __init__(self, name: str, gt: list, pred_xy: list, pred_scores: list, pred_ids: list | None,
                 hw: tuple):
        self.name, self.gt, self.xy, self.scores, self.ids, self.hw = name, gt, pred_xy, pred_scores, pred_ids, hw


def score_points(clips: list[ClipResult], max_dist: float = GATE_PX) -> dict:
    """P / R / F1 / false points per frame over every frame of every clip (SPIRE greedy, 5 px)."""
    m = PointMetrics(max_dist=max_dist)
    for c in clips:
        for g, xy, s in zip(c.gt, c.xy, c.scores):
            m.update(np.concatenate([np.asarray(xy, float).reshape(-1, 2), np.asarray(s, float).reshape(-1, 1)], 1),
                     g, c.hw)
    r = m.compute()
    return {"precision": r["precision"], "recall": r["recall"], "f1": r["f1"], "fppi": r["fppi"],
            "tp": r["tp"], "fp": r["fp"], "fn": r["fn"], "frames": r["images"], "targets": r["targets"]}


def have_trackeval() -> bool:
    try:
        import trackeval  # noqa: F401
    except ImportError:
        return False
    return True


def _sequence(c: ClipResult) -> dict:
    """TrackEval's per-sequence data dict (ids relabelled 0..n-1 as it requires)."""
    gt_ids, tr_ids, sims = [], [], []
    next_own = 0
    for g, xy, ids in zip(c.gt, c.xy, c.ids if c.ids is not None else [None] * len(c.gt)):
        g = np.asarray(g, float).reshape(-1, 2)
        xy = np.asarray(xy, float).reshape(-1, 2)
        if ids is None:  # no tracking: every detection its own identity
            ids = np.arange(next_own, next_own + len(xy))
            next_own += len(xy)
        gt_ids.append(np.arange(len(g)))
        tr_ids.append(np.asarray(ids, np.int64))
        sims.append(similarity(g, xy))
    uniq = np.unique(np.concatenate(tr_ids)) if tr_ids else np.zeros(0, np.int64)
    remap = {int(v): k for k, v in enumerate(uniq)}
    tr_ids = [np.array([remap[int(v)] for v in t], np.int64) for t in tr_ids]
    n_gt_ids = int(max((len(g) for g in gt_ids), default=0))
    return {"num_timesteps": len(gt_ids), "num_gt_dets": int(sum(len(g) for g in gt_ids)),
            "num_tracker_dets": int(sum(len(t) for t in tr_ids)), "num_gt_ids": n_gt_ids,
            "num_tracker_ids": len(uniq), "gt_ids": gt_ids, "tracker_ids": tr_ids, "similarity_scores": sims}


def score_tracks(clips: list[ClipResult]) -> dict:
    """MOTA, MOTP-free CLEAR counts, IDF1, HOTA (DetA, AssA) and identity switches over all clips
    (TrackEval's own combination across sequences); {} when trackeval is not installed."""
    if not have_trackeval():
        return {}
    from trackeval import metrics

    quiet = {"PRINT_CONFIG": False, "THRESHOLD": 0.5}
    with contextlib.redirect_stdout(io.StringIO()):  # the metric classes print their config
        ms = {"HOTA": metrics.HOTA(), "CLEAR": metrics.CLEAR(quiet), "Identity": metrics.Identity(quiet)}
    per = {k: {} for k in ms}
    for c in clips:
        data = _sequence(c)
        if data["num_gt_dets"] == 0 and data["num_tracker_dets"] == 0:
            continue
        for k, m in ms.items():
            per[k][c.name] = m.eval_sequence(data)
    if not per["CLEAR"]:
        return {}
    res = {k: ms[k].combine_sequences(per[k]) for k in ms}
    h = res["HOTA"]
    return {"mota": float(res["CLEAR"]["MOTA"]), "idf1": float(res["Identity"]["IDF1"]),
            "hota": float(np.mean(h["HOTA"])), "deta": float(np.mean(h["DetA"])), "assa": float(np.mean(h["AssA"])),
            "idsw": int(res["CLEAR"]["IDSW"]), "frag": int(res["CLEAR"]["Frag"]),
            "mt": int(res["CLEAR"]["MT"]), "ml": int(res["CLEAR"]["ML"])}
