"""Multi-target point tracker: per-frame peaks in, confirmed point tracks out (numpy + OpenCV only).

Why: a real target persists and moves smoothly from frame to frame; most clutter peaks flicker.
Keeping only points that belong to a confirmed track removes most false alarms of a per-frame
detector at almost no cost in recall, and gives each target an id, an age and a velocity.

Per frame (`Tracker.update`):
1. ego-motion (optional): the global image shift since the previous frame, by phase correlation
   (`cv2.phaseCorrelate`, Hanning window) or ECC (`cv2.findTransformECC`, translation), or given
   by the caller (`motion=`, e.g. gimbal encoders). Tracks live in a stabilised frame: image =
   stabilised + `offset`, and `offset` accumulates the shifts, so a pan moves no track state;
2. predict: one constant-velocity `cv2.KalmanFilter` per track (state x, y, vx, vy; white
   acceleration noise), through `dt` frames when frame ids skip (a dropped frame is predicted
   through, not counted as a miss);
3. assign: Hungarian (`scipy.optimize.linear_sum_assignment`, else edge.metrics' numpy solver) on
   the distances between predicted positions and detections, pairs farther than `gate_px` never
   assigned; confirmed tracks first, then tentative ones with the detections left, so a new
   candidate never takes a detection from an established target;
4. birth / death: every unassigned detection (score >= `birth_score`) starts a tentative track;
   it is confirmed after `birth_hits` hits within its first `birth_window` frames (M of N) and
   dropped when it can no longer make it; a confirmed track dies after `max_misses` consecutive
   missed frames (K). A one-frame false alarm therefore never becomes a track when M >= 2.

What `update` returns is the confirmed tracks hit in this frame plus those missed for at most
`coast` frames (reported at their predicted position): the points to report and score.
"""
from __future__ import annotations


from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from .config import TrackerConfig
from .ego_motion import EGO_METHODS, estimate_shift, registration_image

__all__ = ["TrackerConfig", "Track", "Tracker", "estimate_shift", "registration_image", "EGO_METHODS"]


@dataclass
class Track:
    """One track as reported: id (1, 2, ... in order of confirmation; 0 while tentative), xy and
    velocity in image px (velocity in px/frame relative to the scene when ego-motion is on),
    score = mean detection score over its hits, age = frames since its first detection, hits,
    misses = consecutive missed frames now, trail = recent image positions (oldest first)."""

    id: int
    xy: np.ndarray
    velocity: np.ndarray
    score: float
    age: int
    hits: int
    misses: int
    stabilised_trail: list = field(repr=False, default_factory=list)
    offset: tuple = field(repr=False, default=(0.0, 0.0))

    @property
    def trail(self) -> np.ndarray:
        """(T, 2) recent image positions, oldest first (made on demand: most frames draw nothing)."""
        return np.asarray(self.stabilised_trail, np.float64).reshape(-1, 2) + np.asarray(self.offset)

    def to_dict(self) -> dict:
        return {"id": self.id, "x": float(self.xy[0]), "y": float(self.xy[1]), "score": float(self.score),
                "age": self.age, "vx": float(self.velocity[0]), "vy": float(self.velocity[1]),
                "hits": self.hits, "misses": self.misses}


def _assign(pred: np.ndarray, det: np.ndarray, gate: float) -> tuple[np.ndarray, np.ndarray]:
    """(track rows, detection cols) of the most gated pairs at least total distance."""
    if len(pred) == 0 or len(det) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    d = np.sqrt(((pred[:, None, :] - det[None, :, :]) ** 2).sum(-1))
    inside = d <= gate
    if not inside.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(pred) == 1 or len(det) == 1:  # the common case: no solver needed
        r, c = np.unravel_index(int(np.argmin(d)), d.shape)
        return np.array([r]), np.array([c])
    from edge.metrics.matching import linear_assignment

    big = float(d[inside].sum()) + 1.0 + max(d.shape) * (gate + 1.0)  # more gated pairs always win
    r, c = linear_assignment(np.where(inside, d, big))
    keep = inside[r, c]
    return r[keep], c[keep]


class _KTrack:
    """Internal: the bookkeeping of one (tentative or confirmed) track. Its cv2.KalmanFilter is
    made at the second hit: a one-hit candidate is only a position (most are clutter that never
    comes back, so no filter is built for them), and its first two positions give the filter
    its initial velocity instead of an unknown one."""

    __slots__ = ("kf", "id", "dt", "hits", "misses", "seen", "age", "score_sum", "trail", "origin", "moved",
                 "pos", "since")

    def __init__(self, xy, score: float, cfg: TrackerConfig, model: "_Model"):
        self.kf, self.id, self.dt = None, 0, 1
        self.pos, self.since = np.array(xy, np.float64), 0
        self.hits, self.misses, self.seen, self.age, self.score_sum = 1, 0, 1, 1, float(score)
        self.trail = deque([(float(xy[0]), float(xy[1]))], maxlen=cfg.trail)
        self.origin, self.moved = (float(xy[0]), float(xy[1])), cfg.min_travel_px <= 0
        if cfg.birth_hits == 1:  # confirmed at once: it needs its filter now
            self._filter(self.pos, (0.0, 0.0), model.P1, model)

    def _filter(self, xy, v, p0: np.ndarray, model: "_Model") -> None:
        kf = cv2.KalmanFilter(4, 2, 0, cv2.CV_32F)
        kf.measurementMatrix = model.H
        kf.measurementNoiseCov = model.R
        kf.transitionMatrix, kf.processNoiseCov = model.at(1)
        kf.statePost = np.array([[xy[0]], [xy[1]], [v[0]], [v[1]]], np.float32)
        kf.errorCovPost = p0
        self.kf, self.dt = kf, 1

    def predict(self, dt: int, model: "_Model") -> np.ndarray:
        self.age += dt
        if self.kf is None:
            self.since += dt
            return self.pos
        if dt != self.dt:
            self.kf.transitionMatrix, self.kf.processNoiseCov = model.at(dt)
            self.dt = dt
        return self.kf.predict()[:2, 0]

    def correct(self, xy, score: float, min_travel: float, model: "_Model") -> None:
        if self.kf is None:  # second hit: position and velocity from the two detections
            xy = np.asarray(xy, np.float64)
            self._filter(xy, (xy - self.pos) / max(self.since, 1), model.P2, model)
            x, y = float(xy[0]), float(xy[1])
        else:
            s = self.kf.correct(np.asarray(xy, np.float32).reshape(2, 1))
            x, y = float(s[0, 0]), float(s[1, 0])
        self.hits += 1
        self.misses = 0
        self.score_sum += float(score)
        self.trail.append((x, y))
        if not self.moved and (x - self.origin[0]) ** 2 + (y - self.origin[1]) ** 2 >= min_travel ** 2:
            self.moved = True

    def miss(self) -> None:
        self.misses += 1
        if self.kf is not None:
            s = self.kf.statePost  # cv2's predict() already copied the prediction into statePost
            self.trail.append((float(s[0, 0]), float(s[1, 0])))


class _Model:
    """Constant-velocity matrices, one (F, Q) pair per frame gap dt (cached)."""

    def __init__(self, cfg: TrackerConfig):
        self.q2 = cfg.process_noise ** 2
        self.H = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.float32)
        self.R = (np.eye(2) * cfg.measurement_noise ** 2).astype(np.float32)
        r2, v1 = cfg.measurement_noise ** 2, (cfg.gate_px / 2.0) ** 2  # one hit: any speed up to ~the gate
        self.P1 = np.diag([r2, r2, v1, v1]).astype(np.float32)
        self.P2 = np.diag([r2, r2, 2 * r2 + self.q2, 2 * r2 + self.q2]).astype(np.float32)  # two hits
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def at(self, dt: int) -> tuple[np.ndarray, np.ndarray]:
        got = self._cache.get(dt)
        if got is None:
            f = np.eye(4, dtype=np.float32)
            f[0, 2] = f[1, 3] = dt
            g = np.array([[dt * dt / 2, dt]])  # discrete white-acceleration noise per axis
            q1 = self.q2 * (g.T @ g)
            q = np.zeros((4, 4))
            q[np.ix_([0, 2], [0, 2])] = q1
            q[np.ix_([1, 3], [1, 3])] = q1
            got = self._cache[dt] = (f, q.astype(np.float32))
        return got


class Tracker:
    """Online multi-target point tracker; `update` once per frame, `reset` between clips."""

    def __init__(self, config: TrackerConfig | None = None):
        self.cfg = config or TrackerConfig()
        self._model = _Model(self.cfg)
        self._window = None
        self.reset()

    def reset(self) -> None:
        """Forget every track and the previous frame (a new clip or a camera cut)."""
        self.tracks: list[_KTrack] = []
        self.next_id = 1
        self.frame_id: int | None = None
        self.offset = np.zeros(2)  # image = stabilised + offset
        self.last_shift = np.zeros(2)
        self._prev = None

    # ------------------------------------------------------------------ ego-motion
    def _ego(self, frame, motion) -> np.ndarray:
        if motion is not None:
            return np.asarray(motion, np.float64).reshape(2)
        if not self.cfg.ego_motion or frame is None:
            return np.zeros(2)
        cur = registration_image(frame, self.cfg.ego_scale)
        prev, self._prev = self._prev, cur
        if prev is None or prev.shape != cur.shape:
            return np.zeros(2)
        if self.cfg.ego_method == "phase" and (self._window is None or self._window.shape != cur.shape):
            self._window = cv2.createHanningWindow((cur.shape[1], cur.shape[0]), cv2.CV_32F)
        shift, _ = estimate_shift(prev, cur, self.cfg.ego_method, self.cfg.ego_min_response, self._window)
        return shift / self.cfg.ego_scale

    # ------------------------------------------------------------------ update
    def update(self, points, frame: np.ndarray | None = None, frame_id: int | None = None,
               motion=None) -> list[Track]:
        """Feed one frame's detections; returns the confirmed tracks to report for it.

        points: `edge.inference.points.Points`, an (N, 2) array or an (N, 3) array (x, y, score), image px.
        frame: the image (only read when ego-motion is on). frame_id: increasing frame number; a
        gap (dropped frames) is predicted through; None means the next frame. motion: the scene's
        image shift (dx, dy) since the previous frame when the caller knows it (skips registration).
        """
        if frame_id is None:
            frame_id = 0 if self.frame_id is None else self.frame_id + 1
        frame_id = int(frame_id)
        if self.frame_id is not None and frame_id <= self.frame_id:
            raise ValueError(f"frame_id {frame_id} does not follow {self.frame_id}; call reset() for a new clip")
        dt = 1 if self.frame_id is None else frame_id - self.frame_id
        self.frame_id = frame_id
        self.last_shift = self._ego(frame, motion)
        self.offset = self.offset + self.last_shift
        xy, scores = _as_xy_scores(points)
        det = xy - self.offset  # detections in the stabilised frame
        cfg, model = self.cfg, self._model
        pred = np.array([t.predict(dt, model) for t in self.tracks], np.float64).reshape(-1, 2)
        free = np.ones(len(det), bool)
        hit = np.zeros(len(self.tracks), bool)
        confirmed = np.array([t.id > 0 for t in self.tracks], bool)
        for group in (np.flatnonzero(confirmed), np.flatnonzero(~confirmed)):
            cols = np.flatnonzero(free)
            r, c = _assign(pred[group], det[cols], cfg.gate_px)
            for ti, di in zip(group[r], cols[c]):
                self.tracks[ti].correct(det[di], scores[di], cfg.min_travel_px, model)
                hit[ti] = True
                free[di] = False
        alive = []
        for t, h in zip(self.tracks, hit):
            if not h:
                t.miss()
            t.seen += 1 if t.id == 0 else 0
            if t.id == 0:  # tentative: confirm after M hits in its first N frames, else drop it
                if t.hits >= cfg.birth_hits:
                    t.id, self.next_id = self.next_id, self.next_id + 1
                elif t.hits + (cfg.birth_window - t.seen) < cfg.birth_hits:
                    continue
            elif t.misses >= cfg.max_misses:
                continue
            alive.append(t)
        for di in self._births(det, scores, free, hit):
            t = _KTrack(det[di], scores[di], cfg, model)
            if cfg.birth_hits == 1:  # M = 1: every detection is a confirmed track at once
                t.id, self.next_id = self.next_id, self.next_id + 1
            alive.append(t)
        self.tracks = self._merge(alive) if cfg.merge_px > 0 else alive
        return self.confirmed()

    def _merge(self, tracks: list[_KTrack]) -> list[_KTrack]:
        """Drop each confirmed track within `merge_px` of a kept one with a higher mean score (one
        target, one track; the stronger is usually the target, the weaker its second peak)."""
        conf = sorted((t for t in tracks if t.id > 0), key=lambda t: -t.score_sum / t.hits)
        if len(conf) < 2:
            return tracks
        xy = np.array([t.kf.statePost[:2, 0] for t in conf], np.float64)
        close = ((xy[:, None] - xy[None]) ** 2).sum(-1) < self.cfg.merge_px ** 2
        np.fill_diagonal(close, False)
        if not close.any():  # the common case: nothing to merge
            return tracks
        kept, drop = [], set()
        for i, t in enumerate(conf):
            if close[i, kept].any():
                drop.add(id(t))
            else:
                kept.append(i)
        return [t for t in tracks if id(t) not in drop]

    def _births(self, det: np.ndarray, scores: np.ndarray, free: np.ndarray, hit: np.ndarray) -> list[int]:
        """The free detections that start a track: score >= birth_score and, with exclusion_px,
        not near a track hit this frame nor near a stronger detection that starts one."""
        cand = np.flatnonzero(free & (scores >= self.cfg.birth_score))
        r = self.cfg.exclusion_px
        if r <= 0 or not len(cand):
            return cand.tolist()
        taken = [t.trail[-1] for t, h in zip(self.tracks, hit) if h]
        out = []
        for di in cand[np.argsort(-scores[cand], kind="stable")]:
            if taken and (np.hypot(*(np.asarray(taken) - det[di]).T) < r).any():
                continue
            out.append(int(di))
            taken.append((float(det[di, 0]), float(det[di, 1])))
        return sorted(out)

    def confirmed(self) -> list[Track]:
        """The confirmed tracks to report now (hit, or missed for at most `coast` frames; with
        `min_travel_px`, only those that have moved that far)."""
        out, off = [], (float(self.offset[0]), float(self.offset[1]))
        for t in self.tracks:
            if t.id == 0 or t.misses > self.cfg.coast or not t.moved:
                continue
            s = t.kf.statePost[:, 0]
            xy = np.array([s[0] + off[0], s[1] + off[1]])
            out.append(Track(t.id, xy, np.array([s[2], s[3]], np.float64), t.score_sum / t.hits, t.age, t.hits,
                             t.misses, list(t.trail), off))
        return out


def _as_xy_scores(points) -> tuple[np.ndarray, np.ndarray]:
    if points is None:
        return np.zeros((0, 2)), np.zeros(0)
    if hasattr(points, "xy") and hasattr(points, "scores"):
        return np.asarray(points.xy, np.float64).reshape(-1, 2), np.asarray(points.scores, np.float64).reshape(-1)
    a = np.asarray(points, np.float64)
    if a.size == 0:
        return np.zeros((0, 2)), np.zeros(0)
    if a.ndim != 2 or a.shape[1] not in (2, 3):
        raise ValueError(f"points must be Points or an (N, 2) / (N, 3) array, got shape {a.shape}")
    return a[:, :2], (a[:, 2] if a.shape[1] == 3 else np.ones(len(a)))

