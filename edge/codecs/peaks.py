"""Vectorised peak decoding of a one-channel heatmap: threshold, 3×3 NMS, top-K, sub-pixel.

Speed matters on the device (the decode runs once per frame on a CPU next to the accelerator;
goal: about 3× one `cv2.dilate` 3×3 of the map, see benchmarks/decode.py), and at these map
sizes a numpy call costs more in overhead than in arithmetic. So the full map is touched once,
`(map > thr).nonzero()` leaves the candidates (the cells of a few targets), one gather through
a per-shape table of 3×3 windows (`_tables`, built once) fetches every candidate's 9 values,
and NMS, top-K and the sub-pixel fit all work on those few rows. No Python loop over cells or
candidates.

Out-of-map neighbours are mirrored (x = −1 reads x = 1, as cv2's BORDER_REFLECT_101): for the
NMS that only repeats a real neighbour, so the result equals SPIRE's −inf padded 3×3 max-pool;
for the parabola it makes both sides equal, so a border cell is not moved along that axis.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

REFINE_METHODS = ("quadratic", "centroid", "quarter", "none")
# window columns: 0 = the cell, then (dy, dx) in this order
_DY = np.array([0, -1, -1, -1, 0, 0, 1, 1, 1])
_DX = np.array([0, -1, 0, 1, -1, 1, -1, 0, 1])
_L, _U, _R, _D = 4, 2, 5, 7  # left, up, right, down columns
# window @ _PARABOLA = [(l − r)/2, (u − d)/2, l + r − 2c, u + d − 2c]
_PARABOLA = np.zeros((9, 4), np.float32)
_PARABOLA[[_L, _R], 0] = 0.5, -0.5
_PARABOLA[[_U, _D], 1] = 0.5, -0.5
_PARABOLA[[_L, _R, 0], 2] = 1, 1, -2
_PARABOLA[[_U, _D, 0], 3] = 1, 1, -2


def _reflect(i: np.ndarray, n: int) -> np.ndarray:
    i = np.where(i < 0, -i, i)
    i = np.where(i > n - 1, 2 * (n - 1) - i, i)
    return np.clip(i, 0, n - 1)  # n == 1: the cell itself


@lru_cache(maxsize=4)
def _tables(h: int, w: int) -> dict:
    """Per map shape, built once (about 90 bytes per cell, 2.3 MB for a 160×160 map):
    win:  (n, 9) flat indices of each cell's 3×3 window (cell first, mirrored at borders);
    cell: (n, 2) float32 (x, y);
    quarter: (n, 1) float32, SPIRE's shift condition 1 < x < W−1 and 1 < y < H−1."""
    ys, xs = np.mgrid[:h, :w]
    win = _reflect(ys[..., None] + _DY, h) * w + _reflect(xs[..., None] + _DX, w)
    quarter = (xs > 1) & (xs < w - 1) & (ys > 1) & (ys < h - 1)
    return {"win": win.reshape(-1, 9).astype(np.intp),  # intp: take() needs no index cast
            "cell": np.stack([xs, ys], -1).reshape(-1, 2).astype(np.float32),
            "quarter": quarter.reshape(-1, 1).astype(np.float32)}


def as_map(heatmap) -> np.ndarray:
    """(h, w), (1, h, w) or (1, 1, h, w) -> contiguous float32 (h, w)."""
    if type(heatmap) is np.ndarray and heatmap.ndim == 2 and heatmap.dtype == np.float32 \
            and heatmap.flags.c_contiguous:
        return heatmap
    hm = np.asarray(heatmap)
    while hm.ndim > 2 and hm.shape[0] == 1:
        hm = hm[0]
    if hm.ndim != 2:
        raise ValueError(f"decode expects one map of shape (h, w), (1, h, w) or (1, 1, h, w), got {np.shape(heatmap)}")
    return np.ascontiguousarray(hm, dtype=np.float32)


def find_peaks(hm: np.ndarray, thr: float) -> tuple[np.ndarray, np.ndarray]:
    """Cells with value > thr that equal their 3×3 maximum (plateaus included, as `== maxpool`),
    in row-major order: (flat indices (P,), 3×3 window values (P, 9), column 0 = the peak)."""
    flat = hm.ravel()
    idx = (flat > thr).nonzero()[0]
    vals = flat.take(_tables(*hm.shape)["win"][idx])
    # a peak is >= all 8 neighbours: argmax returns the first maximum, column 0 on ties
    peak = vals.argmax(1) == 0
    return idx[peak], vals[peak]


def select_top_k(idx: np.ndarray, vals: np.ndarray, top_k: int, vr: float | None = None):
    """Sort by value (descending, ties in row-major order as SPIRE's stable sort), keep K.

    Why the order is total (value, then row-major index): it makes top-K a prefix of one sorted
    list, so the K best peaks above t are the peaks above t among the K best above any t' < t.

    vals: (P, 9) windows from `find_peaks` (or (P,) values). vr (SPIRE's relative cut, method.md
    §4 step 3): drop every peak whose gap to the best exceeds vr·best (the official
    `max − min > vr·max` test, in float32).
    """
    v = vals[:, 0] if vals.ndim == 2 else vals
    if v.size > 4 * top_k and vr is None:  # many peaks: partial sort first
        # every peak tied with the K-th value is kept before the stable sort, so ties at the cut
        # break in row-major order as in the full sort: decoding at threshold t then equals the
        # points of a lower-threshold decode with score > t, exactly (benchmarks.track --sweep-thr)
        kth = -np.partition(-v, top_k - 1)[top_k - 1]
        part = np.flatnonzero(v >= kth)
        order = part[np.argsort(-v[part], kind="stable")][:top_k]
    else:
        order = np.argsort(-v, kind="stable")
        if vr is not None and order.size:
            best = v[order[0]]
            order = order[~((best - v[order]) > np.float32(vr) * best)]
        order = order[:top_k]
    return idx[order], vals[order]


def refine(hm: np.ndarray, idx: np.ndarray, vals: np.ndarray, method: str = "quadratic") -> np.ndarray:
    """Sub-cell offsets (N, 2) float32 (dx, dy), in cells, of peaks at flat indices `idx` with
    3×3 windows `vals` (N, 9) from `find_peaks` (position = cell + offset).

    quadratic: parabola through each axis' 3 values, on log values when all are positive
               (exact for a Gaussian peak, the DARK trick), raw values per axis otherwise; at
               a peak the vertex lies within ±0.5 by construction; border cells do not move
               along the axis they border;
    centroid:  value-weighted centroid of the 3×3 window (negative values and out-of-map
               cells count as 0);
    quarter:   SPIRE's 0.25·sign(right − left) shift, only when 1 < x < W−1 and 1 < y < H−1
               (cells in row/column 0 or 1 are never refined, method.md §4 step 4);
    none:      no offset.
    """
    if method == "quadratic":
        if vals.min() > 0:  # the common case: one log-parabola for all
            r = np.log(vals) @ _PARABOLA
        else:  # per axis: log where its 3 values are positive, raw values elsewhere
            r = vals @ _PARABOLA
            if vals.max() > 0:
                c = vals[:, :1] > 0
                pos = np.concatenate([c & (vals[:, [_L]] > 0) & (vals[:, [_R]] > 0),
                                      c & (vals[:, [_U]] > 0) & (vals[:, [_D]] > 0)], 1)
                rl = np.log(np.where(vals > 0, vals, 1)) @ _PARABOLA
                r = np.where(np.concatenate([pos, pos], 1), rl, r)
        return r[:, :2] / np.minimum(r[:, 2:], -1e-30)  # flat (den 0): no shift
    if method == "none":
        return np.zeros((len(idx), 2), np.float32)
    t = _tables(*hm.shape)
    if method == "quarter":
        diff = vals[:, [_R, _D]] - vals[:, [_L, _U]]
        return np.float32(0.25) * np.sign(diff) * t["quarter"][idx]
    if method == "centroid":
        h, w = hm.shape
        cell = t["cell"][idx]
        ny, nx = cell[:, 1:] + _DY, cell[:, :1] + _DX
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        wts = np.where(inside, np.maximum(vals, 0), 0).astype(np.float64)
        tot = wts.sum(1, keepdims=True)
        return (np.stack([wts @ _DX, wts @ _DY], 1) / np.where(tot > 0, tot, 1.0)).astype(np.float32)
    raise ValueError(f"refine must be one of {REFINE_METHODS}, got {method!r}")


def cell_table(shape: tuple) -> np.ndarray:
    """(n, 2) float32 (x, y) of every cell of a map of this shape (cached)."""
    return _tables(*shape)["cell"]
