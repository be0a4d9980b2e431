"""Signal-to-clutter ratio (SCR) of point targets: the one definition used everywhere.

Detection rate means little without knowing how hard the targets were; the per-SCR breakdown in
`PointMetrics` needs SCR values, and the synthetic generator sets target amplitudes from the same
function, so a synthetic "SCR 3" target measures 3 here.

SCR = |mu_t - mu_b| / sigma_b, with mu_t the mean over pixels whose centre lies within `r_target`
px of the point, and mu_b, sigma_b the mean and standard deviation over the background ring
`r_in <= r < r_out` px (pixel-index convention: the centre of pixel i is i). Rings are clipped
at the image border. A flat ring (sigma_b = 0) gives inf for a visible target, 0 otherwise.
"""
from __future__ import annotations

import numpy as np

from .constants import SCR_RING

__all__ = ["RING", "ring_stats", "measure_scr"]

RING = SCR_RING  # r_target, r_in, r_out in pixels (edge.metrics.constants)


def _window(shape, x: float, y: float, r: float):
    h, w = shape[:2]
    x0, x1 = max(0, int(np.floor(x - r))), min(w, int(np.ceil(x + r)) + 1)
    y0, y1 = max(0, int(np.floor(y - r))), min(h, int(np.ceil(y + r)) + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    return (slice(y0, y1), slice(x0, x1)), np.hypot(xx - x, yy - y)


def ring_stats(img: np.ndarray, x: float, y: float, ring=RING) -> tuple[float, float, float]:
    """(mu_t, mu_b, sigma_b) of a grey image around (x, y)."""
    r_t, r_in, r_out = ring
    sl, d = _window(img.shape, x, y, r_out)
    patch = img[sl].astype(np.float64)
    tgt = patch[d <= r_t]
    bg = patch[(d >= r_in) & (d < r_out)]
    mu_t = float(tgt.mean()) if tgt.size else float("nan")
    if bg.size == 0:
        return mu_t, float("nan"), float("nan")
    return mu_t, float(bg.mean()), float(bg.std())


def measure_scr(frame: np.ndarray, points, ring=RING) -> np.ndarray:
    """(N,) float32 SCR of each (x, y) point in `frame` (grey, or RGB averaged to grey)."""
    img = np.asarray(frame)
    if img.ndim == 3:
        img = img.astype(np.float64).mean(axis=2)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    out = np.empty(len(pts), np.float32)
    for k, (x, y) in enumerate(pts):
        mu_t, mu_b, sd = ring_stats(img, x, y, ring)
        diff = abs(mu_t - mu_b)
        out[k] = diff / sd if sd > 0 else (np.inf if diff > 0 else 0.0)
    return out
