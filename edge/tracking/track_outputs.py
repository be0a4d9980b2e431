"""`edge.run --track`: the tracker inside a run, its drawing layer and its files.

Why a module apart from edge.run / edge.outputs: a run with `--track` reports the confirmed
tracks' points instead of the detector's, so everything downstream (metrics, JSONL/CSV rows, the
pictures) sees tracks without knowing about them: `TrackRun.update` turns a frame's detections
into `TrackPoints` (a `Points` whose `to_list()` rows also carry id, age, vx, vy), `draw_tracks`
is an edge.outputs.annotate layer (each track's id and recent trail on every picture), and `close()`
writes `tracks.csv` (one row per track) and `tracks.png` (every trail over a clip's first frame).

Clips: a labelled clip folder yields frames named `CLIP#NNNNNN`; the tracker is reset where the
clip changes and frame numbers come from the name, so a skipped or strided frame is a gap the
tracker predicts through (a video or camera uses the run's frame index).
"""
from __future__ import annotations

import csv
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.outputs.latency import LatencyLog
from edge.inference.points import Points
from edge.tracking.tracker import Track, Tracker, TrackerConfig

__all__ = ["TrackPoints", "TrackRun", "draw_tracks", "track_color", "TRACK_CSV_FIELDS"]

TRACK_CSV_FIELDS = ["clip", "id", "first_frame", "last_frame", "frames", "hits", "score", "x_first", "y_first",
                    "x_last", "y_last", "vx_mean", "vy_mean", "path_px"]
_MAX_PATH = 5000  # stabilised positions kept per track for tracks.png ...
_MAX_POINTS = 500_000  # ... and per clip (4 MB): a camera left running must not grow without bound


@dataclass
class TrackPoints(Points):
    """Points of the reported tracks (xy, mean detection score) plus the `Track`s themselves."""

    tracks: list = field(default_factory=list)

    def to_list(self) -> list[dict]:
        return [{"x": float(t.xy[0]), "y": float(t.xy[1]), "score": float(t.score), "id": int(t.id),
                 "age": int(t.age), "vx": round(float(t.velocity[0]), 4), "vy": round(float(t.velocity[1]), 4)}
                for t in self.tracks]

    @classmethod
    def of(cls, tracks: list[Track]) -> "TrackPoints":
        xy = np.array([t.xy for t in tracks], np.float32).reshape(-1, 2)
        return cls(xy, np.array([t.score for t in tracks], np.float32), list(tracks))


def track_color(tid: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per track id (golden-angle hues)."""
    import cv2

    hsv = np.uint8([[[int(tid * 137.508) % 180, 220, 255]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def draw_tracks(canvas, info) -> None:
    """edge.outputs.annotate layer: each reported track's recent trail and `#id` (FrameInfo.extra['tracks'])."""
    import cv2

    for t in info.extra.get("tracks", ()):
        color = track_color(t.id)
        pts = np.array([canvas.pt(x, y) for x, y in t.trail], np.int32).reshape(-1, 1, 2)
        if len(pts) > 1:
            cv2.polylines(canvas.img, [pts], False, color, 1, cv2.LINE_AA)
        x, y = canvas.pt(*t.xy)
        r = canvas.radius
        cv2.putText(canvas.img, f"#{t.id}", (x + r + 2, y + r + 10), cv2.FONT_HERSHEY_SIMPLEX, canvas.font * 0.9,
                    color, 1, cv2.LINE_AA)


@dataclass
class _Path:
    first: int
    last: int = 0
    frames: int = 0
    hits: int = 0
    score: float = 0.0
    xy_first: tuple = (0.0, 0.0)
    xy_last: tuple = (0.0, 0.0)
    v_sum: np.ndarray = field(default_factory=lambda: np.zeros(2))
    path: array = field(default_factory=lambda: array("f"))  # stabilised (first-frame) x, y, x, y, ...

    def add(self, frame_id: int, t: Track, stab: np.ndarray, keep: bool) -> bool:
        """Count one reported frame; keep its position for the picture when `keep`; True if kept."""
        if not self.frames:
            self.xy_first = (float(t.xy[0]), float(t.xy[1]))
        self.last, self.frames, self.hits, self.score = frame_id, self.frames + 1, t.hits, t.score
        self.xy_last = (float(t.xy[0]), float(t.xy[1]))
        self.v_sum += t.velocity
        if keep and len(self.path) < 2 * _MAX_PATH:
            self.path.extend((float(stab[0]), float(stab[1])))
            return True
        return False

    @property
    def xy(self) -> np.ndarray:
        return np.frombuffer(self.path, np.float32).reshape(-1, 2).astype(np.float64)

    def row(self, clip: str | None, tid: int) -> dict:
        p = self.xy
        length = float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum()) if len(p) > 1 else 0.0
        return {"clip": clip or "", "id": tid, "first_frame": self.first, "last_frame": self.last,
                "frames": self.frames, "hits": self.hits, "score": round(self.score, 4),
                "x_first": round(self.xy_first[0], 2), "y_first": round(self.xy_first[1], 2),
                "x_last": round(self.xy_last[0], 2), "y_last": round(self.xy_last[1], 2),
                "vx_mean": round(float(self.v_sum[0] / self.frames), 4),
                "vy_mean": round(float(self.v_sum[1] / self.frames), 4), "path_px": round(length, 2)}


def _frame_key(item) -> tuple[str | None, int]:
    """(clip, frame number) of a run item: CLIP#NNNNNN names carry both."""
    clip = getattr(item, "clip", None)
    head, sep, idx = str(item.name).rpartition("#")
    if sep and idx.isdigit() and (clip is None or clip == head):
        return head, int(idx)
    return clip, int(item.frame_id)


class TrackRun:
    """The tracker of one run: per-frame update, per-clip reset, tracks.csv / tracks.png at the end."""

    def __init__(self, config: TrackerConfig | None = None, save_dir: str | Path | None = None):
        self.cfg = config or TrackerConfig()
        self.tracker = Tracker(self.cfg)
        self.dir = Path(save_dir) if save_dir else None
        self.clip: str | None = None
        self.first_frame = None
        self.paths: dict[int, _Path] = {}
        self.rows: list[dict] = []
        self.ms = LatencyLog()  # per-frame tracker time, in fixed memory however long the run
        self.kept = 0  # positions kept for this clip's picture (bounded by _MAX_POINTS)
        self.ids = 0
        self.clips = 0
        self.pictures: list[str] = []
        self._last = None
        self._started = False

    def update(self, pts: Points, frame: np.ndarray, item) -> TrackPoints:
        """Track one frame's detections; the confirmed tracks to report, as TrackPoints."""
        clip, fid = _frame_key(item)
        if not self._started or clip != self.clip or (self._last is not None and fid <= self._last):
            self._end_clip()
            self.tracker.reset()
            self.clip, self.first_frame, self._started = clip, frame, True
            self.clips += 1
        self._last = fid
        t = time.perf_counter()
        tracks = self.tracker.update(pts, frame, fid)
        self.ms.append((time.perf_counter() - t) * 1000.0)
        off = self.tracker.offset
        for tr in tracks:
            if tr.id not in self.paths:
                self.paths[tr.id] = _Path(fid)
            self.kept += self.paths[tr.id].add(fid, tr, tr.xy - off, self.kept < _MAX_POINTS)
        return TrackPoints.of(tracks)

    def _end_clip(self) -> None:
        if not self._started:
            return
        self.ids += len(self.paths)
        self.rows.extend(p.row(self.clip, tid) for tid, p in sorted(self.paths.items()))
        if self.dir is not None and self.first_frame is not None:
            name = "tracks.png" if not self.pictures else f"tracks_{_safe(self.clip or str(self.clips))}.png"
            if self._picture(self.dir / name):
                self.pictures.append(name)
        self.paths, self.kept = {}, 0

    def _picture(self, path: Path) -> bool:
        """Every track's trail of the clip over its first frame (the stabilised frame is the first one)."""
        import cv2

        from edge.outputs.annotate import auto_scale, render_base

        cv = render_base(self.first_frame, auto_scale(self.first_frame.shape[:2]))
        for tid, p in sorted(self.paths.items()):
            color = track_color(tid)
            xy = np.array([cv.pt(x, y) for x, y in p.xy], np.int32).reshape(-1, 1, 2)
            if len(xy) == 0:
                continue
            cv2.polylines(cv.img, [xy], False, color, 1, cv2.LINE_AA)
            cv2.circle(cv.img, tuple(int(v) for v in xy[0, 0]), 3, color, -1)
            cv2.putText(cv.img, f"#{tid}", tuple(int(v) + 4 for v in xy[-1, 0]), cv2.FONT_HERSHEY_SIMPLEX, cv.font,
                        color, 1, cv2.LINE_AA)
        cv2.putText(cv.img, f"{self.clip or 'tracks'}: {len(self.paths)} tracks", (6, 18), cv2.FONT_HERSHEY_SIMPLEX,
                    cv.font, (255, 255, 80), 1, cv2.LINE_AA)
        return bool(cv2.imwrite(str(path), cv.img))

    def summary(self) -> dict:
        """The tracker's block of summary.json: its parameters, track counts and time per frame."""
        from edge.outputs import percentiles

        return {"config": self.cfg.to_dict(), "clips": self.clips, "tracks": self.ids + len(self.paths),
                "ms_per_frame": percentiles(self.ms), "files": (["tracks.csv"] + self.pictures) if self.dir else []}

    def close(self) -> None:
        """Write tracks.csv and the last clip's picture."""
        self._end_clip()
        if self.dir is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "tracks.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=TRACK_CSV_FIELDS)
            w.writeheader()
            w.writerows(self.rows)


def _safe(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in s)
