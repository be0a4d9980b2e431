"""Geometric augmentation of a raw frame and its point labels (numpy + OpenCV, no torch).

Why its own module: augmentation must move the image and the points by exactly the same
transform, or the targets drift off the small objects they label. Every operation here is one
affine map applied to both, with OpenCV's pixel-centre convention (pixel i covers [i-0.5, i+0.5],
so `cv2.resize` by z maps x to (x + 0.5) * z - 0.5).

Two recipes, chosen by the model's preprocessing:
- whole frame (`crop=None`, faithful SPIRE with letterbox scale-up): SPIRE's random centred zoom
  U(1, 1.15), then one of the 8 flips/transposes;
- native-resolution crops (`crop=S`): an S x S window around a random target (or anywhere, for
  background samples) cut and zoomed in ONE `cv2.warpAffine`, then a flip/transpose. Training on
  crops is the big CPU speed-up; the fully convolutional models are evaluated on whole frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """What the training sampler does to a frame before preprocessing.

    zoom: (low, high) of the uniform zoom factor (SPIRE: 1.0 .. 1.15); (1, 1) turns zoom off.
    dihedral: random flips and transposes (the 8 symmetries of the square).
    crop: side of the target-centred crop in output pixels, or None for whole frames.
    margin: smallest distance (source px) kept between the chosen target and the crop border.
    edge_slack: how far (source px) a crop may overhang the frame border, showing the zero
        padding that whole-frame evaluation adds (pad to a multiple of 32: at most 16 px a side),
        so the network learns that a frame edge is not a target.
    photometric: probability of `sensor_photometric` on a view (0: never).
    """

    zoom: tuple[float, float] = (1.0, 1.15)
    dihedral: bool = True
    crop: int | None = None
    margin: float = 8.0
    edge_slack: float = 16.0
    photometric: float = 0.0

    def __post_init__(self) -> None:
        lo, hi = self.zoom
        if not 0 < lo <= hi:
            raise ValueError(f"AugmentConfig.zoom must satisfy 0 < low <= high, got {self.zoom}")
        if self.crop is not None and self.crop < 8:
            raise ValueError(f"AugmentConfig.crop must be >= 8 px or None, got {self.crop}")


def _as_points(points: np.ndarray | None) -> np.ndarray:
    if points is None:
        return np.zeros((0, 2), np.float32)
    return np.asarray(points, np.float32).reshape(-1, 2)


def keep_inside(points: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Points whose centre lies on the frame (pixel-centre convention: -0.5 <= x < W - 0.5)."""
    h, w = hw
    p = _as_points(points)
    ok = (p[:, 0] >= -0.5) & (p[:, 0] < w - 0.5) & (p[:, 1] >= -0.5) & (p[:, 1] < h - 0.5)
    return p[ok]


def warp_window(frame: np.ndarray, points: np.ndarray, x0: float, y0: float, zoom: float,
                out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Cut the source window whose top-left pixel edge is (x0, y0), magnified by `zoom`.

    The output is `out_hw`; source pixels outside the frame are zero. One bilinear warp does crop
    and zoom together, so only output pixels are ever computed (cheap on 1920x1080 frames).
    """
    oh, ow = out_hw
    m = np.array([[zoom, 0.0, zoom * (0.5 - x0) - 0.5],
                  [0.0, zoom, zoom * (0.5 - y0) - 0.5]], np.float64)
    out = cv2.warpAffine(frame, m, (ow, oh), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if frame.ndim == 3 and out.ndim == 2:  # cv2 drops a trailing channel axis of size 1
        out = out[:, :, None]
    p = _as_points(points)
    p = p * zoom + np.array([m[0, 2], m[1, 2]], np.float32)
    return out, keep_inside(p, (oh, ow))


def centred_zoom(frame: np.ndarray, points: np.ndarray, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """SPIRE's zoom: magnify by `zoom` about the frame centre and keep the frame size."""
    h, w = frame.shape[:2]
    x0 = w / 2 - w / (2 * zoom)
    y0 = h / 2 - h / (2 * zoom)
    return warp_window(frame, points, x0, y0, zoom, (h, w))


def dihedral(frame: np.ndarray, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply symmetry k in 0..7: bit 0 flips left-right, bit 1 flips up-down, bit 2 transposes."""
    p = _as_points(points).copy()
    h, w = frame.shape[:2]
    if k & 1:
        frame = frame[:, ::-1]
        p[:, 0] = w - 1 - p[:, 0]
    if k & 2:
        frame = frame[::-1]
        p[:, 1] = h - 1 - p[:, 1]
    if k & 4:
        frame = frame.swapaxes(0, 1)
        p = p[:, ::-1]
    return np.ascontiguousarray(frame), np.ascontiguousarray(p, dtype=np.float32)


def _window_start(length: int, win: float, centre: float | None, margin: float,
                  rng: np.random.Generator, slack: float = 0.0) -> float:
    """Left edge of a window of `win` px on an axis of `length` px, holding `centre` if given.

    The window stays within [-slack, length + slack]; a frame shorter than the window is placed
    anywhere inside it.
    """
    if length <= win:
        return float(rng.uniform(length - win, 0.0))
    a, b = -slack, length - win + slack
    if centre is None:
        return float(rng.uniform(a, b))
    m = min(margin, win / 2)
    lo = max(a, centre + 0.5 - win + m)
    hi = min(b, centre + 0.5 - m)
    if lo > hi:  # target closer to the border than the margin allows: stay on the frame
        return float(np.clip(centre + 0.5 - win / 2, a, b))
    return float(rng.uniform(lo, hi))


def random_crop(frame: np.ndarray, points: np.ndarray, size: int, rng: np.random.Generator,
                zoom: float = 1.0, centre: tuple[float, float] | None = None, margin: float = 8.0,
                slack: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A size x size crop, zoomed by `zoom`, holding the place `centre` (x, y: a target's point or a
    mined false alarm) at least `margin` px inside (None: anywhere on the frame)."""
    p = _as_points(points)
    h, w = frame.shape[:2]
    win = size / zoom
    cx, cy = (None, None) if centre is None else (float(centre[0]), float(centre[1]))
    x0 = _window_start(w, win, cx, margin, rng, slack)
    y0 = _window_start(h, win, cy, margin, rng, slack)
    return warp_window(frame, p, x0, y0, zoom, (size, size))


def augment(frame: np.ndarray, points: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator,
            background: bool = False, centre: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One random training view of (frame, points) by `cfg`.

    background: for crops, place the window anywhere instead of on a target (negative samples).
    centre: with `background`, hold this place (x, y) inside the window instead (a mined false
    alarm: the view shows the clutter the model fires on, and any real target near it is kept).
    """
    p = _as_points(points)
    lo, hi = cfg.zoom
    z = float(rng.uniform(lo, hi)) if hi > lo else float(lo)
    if cfg.crop is None:
        if z != 1.0:
            frame, p = centred_zoom(frame, p, z)
    else:
        if not background and len(p):  # a target-centred view: one of the targets, at random
            centre = tuple(p[int(rng.integers(len(p)))])
        frame, p = random_crop(frame, p, cfg.crop, rng, zoom=z, centre=centre, margin=cfg.margin,
                               slack=cfg.edge_slack)
    if cfg.dihedral:
        frame, p = dihedral(frame, p, int(rng.integers(8)))
    if cfg.photometric > 0 and rng.random() < cfg.photometric:
        frame = sensor_photometric(frame, rng)
    return frame, p


def sensor_photometric(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What another IR sensor or AGC setting does to the same scene: gain/offset, gamma, noise, blur.

    Why: the validation and field frames come from other cameras than the training ones, with other
    automatic gain control, optics and noise floors; a point target must be found by its shape
    against the local clutter, not by an absolute grey level. Values stay in the frame's dtype
    range (uint8 / uint16 are clipped and rounded back); geometry and labels are untouched.
    """
    dt = frame.dtype
    top = 255.0 if dt == np.uint8 else 65535.0 if dt == np.uint16 else float(max(frame.max(), 1.0))
    x = frame.astype(np.float32) / top
    x = x * float(rng.uniform(0.75, 1.3)) + float(rng.uniform(-0.1, 0.1))
    x = np.clip(x, 0.0, 1.0) ** float(rng.uniform(0.75, 1.35))
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(0.3, 0.8)))
    x = x + rng.normal(0.0, float(rng.uniform(0.0, 0.015)), x.shape).astype(np.float32)
    x = np.clip(x, 0.0, 1.0) * top
    return np.rint(x).astype(dt) if dt.kind in "ui" else x.astype(dt)
