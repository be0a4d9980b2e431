"""Point-level detection metrics (SPIRE convention) accumulated over a set of frames.

Training, `spire.evaluate` and the device runtime all score point predictions with this one
accumulator, so a number printed during training and one measured on a board mean the same thing.

Convention (method.md section 5): per frame, predictions are matched one-to-one to ground-truth
points (GT-driven greedy by default, Hungarian on request) with a hit at distance <= `max_dist`
original-image pixels. Pd = recall = sum(TP) / sum(GT); precision and F1 are micro-averaged over
the set; Fa = sum(FP) / sum(W*H) is false *targets* per pixel (SPIRE's table prints it x1e-8);
FPPI = false points per frame. The accumulator keeps every frame's predictions with their scores,
so `compute(score_thr)` and `sweep(thresholds)` re-match at each threshold (exact, unlike counting
once and filtering: a low-score prediction may have taken a GT that a kept one would have hit).
With `keep_frames=False` (a device run scored as it goes, `edge.scoring`) each frame is matched once
on arrival and only the counts are kept: fixed memory and a constant-time `compute()` however long
the run, the same figures at the run's own threshold, no sweeps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .constants import HIT_RADIUS_PX, SCR_BANDS
from .matching import match

__all__ = ["PointMetrics", "UNITS", "as_pred_arrays"]

UNITS = {
    "precision": "fraction", "recall": "fraction", "pd": "fraction (= recall)", "f1": "fraction",
    "fa_per_pixel": "false targets per pixel", "fppi": "false points per frame",
    "loc_error_px": "pixels (original image), mean over true positives",
}


def as_pred_arrays(pred) -> tuple[np.ndarray, np.ndarray]:
    """(xy (N,2) float64, scores (N,) float64) from a Points-like object or an array.

    Accepts anything with `.xy` and `.scores` (edge.inference.points.Points), an (N,2) array (scores 1),
    an (N,3) array (x, y, score) or None. Empty slots at exactly (0, 0) (the official decoders'
    "no target" padding, method.md section 4) are dropped.
    """
    if pred is None:
        return np.zeros((0, 2)), np.zeros(0)
    if hasattr(pred, "xy") and hasattr(pred, "scores"):
        xy = np.asarray(pred.xy, dtype=np.float64).reshape(-1, 2)
        sc = np.asarray(pred.scores, dtype=np.float64).reshape(-1)
    else:
        arr = np.asarray(pred, dtype=np.float64)
        if arr.size == 0:
            return np.zeros((0, 2)), np.zeros(0)
        if arr.ndim != 2 or arr.shape[1] not in (2, 3):
            raise ValueError(f"predictions must be Points or an (N,2)/(N,3) array, got shape {arr.shape}")
        xy = arr[:, :2]
        sc = arr[:, 2] if arr.shape[1] == 3 else np.ones(len(arr))
    if len(sc) != len(xy):
        raise ValueError(f"{len(xy)} predicted points but {len(sc)} scores")
    keep = ~((xy[:, 0] == 0) & (xy[:, 1] == 0))
    return xy[keep], sc[keep]


@dataclass
class _Frame:
    gt: np.ndarray
    pred: np.ndarray
    scores: np.ndarray
    pixels: int
    scr: np.ndarray | None


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


@dataclass
class PointMetrics:
    """Accumulate frames with `update`, then `compute` / `sweep` / `summary_line` / `save_curves`.

    max_dist: hit radius in original-image pixels (SPIRE: 5).
    method: 'greedy' (SPIRE, GT order) or 'hungarian' (order-independent, gate = max_dist).
    scr_bands: edges of the per-SCR breakdown (reported when `update` got SCR values).
    keep_frames: False: count each frame on arrival and keep only the counts (no sweeps; see above).
    """

    max_dist: float = HIT_RADIUS_PX
    method: str = "greedy"
    scr_bands: tuple[float, ...] = SCR_BANDS
    frames: list = field(default_factory=list, repr=False)
    keep_frames: bool = True

    def __post_init__(self):
        if self.method not in ("greedy", "hungarian"):
            raise ValueError(f"unknown matching method {self.method!r}; use 'greedy' or 'hungarian'")
        if not self.max_dist > 0:
            raise ValueError(f"max_dist must be > 0, got {self.max_dist}")
        self._running = self._tally()

    def reset(self) -> None:
        self.frames.clear()
        self._running = self._tally()

    def __len__(self) -> int:
        return len(self.frames) if self.keep_frames else self._running["images"]

    def update(self, pred, gt_xy, image_hw, scr=None) -> None:
        """Add one frame: predictions (Points or array), GT (M,2) image px, (H, W), SCR (M,) or None."""
        xy, sc = as_pred_arrays(pred)
        gt = np.asarray(gt_xy, dtype=np.float64).reshape(-1, 2)
        h, w = (int(v) for v in tuple(image_hw)[:2])
        if h <= 0 or w <= 0:
            raise ValueError(f"image_hw must be positive (H, W), got {image_hw}")
        s = None
        if scr is not None:
            s = np.asarray(scr, dtype=np.float64).reshape(-1)
            if len(s) != len(gt):
                raise ValueError(f"{len(gt)} ground-truth points but {len(s)} SCR values")
        if self.keep_frames:
            self.frames.append(_Frame(gt, xy, sc, h * w, s))
        else:
            self._count(_Frame(gt, xy, sc, h * w, s), None, self._running)

    # ------------------------------------------------------------------ counting
    def _tally(self) -> dict:
        nb = len(self.scr_bands) - 1
        return {"tp": 0, "fp": 0, "fn": 0, "pixels": 0, "images": 0, "empty": 0, "fp_empty": 0, "dist_sum": 0.0,
                "band_t": np.zeros(nb, dtype=np.int64), "band_tp": np.zeros(nb, dtype=np.int64),
                "band_d": np.zeros(nb), "any_scr": False}

    def _count(self, fr: _Frame, score_thr: float | None, t: dict) -> None:
        """Match one frame at `score_thr` and add it to the tally `t`."""
        xy = fr.pred if score_thr is None else fr.pred[fr.scores >= score_thr]
        m = match(fr.gt, xy, self.max_dist, self.method)
        t["tp"], t["fp"], t["fn"], t["images"] = t["tp"] + m.tp, t["fp"] + m.fp, t["fn"] + m.fn, t["images"] + 1
        if not len(fr.gt):  # target-free frames and their false points (clutter-only false alarms)
            t["empty"], t["fp_empty"] = t["empty"] + 1, t["fp_empty"] + m.fp
        t["pixels"] += fr.pixels
        t["dist_sum"] += float(m.dist.sum())
        if fr.scr is not None and len(fr.gt):
            t["any_scr"] = True
            band = np.digitize(fr.scr, self.scr_bands[1:-1])  # 0..len(bands)-2
            dist = np.zeros(len(fr.gt))
            dist[m.gt_idx] = m.dist
            np.add.at(t["band_t"], band, 1)
            np.add.at(t["band_tp"], band, m.gt_matched().astype(np.int64))
            np.add.at(t["band_d"], band, dist)

    def compute(self, score_thr: float | None = None) -> dict:
        """Metrics over all frames, keeping predictions with score >= `score_thr` (None: all).

        Keys: precision, recall, pd, f1, fa_per_pixel, fppi, tp, fp, fn, images, targets, pixels,
        loc_error_px (nan when no TP), target_free_frames and fp_per_target_free_frame (false
        points on frames without targets: pure clutter), score_thr, method, max_dist and, when SCR was given,
        per_scr (a list of {band, lo, hi, targets, tp, pd, loc_error_px}). Undefined ratios are 0.
        """
        if not self.keep_frames:
            if score_thr is not None:
                raise ValueError("PointMetrics(keep_frames=False) keeps counts at the run's own threshold only; "
                                 "compute() takes no score_thr (keep the frames to sweep thresholds)")
            t = self._running
        else:
            t = self._tally()
            for fr in self.frames:
                self._count(fr, score_thr, t)
        tp, fp, fn, pixels, dist_sum = t["tp"], t["fp"], t["fn"], t["pixels"], t["dist_sum"]
        empty, fp_empty, images = t["empty"], t["fp_empty"], t["images"]
        band_t, band_tp, band_d, any_scr = t["band_t"], t["band_tp"], t["band_d"], t["any_scr"]
        targets = tp + fn
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, targets)
        out = {
            "precision": precision, "recall": recall, "pd": recall,
            "f1": _ratio(2 * precision * recall, precision + recall),
            "fa_per_pixel": _ratio(fp, pixels), "fppi": _ratio(fp, images),
            "tp": tp, "fp": fp, "fn": fn, "images": images, "targets": targets,
            "pixels": pixels, "loc_error_px": dist_sum / tp if tp else float("nan"),
            "target_free_frames": empty, "fp_per_target_free_frame": _ratio(fp_empty, empty),
            "score_thr": score_thr, "method": self.method, "max_dist": self.max_dist,
        }
        if any_scr:
            out["per_scr"] = [
                {"band": f"[{lo:g}, {hi:g})", "lo": lo, "hi": hi, "targets": int(t), "tp": int(k),
                 "pd": _ratio(k, t), "loc_error_px": float(d / k) if k else float("nan")}
                for lo, hi, t, k, d in zip(self.scr_bands[:-1], self.scr_bands[1:], band_t, band_tp, band_d)
            ]
        return out

    def default_thresholds(self, n: int = 50) -> np.ndarray:
        """Up to `n` thresholds spread over the quantiles of the stored scores (ascending)."""
        scores = np.concatenate([fr.scores for fr in self.frames]) if self.frames else np.zeros(0)
        if scores.size == 0:
            return np.zeros(1)
        return np.unique(np.quantile(scores, np.linspace(0.0, 1.0, n)))

    def sweep(self, thresholds=None) -> list[dict]:
        """`compute` at each threshold (ascending); None: `default_thresholds()`."""
        thr = self.default_thresholds() if thresholds is None else np.sort(np.asarray(thresholds, float))
        return [self.compute(float(t)) for t in thr]

    def best(self, thresholds=None, key: str = "f1") -> dict:
        """The sweep row with the highest `key` (ties: the lower threshold)."""
        rows = self.sweep(thresholds)
        return max(rows, key=lambda r: r[key])

    # ------------------------------------------------------------------ reporting
    def summary_line(self, score_thr: float | None = None, result: dict | None = None) -> str:
        """One printable line with every unit named."""
        r = self.compute(score_thr) if result is None else result
        thr = "all" if r["score_thr"] is None else f"{r['score_thr']:.3g}"
        loc = "n/a" if math.isnan(r["loc_error_px"]) else f"{r['loc_error_px']:.2f} px"
        return (
            f"P {r['precision']:.4f}  R(Pd) {r['recall']:.4f}  F1 {r['f1']:.4f}  "
            f"Fa {r['fa_per_pixel'] * 1e8:.2f}e-8 false targets/px  FPPI {r['fppi']:.3f} false pts/frame  "
            f"loc {loc}  [TP {r['tp']} FP {r['fp']} FN {r['fn']}; {r['images']} images, "
            f"{r['targets']} targets; {r['method']} <= {r['max_dist']:g} px; score >= {thr}]"
        )

    def save_curves(self, out_dir, thresholds=None) -> dict:
        """Write pr_curve.png and pd_fppi.png under `out_dir`; returns {name: Path}."""
        from .curves import save_curves

        return save_curves(self.sweep(thresholds), out_dir)
