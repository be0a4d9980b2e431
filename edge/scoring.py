"""Scoring a predictor on labelled frames: the one frame type, the one loop, the one accumulator.

Why one of each: `spire.evaluate`, training validation, the INT8 fidelity report, the ladder,
`benchmarks.measure` and `spire.mine` all run a predictor over labelled frames, and `edge.run`
scores the frames it streams. Each used to read its own frame type, skip bad frames by its own
rule and count its own way, so two tools could disagree on the same frames. Now every reader
hands over `LabelledFrame`s, `score` runs the predictor over them (`edge.run` keeps its live
loop but updates the same `RunScores` through `RunScores.add`), and the skip rule lives in one
place: a frame that cannot be read (its `frame` is the exception reading raised, or predicting
raises `FrameError`) or has no labels (`points` None) is skipped and counted by reason.

`RunScores` is the accumulator: a `PointMetrics` over every frame (`overall`, which keeps the
frames for threshold sweeps when asked) plus one counts-only `PointMetrics` per clip, so a clip
where the model fails stands out instead of being averaged away (summary.json's "clips").
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace

import numpy as np

from edge.errors import FrameError, SpireEdgeError
from edge.metrics import PointMetrics

__all__ = ["LabelledFrame", "SourceFrames", "RunScores", "ScoreResult", "score", "skip_reason", "CLIP_KEYS", "SKIP_REASONS"]

CLIP_KEYS = ("precision", "recall", "f1", "fppi", "tp", "fp", "fn", "images", "targets", "fp_per_target_free_frame")
SKIP_REASONS = ("unreadable", "unlabelled")
READ_ERRORS = (SpireEdgeError, OSError, ValueError)  # what reading a frame raises for a bad file


@dataclass(frozen=True)
class LabelledFrame:
    """One frame to score: what every reader yields (dataset samples, sources' items, benchmark frames).

    frame: the array; a path (read inside `predict`, so reading is part of a timed pass; give `hw`);
        or the exception reading it raised (skipped as unreadable).
    points: (N, 2) float32 target centres in image px; None: the frame has no labels (skipped).
    clip: the clip a video frame belongs to (per-clip scores); index: its position in its reader.
    hw: (H, W); taken from `frame` when it is an array.
    """

    frame: object
    name: str
    points: np.ndarray | None
    clip: str | None = None
    index: int | None = None
    hw: tuple[int, int] | None = None

    def __post_init__(self):
        if self.points is not None:
            object.__setattr__(self, "points", np.asarray(self.points, np.float32).reshape(-1, 2))
        if self.hw is None and isinstance(self.frame, np.ndarray):
            object.__setattr__(self, "hw", tuple(int(v) for v in self.frame.shape[:2]))

    @property
    def readable(self) -> bool:
        return not isinstance(self.frame, BaseException)

    @classmethod
    def from_sample(cls, sample, index: int | None = None, clip: str | None = None) -> "LabelledFrame":
        """An `edge.datasets.Sample` (a sample whose label file broke has no points)."""
        pts = sample.points if getattr(sample, "labelled", True) else None
        return cls(sample.frame, str(sample.name), pts, clip, index)

    @classmethod
    def read(cls, dataset, index: int, name: str | None = None) -> "LabelledFrame":
        """Item `index` of an `edge.datasets` dataset; a read error becomes the frame (skipped by `score`)."""
        try:
            sample = dataset[index]
        except READ_ERRORS as e:
            names = getattr(dataset, "names", None)
            return cls(e, name if name is not None else str(names[index] if names is not None else index), None,
                       index=index)
        fr = cls.from_sample(sample, index)
        return fr if name is None else replace(fr, name=name)

    @classmethod
    def from_item(cls, item) -> "LabelledFrame":
        """An `edge.sources.Item` (its `frame` may be the read error, its `gt` None when unlabelled)."""
        return cls(item.frame, item.name, item.gt, item.clip, item.frame_id)


def skip_reason(fr: LabelledFrame) -> str | None:
    """The skip rule: 'unreadable' (the frame is the read error), 'unlabelled' (no points), else None."""
    if not fr.readable:
        return "unreadable"
    return "unlabelled" if fr.points is None else None


class SourceFrames:
    """An `edge.sources.Source`'s items as `LabelledFrame`s, sized (progress bars) like the source."""

    def __init__(self, source):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self):
        return (LabelledFrame.from_item(item) for item in self.source)


class RunScores:
    """Overall and per-clip `PointMetrics` (same matching rule for both) and the skipped-frame counts.

    overall: the `PointMetrics` to accumulate into (the caller keeps it for sweeps); None: a new one
    built from `metric_kw` (counts only by default: fixed memory and time on a run of any length).
    """

    def __init__(self, overall: PointMetrics | None = None, **metric_kw):
        if overall is None:
            overall = PointMetrics(**{"keep_frames": False, **metric_kw})
        self.overall = overall
        self._kw = {"max_dist": overall.max_dist, "method": overall.method, "scr_bands": overall.scr_bands,
                    "keep_frames": False}
        self.clips: dict[str, PointMetrics] = {}
        self.skipped = dict.fromkeys(SKIP_REASONS, 0)

    def __len__(self) -> int:
        return len(self.overall)

    def update(self, pred, gt_xy, image_hw, scr=None, clip: str | None = None) -> None:
        self.overall.update(pred, gt_xy, image_hw, scr)
        if clip is not None:
            if clip not in self.clips:
                self.clips[clip] = PointMetrics(**self._kw)
            self.clips[clip].update(pred, gt_xy, image_hw, scr)

    def add(self, fr: LabelledFrame, pred) -> bool:
        """Score one predicted frame; a frame the skip rule refuses is counted instead (False)."""
        reason = skip_reason(fr)
        if reason is not None:
            self.skip(reason)
            return False
        self.update(pred, fr.points, fr.hw, clip=fr.clip)
        return True

    def skip(self, reason: str) -> None:
        if reason not in self.skipped:
            raise ValueError(f"unknown skip reason {reason!r}; one of {SKIP_REASONS}")
        self.skipped[reason] += 1

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


@dataclass
class ScoreResult:
    """What `score` returns: the accumulator, the time per scored frame, each stage's ms per frame."""

    scores: RunScores
    seconds_per_frame: float = 0.0
    frames: int = 0
    stage_ms: dict = field(default_factory=dict)  # stage -> [ms of each scored frame] (the predictor's timings)

    @property
    def metrics(self) -> PointMetrics:
        return self.scores.overall

    @property
    def skipped(self) -> dict:
        return dict(self.scores.skipped)

    def compute(self, score_thr: float | None = None) -> dict:
        return self.scores.compute(score_thr)


def score(predictor, samples, *, thr: float | None = None, metrics=None, on_frame=None, progress: bool = True,
          desc: str = "scoring", limit: int | None = None) -> ScoreResult:
    """Run `predictor` (an `edge.inference.predictor.Predictor`) over `LabelledFrame`s and accumulate their metrics.

    thr: decode threshold of this pass (lower than the codec's keeps candidates for PR sweeps;
        `metrics.compute(codec.thr)` then gives the operating point); the codec is never changed.
    metrics: a `RunScores`, or a `PointMetrics` to accumulate into (it becomes the overall one),
        or None (a new counts-only `RunScores`).
    on_frame(frame, points): called after each scored frame (overlays, mined false alarms, pairs).
    limit: stop after this many scored frames (skipped ones do not count).
    Unreadable and unlabelled frames are skipped and counted (`ScoreResult.skipped`), never predicted.
    """
    scores = metrics if isinstance(metrics, RunScores) else RunScores(metrics)
    out = ScoreResult(scores)
    bar = _bar(samples, desc, progress)
    t0 = time.perf_counter()
    try:
        for fr in samples if limit is None or limit > 0 else ():
            bar.update(1)
            reason = skip_reason(fr)
            if reason is not None:
                scores.skip(reason)
                continue
            try:
                pts, t = predictor.predict(fr.frame, fr.name, thr=thr)
            except FrameError:
                scores.skip("unreadable")
                continue
            scores.add(fr, pts)
            out.frames += 1
            for k, v in t.items():
                out.stage_ms.setdefault(k, []).append(float(v))
            if on_frame is not None:
                on_frame(fr, pts)
            if limit is not None and out.frames >= limit:
                break
    finally:
        bar.close()
    out.seconds_per_frame = (time.perf_counter() - t0) / max(out.frames, 1)
    return out


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(samples, desc: str, enabled: bool):
    """tqdm over the frames when installed and wanted (not an edge dependency), else a no-op."""
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    total = len(samples) if hasattr(samples, "__len__") else None
    return tqdm(total=total, desc=desc, unit="frame", leave=False, file=sys.stderr)
