"""`Points`: the one validated container for detected (or labelled) target points.

Every decoder, metric and runtime path hands points around as this dataclass, so shapes and
dtypes are checked once, where the points are made, instead of in every consumer.
Coordinates are (x, y) float32 in pixel-index convention (the centre of pixel i is i).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Points:
    """N points: `xy` float32 (N, 2) as (x, y), `scores` float32 (N,) (map value at each peak: about 1
    at a target, not bounded by 1, see edge.codecs.base.SCORE_RANGE)."""

    xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        xy = np.asarray(self.xy, dtype=np.float32)
        if xy.size == 0:
            xy = xy.reshape(0, 2)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"Points.xy must have shape (N, 2), got {xy.shape}")
        scores = np.ones(len(xy), np.float32) if self.scores is None else self.scores
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        if scores.shape != (len(xy),):
            raise ValueError(f"Points.scores must have shape ({len(xy)},), got {scores.shape}")
        if not (np.isfinite(xy).all() and np.isfinite(scores).all()):
            raise ValueError("Points must be finite (no NaN/Inf in xy or scores)")
        self.xy = np.ascontiguousarray(xy)
        self.scores = np.ascontiguousarray(scores)

    def __len__(self) -> int:
        return len(self.xy)

    def __getitem__(self, index) -> "Points":
        """The points at `index` (a boolean mask, an index array or a slice), as Points, in that order."""
        xy, scores = self.xy[index], self.scores[index]
        if xy.ndim == 1:  # a single integer index: keep the (N, 2) shape
            xy, scores = xy[None], np.atleast_1d(scores)
        return Points.trusted(np.ascontiguousarray(xy), np.ascontiguousarray(scores))

    @classmethod
    def trusted(cls, xy: np.ndarray, scores: np.ndarray) -> "Points":
        """Wrap arrays a decoder already made float32 (N, 2) / (N,) without re-validating them
        (the checks cost more than a whole decode; see benchmarks/decode.py)."""
        pts = object.__new__(cls)
        pts.xy, pts.scores = xy, scores
        return pts

    @classmethod
    def empty(cls) -> "Points":
        """No points."""
        return cls(np.zeros((0, 2), np.float32), np.zeros(0, np.float32))

    def filter(self, min_score: float) -> "Points":
        """The points whose score is >= `min_score`, in the same order."""
        return self[self.scores >= min_score]

    def sorted(self) -> "Points":
        """The points by descending score (stable)."""
        return self[np.argsort(-self.scores, kind="stable")]

    def to_records(self) -> list[dict]:
        """JSON-ready list of {'x', 'y', 'score'} (python floats; tracked points add id, age, vx, vy).
        Scores are heatmap peak values (edge.codecs.base.SCORE_RANGE): about 1 at a target, may exceed 1."""
        return self.to_list()

    def to_json(self) -> str:
        """`to_records()` as a JSON array."""
        import json

        return json.dumps(self.to_records())

    def to_list(self) -> list[dict]:
        """JSON-ready list of {'x', 'y', 'score'} (python floats); `to_records` is the public name."""
        return [
            {"x": float(x), "y": float(y), "score": float(s)}
            for (x, y), s in zip(self.xy.tolist(), self.scores.tolist())
        ]

    @classmethod
    def concat(cls, parts: list["Points"]) -> "Points":
        """One Points from several (e.g. tiles)."""
        if not parts:
            return cls.empty()
        return cls(np.concatenate([p.xy for p in parts]), np.concatenate([p.scores for p in parts]))
