"""A run's point metrics, overall and per clip: what summary.json reports under "metrics" and "clips".

A folder of labelled clips is scored frame by frame like any labelled source (one `PointMetrics`
over every frame), and each clip also gets its own, so a clip where the model fails stands out
instead of being averaged away. The object has `PointMetrics`' calls (`update`, `compute`,
`summary_line`, `len`), plus the `clip` of each frame and `clips_report()`.
"""
from __future__ import annotations

from edge.metrics import PointMetrics

__all__ = ["RunScores", "CLIP_KEYS"]

CLIP_KEYS = ("precision", "recall", "f1", "fppi", "tp", "fp", "fn", "images", "targets", "fp_per_target_free_frame")


class RunScores:
    """Overall and per-clip `PointMetrics` of a run (same matching rule for both)."""

    def __init__(self, **metric_kw):
        self._kw = {"keep_frames": False, **metric_kw}  # counts only: fixed memory and time on a run of any length
        self.overall = PointMetrics(**self._kw)
        self.clips: dict[str, PointMetrics] = {}

    def __len__(self) -> int:
        return len(self.overall)

    def update(self, pred, gt_xy, image_hw, scr=None, clip: str | None = None) -> None:
        self.overall.update(pred, gt_xy, image_hw, scr)
        if clip is not None:
            if clip not in self.clips:
                self.clips[clip] = PointMetrics(**self._kw)
            self.clips[clip].update(pred, gt_xy, image_hw, scr)

    def compute(self, score_thr: float | None = None) -> dict:
        return self.overall.compute(score_thr)

    def summary_line(self, score_thr: float | None = None, result: dict | None = None) -> str:
        return self.overall.summary_line(score_thr, result)

    def clips_report(self, skipped_names=()) -> dict:
        """{'clips': {name: {precision, recall, f1, fppi, tp, fp, fn, images, targets, skipped}}} ({} without clips)."""
        if not self.clips:
            return {}
        skipped: dict[str, int] = {}
        for name in skipped_names:
            clip = str(name).rpartition("#")[0]
            if clip in self.clips:
                skipped[clip] = skipped.get(clip, 0) + 1
        out = {}
        for clip, m in self.clips.items():
            c = m.compute()
            out[clip] = {**{k: c[k] for k in CLIP_KEYS if k in c}, "skipped": skipped.get(clip, 0)}
        return {"clips": out}
