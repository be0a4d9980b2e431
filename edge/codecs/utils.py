"""Numpy helpers shared by the codecs: Gaussian kernels and pasting patches onto a map.

Kept apart from the codec classes (as mmpose does) so the math can be tested on its own and
the classes stay thin. Loops run over target points (a handful per frame), never map cells.
"""
from __future__ import annotations

import math

import numpy as np


def kernel_radius(sigma: float) -> int:
    """Truncation radius 3σ in cells (σ = 2 -> 6, a 13×13 kernel as SPIRE)."""
    return int(math.ceil(3 * sigma - 1e-9))


def official_kernel(sigma: float) -> np.ndarray:
    """SPIRE's float32 (2r+1)² unnormalised Gaussian exp(−d²/2σ²) centred on a cell."""
    r = kernel_radius(sigma)
    d = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-(d[None, :] ** 2 + d[:, None] ** 2) / (2 * sigma**2))
    return k.astype(np.float32)


def subcell_gaussian(cx: float, cy: float, ix: int, iy: int, r: int, sigma: float) -> np.ndarray:
    """(2r+1)² Gaussian on the cells around (ix, iy), peaked at continuous cell coords (cx, cy)."""
    dx = np.arange(ix - r, ix + r + 1, dtype=np.float64) - cx
    dy = np.arange(iy - r, iy + r + 1, dtype=np.float64) - cy
    return np.exp(-(dy[:, None] ** 2 + dx[None, :] ** 2) / (2 * sigma**2))


def clip_window(ix: int, iy: int, r: int, h: int, w: int):
    """Slices (map_y, map_x, patch_y, patch_x) of a (2r+1)² patch centred on (ix, iy), or None
    when the window lies wholly outside the h×w map."""
    x0, y0, x1, y1 = ix - r, iy - r, ix + r, iy + r
    if x0 > w - 1 or y0 > h - 1 or x1 < 0 or y1 < 0:
        return None
    mx0, my0, mx1, my1 = max(0, x0), max(0, y0), min(x1, w - 1), min(y1, h - 1)
    return (slice(my0, my1 + 1), slice(mx0, mx1 + 1),
            slice(my0 - y0, my1 - y0 + 1), slice(mx0 - x0, mx1 - x0 + 1))


def paste_mean(heatmap: np.ndarray, patch: np.ndarray, ix: int, iy: int) -> bool:
    """SPIRE's paste: cells already > 0 become the mean of old and new, others take the new
    value (vectorised version of the official per-cell loop). False if wholly outside."""
    r = patch.shape[0] // 2
    win = clip_window(ix, iy, r, *heatmap.shape)
    if win is None:
        return False
    my, mx, py, px = win
    old = heatmap[my, mx]
    new = patch[py, px]
    heatmap[my, mx] = np.where(old > 0, (old + new) / 2, new)
    return True


def paste_max(heatmap: np.ndarray, patch: np.ndarray, ix: int, iy: int) -> bool:
    """Elementwise maximum paste: a nearby target never lowers another's peak."""
    r = patch.shape[0] // 2
    win = clip_window(ix, iy, r, *heatmap.shape)
    if win is None:
        return False
    my, mx, py, px = win
    np.maximum(heatmap[my, mx], patch[py, px].astype(heatmap.dtype), out=heatmap[my, mx])
    return True


def as_points_array(points) -> np.ndarray:
    """Anything point-like ((N,2) array, list, Points) -> float64 (N, 2)."""
    xy = getattr(points, "xy", points)
    p = np.asarray(xy if xy is not None else np.zeros((0, 2)), np.float64)
    if p.size == 0:
        return np.zeros((0, 2), np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {p.shape}")
    return p
