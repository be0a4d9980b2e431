"""Scenario geometry for `edge.datasets.synthetic.make_sequence`: crossings, occlusions, false alarms, camera pan.

Why a module of its own: these are the situations a point tracker must survive (two targets
crossing must keep their ids, an occluded target must come back under its id, a one-frame false
alarm must never become a track, a panning camera must not break tracks), and each needs ground
truth that says exactly what happened in every frame. The functions here only plan positions
(numpy); `make_sequence` renders them with the same clutter, sensor and PSF as every other frame.

Conventions: camera position `cam[i]` (px); a scene point at stabilised position P is at P - cam[i]
in frame i, so the scene moves by -(cam[i] - cam[i-1]) in the image between frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Scenario", "smooth_paths", "camera_path", "crossing_paths", "visibility", "false_alarm_points"]


@dataclass(frozen=True)
class Scenario:
    """The tracker situations of a clip, all off by default.

    crossing: targets 0 and 1 cross at right angles at the centre at frame n_frames // 2;
    occlusions: (target, first frame, frames) triples: the target is not rendered nor labelled;
    false_alarms: that many one-frame target-like blobs (in `SynthFrame.false_alarms`, not in `points`);
    pan: camera motion, (dx, dy) px per frame or (n_frames, 2) positions: clutter and targets
    move by -(camera step) in the image; a target out of view (within 2 px of the border) is not labelled.
    """

    crossing: bool = False
    occlusions: tuple = ()
    false_alarms: int = 0
    pan: object = None


def smooth_paths(rng, p0: np.ndarray, n_frames: int, shape, margin: float, speed) -> np.ndarray:
    """(n_frames, n, 2) smooth curved paths from `p0` (n, 2): an end point `speed` px/frame times
    the duration away inside the margin, a sideways sine bend, positions clipped to the margin."""
    h, w = shape
    n = len(p0)
    p1, bend = np.empty_like(p0), rng.uniform(-0.15, 0.15, n)
    for k in range(n):  # end point: speed * duration away, inside the margin
        for length in np.linspace(rng.uniform(speed[0], speed[1]) * (n_frames - 1), 0, 12):
            a = rng.uniform(0, 2 * np.pi)
            e = p0[k] + length * np.array([np.cos(a), np.sin(a)])
            if margin <= e[0] <= w - 1 - margin and margin <= e[1] <= h - 1 - margin:
                break
        p1[k] = e
    s = np.linspace(0.0, 1.0, n_frames)[:, None, None] if n_frames > 1 else np.zeros((1, 1, 1))
    d = p1 - p0
    perp = np.stack([-d[:, 1], d[:, 0]], axis=1)
    return np.clip(p0 + d * s + perp * (bend * np.sin(np.pi * s[..., 0]))[..., None],
                   margin, [w - 1 - margin, h - 1 - margin])


def camera_path(pan, n_frames: int) -> np.ndarray:
    """(n_frames, 2) camera positions: None -> still; (dx, dy) -> a constant pan of that many px per
    frame; an (n_frames, 2) array -> those positions (a jerky pan, a shake)."""
    if pan is None:
        return np.zeros((n_frames, 2))
    p = np.asarray(pan, np.float64)
    if p.shape == (2,):
        return np.arange(n_frames)[:, None] * p[None, :]
    if p.shape == (n_frames, 2):
        return p.copy()
    raise ValueError(f"pan must be (dx, dy) per frame or ({n_frames}, 2) camera positions, got shape {p.shape}")


def crossing_paths(rng, n_frames: int, shape, margin: float, speed: float) -> np.ndarray:
    """(n_frames, 2, 2) straight paths of two targets that meet at the frame centre at frame
    n_frames // 2, at right angles (the moment a detector sees one blob for two targets)."""
    h, w = shape
    mid = n_frames // 2
    room = min(h, w) / 2.0 - margin - 1.0
    v = min(float(speed), room / max(mid, n_frames - 1 - mid, 1))
    a = rng.uniform(0, 2 * np.pi)
    dirs = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    c = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    t = (np.arange(n_frames) - mid)[:, None, None]
    return c[None, None, :] + t * v * dirs[None, :, :]


def visibility(n_frames: int, n_targets: int, occlusions=()) -> np.ndarray:
    """(n_frames, n_targets) bool: False where a target is occluded. occlusions: (target, first
    frame, number of frames) triples."""
    vis = np.ones((n_frames, n_targets), bool)
    for k, start, length in occlusions or ():
        if not 0 <= int(k) < n_targets:
            raise ValueError(f"occlusion of target {k}: the clip has targets 0..{n_targets - 1}")
        vis[int(start):int(start) + int(length), int(k)] = False
    return vis


def false_alarm_points(rng, n_frames: int, count: int, shape, margin: float, min_separation: float,
                       targets: list[np.ndarray]) -> list[np.ndarray]:
    """Per frame (k, 2) one-frame false alarms: `count` of them at random frames (none in frame 0)
    and places, at least `min_separation` from that frame's targets and from any false alarm of
    the neighbouring frames (so two of them never look like one moving target)."""
    h, w = shape
    out = [np.zeros((0, 2)) for _ in range(n_frames)]
    if count <= 0 or n_frames < 2:
        return out
    for i in sorted(rng.integers(1, n_frames, int(count)).tolist()):
        near = [targets[i]] + [out[j] for j in (i - 1, i, i + 1) if 0 <= j < n_frames]
        near = np.concatenate([np.asarray(a, np.float64).reshape(-1, 2) for a in near])
        for _ in range(100):
            p = np.array([rng.uniform(margin, w - 1 - margin), rng.uniform(margin, h - 1 - margin)])
            if len(near) == 0 or np.hypot(*(near - p).T).min() >= min_separation:
                out[i] = np.concatenate([out[i], p[None]])
                break
    return out
