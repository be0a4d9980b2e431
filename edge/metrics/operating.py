"""Operating point: the decode threshold with the best (F1, -FPPI) on a validation split.

Why here (numpy, in edge): training picks a model's threshold on validation and ships it in the
sidecar, and INT8 quantisation re-picks it for the quantised model (whose map may peak lower than
FP32's) on the same validation frames; both must choose the same way. Never run on a test split.
"""
from __future__ import annotations

from .points import PointMetrics

# Thresholds tried; the codec's default (0.35) suits a converged PRPS map, a model's own best
# operating point often lies elsewhere.
THR_GRID = tuple(round(0.15 + 0.05 * i, 2) for i in range(15))  # 0.15 .. 0.85
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
