"""What a run leaves behind in `--save`: per-frame JSON Lines and CSV, `summary.json`, pictures.

Pictures (edge.outputs.annotate draws them, edge.outputs.video_out writes them): for a video, camera, stream or
clip folder `annotated.mp4` (every frame with detections, labels, score, frame index and live
FPS); for image folders an overlay PNG every `--overlay-every` frames; for labelled sources
`contact_sheet.png` (the frames with misses and false alarms); `--show` a live window.

`frames.csv` holds one row per detection (edge.outputs.results: frame, name, x, y, score, and with
--track track_id, age, vx, vy); `frames_summary.csv` one row per frame (points found, stage
latencies, the error of a skipped frame); `frames.jsonl` both, per frame.

Written so that a run killed at any moment leaves usable files: the JSONL/CSV are line-buffered
and flushed after every frame (only whole lines), and `summary.json` is rewritten atomically
(temp file + os.replace) every few frames and once more at the end, Ctrl-C and crashes included.
`RunStats` holds the counters and latencies the summary is computed from.
"""
from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.io import atomic_write_json
from edge.outputs.latency import LatencyLog
from edge.inference.predictor import STAGES


def percentiles(values) -> dict:
    """{'p50', 'p90', 'p99', 'mean'} in ms (None for no values) of a list or an `edge.outputs.latency.LatencyLog`."""
    if not values:
        return {"p50": None, "p90": None, "p99": None, "mean": None}
    if isinstance(values, LatencyLog):  # bounded memory and time on a run of any length
        return {**{f"p{q}": round(values.percentile(q), 4) for q in (50, 90, 99)}, "mean": round(values.mean(), 4)}
    a = np.asarray(values, np.float64)
    p50, p90, p99 = np.percentile(a, (50, 90, 99))
    return {"p50": round(float(p50), 4), "p90": round(float(p90), 4), "p99": round(float(p99), 4),
            "mean": round(float(a.mean()), 4)}


def write_json_atomic(path: Path, obj) -> None:
    """JSON to `path` via a temp file in the same folder + os.replace (never a half-written file)."""
    atomic_write_json(path, obj, default=_json_default, allow_nan=False)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _clean(obj):
    """NaN/Inf -> None so summary.json stays strict JSON."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


@dataclass
class RunStats:
    """Counters and per-stage latencies of a run (ms); `fps` is end-to-end over processed frames."""

    frames: int = 0
    skipped: int = 0
    skipped_names: list = field(default_factory=list)
    latency: dict = field(default_factory=lambda: {s: LatencyLog() for s in (*STAGES, "total")})
    points: int = 0
    t_start: float = field(default_factory=time.perf_counter)
    t_last: float | None = None
    stop_reason: str | None = None  # set when something stops the run; `finish` fills in "end of source"
    state: str = "running"

    def add(self, timings: dict, n_points: int) -> None:
        self.frames += 1
        self.points += int(n_points)
        for s in STAGES:
            self.latency[s].append(float(timings.get(s, 0.0)))
        self.latency["total"].append(float(sum(timings.get(s, 0.0) for s in STAGES)))
        self.t_last = time.perf_counter()

    def finish(self) -> None:
        """The run is over: the summary now says how it ended.

        Until then every summary says `"state": "running"` and no stop reason, so a run killed
        (SIGKILL, power loss, a full disk) between two summaries never looks like it finished.
        """
        self.state = "finished"
        if self.stop_reason is None:
            self.stop_reason = "end of source"

    def skip(self, name: str) -> None:
        self.skipped += 1
        self.skipped_names.append(name)
        self.t_last = time.perf_counter()

    @property
    def wall_s(self) -> float:
        return (self.t_last or time.perf_counter()) - self.t_start

    @property
    def fps(self) -> float:
        """Frames per second of wall time (read to decode, skipped frames' time included)."""
        return self.frames / self.wall_s if self.frames and self.wall_s > 0 else 0.0

    @property
    def latency_fps(self) -> float:
        """1000 / mean total latency: the pipeline's speed without the loop's own overhead."""
        mean = self.latency["total"].mean()
        return 1000.0 / mean if mean else 0.0

    def summary(self, **extra) -> dict:
        out = {
            "frames": self.frames,
            "skipped": self.skipped,
            "skipped_names": self.skipped_names[:50],
            "fps": round(self.fps, 3),
            "fps_from_latency": round(self.latency_fps, 3),
            "wall_s": round(self.wall_s, 4),
            "points": self.points,
            "latency_ms": {s: percentiles(v) for s, v in self.latency.items()},
            "state": self.state,
        }
        if self.state != "running":
            out["stop_reason"] = self.stop_reason
        out.update(extra)
        return _clean(out)


class RunWriter:
    """Files of one run under `save_dir` (None: write nothing, keep only the stats), and the --show window.

    `video_fps` (set for video-like sources) turns the overlays into `annotated.mp4` with every
    frame (`overlay_every` 0: none); `labelled` adds `contact_sheet.png`. `layers` are extra
    drawing steps for every picture (edge.outputs.annotate.Layer: a tracker appends its own), and
    `frame(..., extra=)` hands them per-frame data. `tracking` adds the track columns to frames.csv.
    """

    SUMMARY_FIELDS = ["frame", "name", "n_points", *[f"{s}_ms" for s in STAGES], "total_ms", "error"]

    def __init__(self, save_dir: str | Path | None, source: str, overlay_every: int = 0,
                 video_fps: float | None = None, summary_every: int = 25, show: bool = False,
                 labelled: bool = False, tracking: bool = False):
        from edge.outputs.video_out import AnnotatedVideo, ContactSheet, LiveFps, Viewer

        self.dir = Path(save_dir) if save_dir else None
        self.source, self.overlay_every = source, int(overlay_every or 0)
        self.video_fps, self.summary_every = video_fps, max(1, int(summary_every))
        self.layers: list = []
        self.live_fps = LiveFps()
        self.viewer = Viewer() if show else None
        self.video = self.sheet = None
        self._jsonl = self._csv_file = self._csv = self._sum_file = self._sum = None
        if self.dir is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        if video_fps and self.overlay_every:
            self.video = AnnotatedVideo(self.dir / "annotated.mp4", video_fps)
        if labelled:
            self.sheet = ContactSheet()
        self._jsonl = open(self.dir / "frames.jsonl", "w", encoding="utf-8", buffering=1)
        from edge.outputs.results import DETECTION_FIELDS, TRACK_FIELDS

        self._csv_file, self._csv = self._open_csv("frames.csv", DETECTION_FIELDS + (TRACK_FIELDS if tracking else []))
        self._sum_file, self._sum = self._open_csv("frames_summary.csv", self.SUMMARY_FIELDS)

    def _open_csv(self, name: str, fields: list[str]):
        f = open(self.dir / name, "w", encoding="utf-8", newline="", buffering=1)
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        f.flush()
        return f, w

    @property
    def summary_path(self) -> Path | None:
        return self.dir / "summary.json" if self.dir else None

    def frame(self, frame_id: int, name: str, pts, timings: dict, image: np.ndarray | None = None,
              gt: np.ndarray | None = None, extra: dict | None = None) -> None:
        """One processed frame: a JSONL line, a CSV row, and its picture where one is due."""
        fps = self.live_fps.tick()
        if self.dir is not None:
            self._records(frame_id, name, pts, timings, gt)
        if image is not None:
            self._pictures(frame_id, name, pts, image, gt, fps, extra)

    def _records(self, frame_id: int, name: str, pts, timings: dict, gt) -> None:
        lat = {s: round(float(timings.get(s, 0.0)), 4) for s in STAGES}
        lat["total"] = round(sum(lat.values()), 4)
        rec = {"frame_id": frame_id, "source": self.source, "name": name, "points": pts.to_list(),
               "latency_ms": lat}
        if gt is not None:
            rec["gt"] = np.asarray(gt, np.float32).reshape(-1, 2).round(3).tolist()
        self._jsonl.write(json.dumps(rec) + "\n")
        self._jsonl.flush()
        from edge.outputs.results import detection_rows

        self._csv.writerows(detection_rows(frame_id, name, pts))
        self._csv_file.flush()
        self._sum.writerow({"frame": frame_id, "name": name, "n_points": len(pts),
                            **{f"{s}_ms": lat[s] for s in STAGES}, "total_ms": lat["total"], "error": ""})
        self._sum_file.flush()

    def _pictures(self, frame_id: int, name: str, pts, image: np.ndarray, gt, fps, extra) -> None:
        """Draw the frame once for whichever of video, PNG overlay, contact sheet and window want it."""
        from edge.outputs.annotate import FrameInfo, annotate, frame_errors

        png = self.dir is not None and self.video is None and self.overlay_every and frame_id % self.overlay_every == 0
        viewing = self.viewer is not None and self.viewer.ok
        hit, found = frame_errors(pts, gt) if gt is not None else (None, None)
        n_miss = int((~found).sum()) if found is not None else 0
        n_fa = int((~hit).sum()) if hit is not None else 0
        sheet = self.sheet is not None and gt is not None and self.sheet.wants(n_miss, n_fa)
        pic = None
        if self.video is not None or png or viewing or sheet:
            info = FrameInfo(frame_id, name, fps, extra=dict(extra or {}))
            pic = annotate(image, pts, gt, info, self.layers, errors=(hit, found))
            if self.video is not None:
                self.video.write(pic)
            if png:
                import cv2

                cv2.imwrite(str(self.dir / f"overlay_{frame_id:06d}.png"), pic)
            if viewing:
                self.viewer.show(pic)
        if self.sheet is not None and gt is not None:
            self.sheet.add(frame_id, n_miss, n_fa, pic if sheet else None)

    def skipped(self, frame_id: int, name: str, error: str) -> None:
        """A frame that could not be used: a JSONL line and a CSV row saying why."""
        if self.dir is None:
            return
        self._jsonl.write(json.dumps({"frame_id": frame_id, "source": self.source, "name": name,
                                      "skipped": True, "error": error}) + "\n")
        self._jsonl.flush()
        self._sum.writerow({"frame": frame_id, "name": name, "n_points": 0, "error": error})
        self._sum_file.flush()

    def report(self) -> dict:
        """What the pictures are, for summary.json."""
        out = {}
        if self.video is not None:
            out["annotated_video"] = {"file": self.video.path.name if self.video.frames else None,
                                      "frames": self.video.frames, "fps": self.video.fps, "error": self.video.error}
        if self.sheet is not None:
            out["contact_sheet"] = {"file": "contact_sheet.png", "error_frames": self.sheet.seen,
                                    "labelled_frames": self.sheet.frames}
        if self.viewer is not None:
            out["show"] = "window" if self.viewer.ok or self.viewer.note is None else self.viewer.note
        return out

    def files(self) -> list[str]:
        """Names of what this run writes into its folder."""
        names = ["summary.json", "frames.jsonl", "frames.csv", "frames_summary.csv"]
        if self.video is not None and self.video.frames:
            names.append(self.video.path.name)
        if self.sheet is not None:
            names.append("contact_sheet.png")
        return names

    def summary(self, data: dict) -> None:
        """Rewrite summary.json atomically."""
        if self.dir is not None:
            write_json_atomic(self.summary_path, data)

    def close(self) -> None:
        for f in (self._jsonl, self._csv_file, self._sum_file):
            if f is not None and not f.closed:
                f.close()
        if self.video is not None:
            self.video.close()
        if self.sheet is not None and self.dir is not None:
            self.sheet.write(self.dir / "contact_sheet.png")
        if self.viewer is not None:
            self.viewer.close()
