"""Drawing detections on a frame: the one picture behind overlays, the annotated video, the contact sheet and --show.

`annotate(frame, pts, gt, info, layers)` returns an 8-bit BGR picture (OpenCV's order, ready
for VideoWriter / imwrite / imshow):

- detections as circles with their score: green when they match a labelled target (within the
  metric's 5 px), orange when they are false alarms (only known where the frame is labelled);
- labelled targets as red crosses, with a red square around the ones no detection found (misses);
- a header with the frame name and index, detection count and best score, GT / miss / false-alarm
  counts and the live FPS.

Small sensor frames (320×256) are scaled up by an integer factor (pixel-exact, nearest
neighbour) so the 2-px targets and the text stay readable. `layers` are extra drawing steps,
called after the points and before the header with a `Canvas` (the picture, its scale and a
`pt(x, y)` that maps image px onto it): a tracker draws its ids and trails this way without
touching this module.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from edge.metrics.constants import HIT_RADIUS_PX

__all__ = ["FrameInfo", "Canvas", "Layer", "annotate", "render_base", "auto_scale", "frame_errors", "COLORS"]

COLORS = {  # BGR
    "hit": (60, 220, 60),
    "false": (0, 160, 255),
    "det": (60, 220, 60),  # unlabelled frame: every detection the same colour
    "gt": (60, 60, 255),
    "miss": (40, 40, 255),
    "text": (255, 255, 80),
    "bad": (40, 40, 255),
}
MATCH_PX = HIT_RADIUS_PX  # the point metrics' hit radius (edge.metrics.constants: SPIRE convention)


@dataclass
class FrameInfo:
    """What the header says about a frame: its run index, name, the live FPS and a free note."""

    index: int = 0
    name: str = ""
    fps: float | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)  # for layers (e.g. tracks of this frame)


@dataclass
class Canvas:
    """The picture being drawn (BGR uint8) and the mapping of image px onto it."""

    img: np.ndarray
    scale: int = 1

    def pt(self, x: float, y: float) -> tuple[int, int]:
        """Image px (pixel i's centre is i) -> canvas px of that pixel's centre."""
        s = self.scale
        return int(round((float(x) + 0.5) * s - 0.5)), int(round((float(y) + 0.5) * s - 0.5))

    @property
    def radius(self) -> int:
        return max(5, round(min(self.img.shape[:2]) / 45))

    @property
    def font(self) -> float:
        return max(0.4, min(self.img.shape[:2]) / 900)


Layer = Callable[[Canvas, FrameInfo], None]


def auto_scale(hw: tuple[int, int], target: int = 480) -> int:
    """Integer upscale that brings the shorter side to about `target` px (1 for large frames)."""
    return max(1, min(4, int(round(target / max(1, min(hw[:2]))))))


def render_base(frame: np.ndarray, scale: int = 1) -> Canvas:
    """The frame as 8-bit BGR (percentile AGC for non-8-bit frames), scaled up `scale` times."""
    import cv2

    from edge.inference.preprocess import percentile_agc

    img = frame if frame.dtype == np.uint8 else np.clip(percentile_agc(frame), 0, 255).astype(np.uint8)
    img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if scale > 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    return Canvas(np.ascontiguousarray(img), int(scale))


def frame_errors(pts, gt, max_dist: float = MATCH_PX):
    """(hit (N,) bool per detection, found (M,) bool per target) or (None, None) when unlabelled."""
    if gt is None:
        return None, None
    from edge.metrics import match

    m = match(np.asarray(gt, np.float32).reshape(-1, 2), pts.xy, max_dist)
    return m.pred_matched(), m.gt_matched()


def _text(img, s: str, org, scale: float, color) -> None:
    """Text on a dark box, readable over bright cloud and dark sky alike."""
    import cv2

    (w, h), base = cv2.getTextSize(s, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = org
    x0, y0, x1, y1 = max(0, x - 2), max(0, y - h - 3), min(img.shape[1], x + w + 2), min(img.shape[0], y + base + 1)
    if x1 > x0 and y1 > y0:
        img[y0:y1, x0:x1] = (img[y0:y1, x0:x1] * 0.35).astype(np.uint8)
    cv2.putText(img, s, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def draw_points(cv: Canvas, pts, gt=None, hit=None, found=None) -> None:
    """Targets (crosses, misses boxed) and detections (circles with scores) onto the canvas."""
    import cv2

    r = cv.radius
    if gt is not None:
        for k, (x, y) in enumerate(np.asarray(gt, np.float32).reshape(-1, 2).tolist()):
            c = cv.pt(x, y)
            cv2.drawMarker(cv.img, c, COLORS["gt"], cv2.MARKER_CROSS, r, 1)
            if found is not None and not found[k]:
                cv2.rectangle(cv.img, (c[0] - 2 * r, c[1] - 2 * r), (c[0] + 2 * r, c[1] + 2 * r), COLORS["miss"], 2)
    for k, ((x, y), s) in enumerate(zip(pts.xy.tolist(), pts.scores.tolist())):
        color = COLORS["det"] if hit is None else (COLORS["hit"] if hit[k] else COLORS["false"])
        c = cv.pt(x, y)
        cv2.circle(cv.img, c, r, color, 2 if hit is not None and not hit[k] else 1, cv2.LINE_AA)
        _text(cv.img, f"{s:.2f}", (c[0] + r + 2, c[1] - r), cv.font * 0.9, color)


def draw_header(cv: Canvas, info: FrameInfo, pts, gt=None, hit=None, found=None) -> None:
    """Name and index, detections and best score, GT / miss / false-alarm counts, live FPS."""
    f = cv.font
    line = int(22 * f / 0.5)
    best = f"  best {float(pts.scores.max()):.2f}" if len(pts) else ""
    fps = f"  {info.fps:.1f} FPS" if info.fps else ""
    rows = [(f"{info.name}  [{info.index}]{fps}", COLORS["text"]),
            (f"det {len(pts)}{best}", COLORS["text"])]
    if gt is not None:
        miss = int((~found).sum()) if found is not None else 0
        fa = int((~hit).sum()) if hit is not None else 0
        rows.append((f"GT {len(found) if found is not None else 0}  miss {miss}  FA {fa}",
                     COLORS["bad"] if miss or fa else COLORS["hit"]))
    if info.note:
        rows.append((info.note, COLORS["text"]))
    for k, (s, color) in enumerate(rows):
        _text(cv.img, s, (6, line * (k + 1)), f, color)


def annotate(frame: np.ndarray, pts, gt=None, info: FrameInfo | None = None, layers: Sequence[Layer] = (),
             scale: int | None = None, errors=None) -> np.ndarray:
    """8-bit BGR picture of `frame` with detections, labels, counts and FPS (see the module docstring).

    Args:
        frame: H×W or H×W×3 RGB, any dtype edge reads.
        pts: edge.inference.points.Points in image px.
        gt: (M, 2) labelled targets in image px, or None (unlabelled: no hit/miss colours).
        info: header data (frame index, name, live FPS).
        layers: extra drawing steps `fn(canvas, info)` (tracks), drawn over the points.
        scale: integer upscale (None: `auto_scale`).
        errors: (hit, found) from `frame_errors` when the caller has them already.
    """
    info = info or FrameInfo()
    cv = render_base(frame, auto_scale(frame.shape) if scale is None else int(scale))
    hit, found = errors if errors is not None else frame_errors(pts, gt)
    draw_points(cv, pts, gt, hit, found)
    for layer in layers:
        layer(cv, info)
    draw_header(cv, info, pts, gt, hit, found)
    return cv.img
