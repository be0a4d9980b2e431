"""One row per detection: the table format shared by `frames.csv` (edge.run --save) and the Python API.

Why: a run's detections used to be packed into one CSV cell per frame ("130.72 165.26 1.3322;..."),
which no spreadsheet or pandas call reads without a parser. Here a detection is a row (frame,
name, x, y, score, and with tracking track_id, age, vx, vy), defined once for the run writer
(`edge.outputs`) and for `Results`, the container a Python caller fills from `Predictor`:

    results = Results()
    for i, frame in enumerate(frames):
        results.add(i, f"frame{i}", model(frame))
    results.to_csv("detections.csv")

Scores are the heatmap's peak values (edge.codecs.base.SCORE_RANGE): about 1 at a target, not
bounded by 1.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from edge.inference.points import Points

__all__ = ["DETECTION_FIELDS", "TRACK_FIELDS", "detection_rows", "Results"]

DETECTION_FIELDS = ["frame", "name", "x", "y", "score"]
TRACK_FIELDS = ["track_id", "age", "vx", "vy"]  # added after DETECTION_FIELDS when tracking


def detection_rows(frame: int, name: str, pts: Points) -> list[dict]:
    """The rows of one frame's points (tracked points, edge.tracking.track_outputs.TrackPoints, add TRACK_FIELDS)."""
    rows = []
    for p in pts.to_records():
        row = {"frame": int(frame), "name": name, "x": round(p["x"], 3), "y": round(p["y"], 3),
               "score": round(p["score"], 4)}
        if "id" in p:
            row.update(track_id=p["id"], age=p["age"], vx=p["vx"], vy=p["vy"])
        rows.append(row)
    return rows


@dataclass
class Results:
    """A run's points, frame by frame: `add(frame, name, points)`, then rows, JSON or CSV.

    Small on purpose (supervision's Detections is the style anchor): it holds (frame, name,
    Points) and turns them into the one row format above; metrics and pictures live elsewhere.
    """

    frames: list = field(default_factory=list)  # (frame index, name, Points)

    def add(self, frame: int, name: str, points: Points) -> None:
        if not isinstance(points, Points):
            raise TypeError(f"Results.add expects edge.inference.points.Points, got {type(points).__name__}")
        self.frames.append((int(frame), str(name), points))

    def __len__(self) -> int:
        """Number of frames added (detections: len(to_records()))."""
        return len(self.frames)

    @property
    def tracked(self) -> bool:
        return any(hasattr(p, "tracks") for _, _, p in self.frames)

    @property
    def fields(self) -> list[str]:
        return DETECTION_FIELDS + (TRACK_FIELDS if self.tracked else [])

    def to_records(self) -> list[dict]:
        """Every detection as a dict with `fields` as keys, frame by frame."""
        return [row for f, n, p in self.frames for row in detection_rows(f, n, p)]

    def to_json(self) -> str:
        return json.dumps(self.to_records())

    def to_csv(self, path: str | Path | None = None) -> str:
        """The CSV text (header + one row per detection); written atomically to `path` when given."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.fields, lineterminator="\n")
        w.writeheader()
        w.writerows(self.to_records())
        text = buf.getvalue()
        if path is not None:
            from edge.io import atomic_write

            atomic_write(Path(path), text, newline="")
        return text
