"""Overlapping S×S tiles over a large sensor frame, and the merge of their peaks back into one set.

Why: a 640×512 or 1280×1024 frame letterboxed into a 256–640 px model shrinks a 3-pixel target
below one heatmap cell. Tiling keeps native resolution. Tiles overlap by at least `overlap` px so
a target near a tile edge is seen whole by some tile, each tile keeps only the peaks in its own
core (the part closer to its centre than to a neighbour's), and peaks closer than `merge_px`
(one target straddling a core boundary) are merged keeping the higher score.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TileConfig:
    """Tiling parameters: `size` = the model input S; `overlap` >= 32 px; `merge_px` duplicate radius."""

    size: int
    overlap: int = 32
    merge_px: float = 3.0

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError(f"tile size must be positive, got {self.size}")
        if not 0 <= self.overlap < self.size:
            raise ValueError(f"tile overlap must be in [0, {self.size}), got {self.overlap}")


@dataclass(frozen=True)
class Tile:
    """One tile: its top-left corner and size in frame px, and the core it owns (x0, y0, x1, y1)."""

    x: int
    y: int
    w: int
    h: int
    core: tuple[float, float, float, float]

    def crop(self, frame: np.ndarray) -> np.ndarray:
        return frame[self.y:self.y + self.h, self.x:self.x + self.w]

    def owns(self, xy: np.ndarray) -> np.ndarray:
        """Boolean mask of frame-px points inside this tile's core (left/top edges inclusive)."""
        x0, y0, x1, y1 = self.core
        return (xy[:, 0] >= x0) & (xy[:, 0] < x1) & (xy[:, 1] >= y0) & (xy[:, 1] < y1)


def tile_starts(length: int, size: int, overlap: int) -> list[int]:
    """Evenly spread tile origins covering [0, length) with neighbours overlapping >= `overlap` px."""
    if length <= size:
        return [0]
    n = max(2, math.ceil((length - overlap) / (size - overlap)))
    while True:  # rounding to whole px may shave one px off an overlap: add a tile then
        starts = [int(round(v)) for v in np.linspace(0, length - size, n)]
        if min(a + size - b for a, b in zip(starts[:-1], starts[1:])) >= overlap:
            return starts
        n += 1


def _cores(starts: list[int], size: int) -> list[tuple[float, float]]:
    """Core interval per tile: boundaries at the middle of each overlap, open at both frame ends."""
    bounds = [(a + size + b) / 2.0 for a, b in zip(starts[:-1], starts[1:])]
    lo = [-math.inf] + bounds
    hi = bounds + [math.inf]
    return list(zip(lo, hi))


def tile_grid(height: int, width: int, cfg: TileConfig) -> list[Tile]:
    """Tiles covering a height×width frame (row-major); a side <= S gets one tile of its own length."""
    xs, ys = tile_starts(width, cfg.size, cfg.overlap), tile_starts(height, cfg.size, cfg.overlap)
    cx, cy = _cores(xs, cfg.size), _cores(ys, cfg.size)
    tw, th = min(cfg.size, width), min(cfg.size, height)
    return [Tile(x, y, tw, th, (cx[i][0], cy[j][0], cx[i][1], cy[j][1]))
            for j, y in enumerate(ys) for i, x in enumerate(xs)]


def merge_peaks(xy: np.ndarray, scores: np.ndarray, radius: float = 3.0) -> np.ndarray:
    """Indices of the points kept after greedy score-ordered merging of points within `radius` px.

    The highest-scoring point of each cluster wins (its position and score are kept as is).
    """
    xy = np.asarray(xy, dtype=np.float32).reshape(-1, 2)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    if len(order) <= 1:
        return order
    d2 = ((xy[order, None, :] - xy[None, order, :]) ** 2).sum(-1)
    close = d2 <= radius * radius
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(order[i])
        suppressed |= close[i]
    return np.asarray(keep, dtype=np.int64)


def global_filter(scores: np.ndarray, top_k: int | None = None, vr: float | None = None) -> np.ndarray:
    """Indices (score-descending) that survive the decoder's frame-level rules after merging tiles.

    `vr`: keep scores >= (1 - vr) · best, as the codec does within one map; `top_k`: at most K.
    """
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    if len(order) and vr is not None:
        order = order[scores[order] >= (1.0 - float(vr)) * scores[order[0]]]
    if top_k is not None and top_k > 0:
        order = order[:top_k]
    return order
