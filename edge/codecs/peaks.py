"""Vectorised peak decoding of a one-channel heatmap: threshold, 3×3 NMS, top-K, sub-pixel.

Speed matters on the device (the decode runs once per frame on a CPU next to the NPU), so the
order is chosen to touch the full map only once: threshold first (`np.flatnonzero(map > thr)`
leaves a handful of candidates), then compare only those candidates with their 8 neighbours
(index clipping at the border is the same as SPIRE's −inf padded max-pool: a clipped neighbour
is the cell itself or a real neighbour). No Python loop over cells or candidates.
"""
from __future__ import annotations

import numpy as np

REFINE_METHODS = ("quadratic", "centroid", "quarter", "none")
# 8-neighbourhood offsets (dy, dx)
_DY = np.array([-1, -1, -1, 0, 0, 1, 1, 1])
_DX = np.array([-1, 0, 1, -1, 1, -1, 0, 1])


def as_map(heatmap) -> np.ndarray:
    """(h, w), (1, h, w) or (1, 1, h, w) -> contiguous float32 (h, w)."""
    hm = np.asarray(heatmap)
    while hm.ndim > 2 and hm.shape[0] == 1:
        hm = hm[0]
    if hm.ndim != 2:
        raise ValueError(f"decode expects one map of shape (h, w), (1, h, w) or (1, 1, h, w), got {np.shape(heatmap)}")
    return np.ascontiguousarray(hm, dtype=np.float32)


def find_peaks(hm: np.ndarray, thr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells with value > thr that equal their 3×3 maximum, in row-major order: (ys, xs, values)."""
    h, w = hm.shape
    flat = hm.ravel()
    idx = np.flatnonzero(flat > thr)
    if idx.size == 0:
        return idx, idx, flat[idx]
    ys, xs = np.divmod(idx, w)
    v = flat[idx]
    ny = np.clip(ys[:, None] + _DY, 0, h - 1)
    nx = np.clip(xs[:, None] + _DX, 0, w - 1)
    peak = (v[:, None] >= flat[ny * w + nx]).all(axis=1)
    return ys[peak], xs[peak], v[peak]


def select_top_k(ys, xs, v, top_k: int, vr: float | None = None):
    """Sort by value (descending, ties in row-major order as SPIRE's stable sort), keep K.

    vr (SPIRE's relative cut, method.md §4 step 3): drop every peak whose gap to the best
    exceeds vr·best (the official `max − min > vr·max` test, in float32).
    """
    if v.size == 0:
        return ys, xs, v
    if vr is None and v.size > top_k:
        part = np.argpartition(-v, top_k - 1)[:top_k]
        order = part[np.argsort(-v[part], kind="stable")]
    else:
        order = np.argsort(-v, kind="stable")
        if vr is not None:
            best = v[order[0]]
            keep = ~((best - v[order]) > np.float32(vr) * best)
            order = order[keep]
        order = order[:top_k]
    return ys[order], xs[order], v[order]


def _parabola(l, c, r):
    """Vertex offset of the parabola through (−1, l), (0, c), (1, r), in [−0.5, 0.5].

    Fitted on log values where all three are positive: exact for a Gaussian peak (the DARK
    trick), on raw values otherwise.
    """
    pos = (l > 0) & (c > 0) & (r > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        L = np.where(pos, np.log(np.where(pos, l, 1)), l)
        C = np.where(pos, np.log(np.where(pos, c, 1)), c)
        R = np.where(pos, np.log(np.where(pos, r, 1)), r)
        den = L - 2 * C + R
        off = np.where(den < 0, 0.5 * (L - R) / np.where(den < 0, den, -1), 0.0)
    return np.clip(off, -0.5, 0.5)


def refine(hm: np.ndarray, ys, xs, method: str = "quadratic") -> tuple[np.ndarray, np.ndarray]:
    """Sub-cell positions (float64 cell coords x, y) of integer peaks on the raw map.

    quadratic: parabola through the 3 neighbours per axis (border cells are not moved);
    centroid:  value-weighted centroid of the 3×3 window (negative values count as 0);
    quarter:   SPIRE's 0.25·sign(right − left) shift, only when 1 < x < W−1 and 1 < y < H−1
               (so cells in row/column 0 or 1 are never refined, method.md §4 step 4);
    none:      the cell itself.
    """
    h, w = hm.shape
    x = xs.astype(np.float64)
    y = ys.astype(np.float64)
    if method == "none" or xs.size == 0:
        return x, y
    flat = hm.ravel()
    xl, xr = np.clip(xs - 1, 0, w - 1), np.clip(xs + 1, 0, w - 1)
    yu, yd = np.clip(ys - 1, 0, h - 1), np.clip(ys + 1, 0, h - 1)
    if method == "quarter":
        ok = (xs > 1) & (xs < w - 1) & (ys > 1) & (ys < h - 1)
        dx = np.sign(flat[ys * w + xr] - flat[ys * w + xl])
        dy = np.sign(flat[yd * w + xs] - flat[yu * w + xs])
        return x + np.where(ok, 0.25 * dx, 0.0), y + np.where(ok, 0.25 * dy, 0.0)
    c = flat[ys * w + xs].astype(np.float64)
    if method == "quadratic":
        okx = (xs > 0) & (xs < w - 1)
        oky = (ys > 0) & (ys < h - 1)
        ox = _parabola(flat[ys * w + xl].astype(np.float64), c, flat[ys * w + xr].astype(np.float64))
        oy = _parabola(flat[yu * w + xs].astype(np.float64), c, flat[yd * w + xs].astype(np.float64))
        return x + np.where(okx, ox, 0.0), y + np.where(oky, oy, 0.0)
    if method == "centroid":
        dy = np.concatenate([[0], _DY])
        dx = np.concatenate([[0], _DX])
        ny, nx = ys[:, None] + dy, xs[:, None] + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        vals = flat[np.clip(ny, 0, h - 1) * w + np.clip(nx, 0, w - 1)].astype(np.float64)
        wts = np.where(inside, np.maximum(vals, 0.0), 0.0)
        tot = wts.sum(1)
        safe = np.where(tot > 0, tot, 1.0)
        return x + (wts * dx).sum(1) / safe, y + (wts * dy).sum(1) / safe
    raise ValueError(f"refine must be one of {REFINE_METHODS}, got {method!r}")
