"""Camera ego-motion between two frames by global registration (OpenCV phase correlation or ECC).

Why its own module: the tracker needs the scene's image shift per frame to keep its tracks in a
stabilised frame, and the benchmark caches the same shifts per clip; both call these two
functions, so a registration change is made once. numpy + OpenCV only (runs on the device).
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["EGO_METHODS", "registration_image", "estimate_shift"]

EGO_METHODS = ("phase", "ecc")


def registration_image(frame: np.ndarray, scale: float = 1.0, highpass_px: float = 10.0) -> np.ndarray:
    """The float32 gray image that `estimate_shift` registers: resized by `scale`, minus a Gaussian
    blur of `highpass_px` (at full resolution). Why the high-pass: vignetting and the camera's
    gain gradient do not move with the scene, and with them in, ECC is pulled towards zero shift
    (by ~1 px of 10 on synthetic clips) and phase correlation locks onto them on a bare sky."""
    g = np.asarray(frame)
    if g.ndim == 3:
        g = cv2.cvtColor(g[:, :, :3].astype(np.float32), cv2.COLOR_RGB2GRAY)
    g = g.astype(np.float32, copy=False)
    if scale != 1.0:
        g = cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if highpass_px > 0:
        g = g - cv2.GaussianBlur(g, (0, 0), highpass_px * scale)
    return g


def estimate_shift(prev: np.ndarray, cur: np.ndarray, method: str = "phase", min_response: float = 0.05,
                   window: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """((dx, dy), confidence): how far the scene moved in the image from `prev` to `cur` (two
    `registration_image`s of one size). A world point at p in `prev` is at p + (dx, dy) in `cur`.

    phase: `cv2.phaseCorrelate` with a Hanning window (without it the frame borders dominate);
    a peak response below `min_response` (no texture to register) gives (0, 0).
    ecc: that estimate refined by `cv2.findTransformECC` (translation; invariant to a gain and
    offset change of the camera's AGC); where ECC does not converge the phase estimate stays.
    """
    if method not in EGO_METHODS:
        raise ValueError(f"ego method must be one of {EGO_METHODS}, got {method!r}")
    if window is None:
        window = cv2.createHanningWindow((cur.shape[1], cur.shape[0]), cv2.CV_32F)
    (dx, dy), resp = cv2.phaseCorrelate(prev, cur, window)
    if not np.isfinite(resp) or resp < min_response:
        return np.zeros(2), float(resp) if np.isfinite(resp) else 0.0
    if method == "phase":
        return np.array([dx, dy]), float(resp)
    # ECC refines the phase estimate (from identity it stalls in a local optimum past a few px);
    # it maps template (cur) coordinates into input (prev): prev(x - shift) = cur(x)
    warp = np.array([[1, 0, -dx], [0, 1, -dy]], np.float32)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
    try:
        cc, warp = cv2.findTransformECC(cur, prev, warp, cv2.MOTION_TRANSLATION, crit, None, 5)
    except cv2.error:
        return np.array([dx, dy]), float(resp)
    return -warp[:, 2].astype(np.float64), float(cc)
