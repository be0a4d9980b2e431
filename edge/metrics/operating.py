"""Operating point: the decode threshold with the best (F1, -FPPI) on a validation split.

Why here (numpy, in edge): training picks a model's threshold on validation and ships it in the
sidecar, and INT8 quantisation re-picks it for the quantised model (whose map may peak lower than
FP32's) on the same validation frames; both must choose the same way. Never run on a test split.
"""
from __future__ import annotations

from .constants import THR_GRID  # the thresholds tried
from .points import PointMetrics

KEYS = ("precision", "recall", "f1", "fa_per_pixel", "fppi", "tp", "fp", "fn", "images", "targets")


def best_operating_point(metrics: PointMetrics, default_thr: float, grid=THR_GRID) -> dict:
    """Metrics at the threshold (grid plus `default_thr`) with the best (F1, -FPPI).

    `metrics` must hold predictions decoded at or below min(grid) with their scores. Returns the
    metric dict plus 'thr' and 'f1_at_default_thr'.
    """
    best = None
    for t in sorted(set(grid) | {round(float(default_thr), 4)}):
        r = metrics.compute(t)
        cand = dict({k: r[k] for k in KEYS}, thr=t)
        if best is None or (cand["f1"], -cand["fppi"]) > (best["f1"], -best["fppi"]):
            best = cand
    best["f1_at_default_thr"] = metrics.compute(default_thr)["f1"]
    return best


def joint_operating_point(metrics: dict, default_thr: float, grid=THR_GRID) -> dict:
    """One threshold for several validation sets: the best (worst set's F1, -mean FPPI).

    Why the worst set: a model selected on the sum of its validation sets wins by the set with
    the most frames (the drone clips outnumber SIRST-V2 30 to 1), and a threshold fitted to one
    sensor's clutter costs another's; the minimum keeps every domain honest. `metrics` maps a set
    name to its `PointMetrics` (decoded at or below min(grid)). Returns the pooled metric dict at
    that threshold, 'thr', 'f1' = the worst set's F1, 'f1_pooled', and per set '<name>' -> its dict.
    """
    if len(metrics) == 1:
        (name, m), = metrics.items()
        r = best_operating_point(m, default_thr, grid)
        return dict(r, f1_pooled=r["f1"], sets={name: {k: r[k] for k in KEYS}})
    best = None
    for t in sorted(set(grid) | {round(float(default_thr), 4)}):
        per = {n: m.compute(t) for n, m in metrics.items()}
        worst = min(r["f1"] for r in per.values())
        mean_fppi = sum(r["fppi"] for r in per.values()) / len(per)
        if best is None or (worst, -mean_fppi) > best[0]:
            best = ((worst, -mean_fppi), t, per)
    _, t, per = best
    first = next(iter(metrics.values()))
    pooled = PointMetrics(max_dist=first.max_dist, method=first.method)
    pooled.frames = [fr for m in metrics.values() for fr in m.frames]
    out = {k: v for k, v in pooled.compute(t).items() if k in KEYS}
    out.update(thr=t, f1_pooled=out["f1"], f1=min(r["f1"] for r in per.values()),
               sets={n: {k: r[k] for k in KEYS} for n, r in per.items()})
    out["f1_at_default_thr"] = min(m.compute(default_thr)["f1"] for m in metrics.values())
    return out
