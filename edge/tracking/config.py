"""The tracker's settings, validated once: `TrackerConfig` (stored in a run's summary.json and in a
model's tracking operating point; `--tracker NAME=VALUE` pairs parse into it).

Why its own module: the settings are data that edge.run, the sidecar's tracking entry and
benchmarks.track read and write without running a tracker.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from edge.errors import ArgumentError

from .ego_motion import EGO_METHODS

__all__ = ["TrackerConfig"]


@dataclass(frozen=True)
class TrackerConfig:
    """Every tracker parameter (stored in a run's summary.json). Distances in px, times in frames.

    gate_px: largest distance between a track's predicted position and a detection it may take.
    birth_hits, birth_window: M and N of M-of-N confirmation (hits within a track's first N frames).
    max_misses: K; a confirmed track dies after K consecutive missed frames (occlusions < K survive).
    coast: a confirmed track missed for up to this many frames is still reported (predicted).
    process_noise: std of the white acceleration, px/frame^2 (how fast a target may turn).
    measurement_noise: std of a detection's position, px.
    birth_score: detections below this score may continue a track but never start one.
    exclusion_px: no track starts within this distance of a track that took a detection in the
        same frame (nor of a stronger detection starting one): a large or bright target often
        shows a second peak beside the first, and without this it becomes a second, duplicate
        track that is a false point in every frame. Two real targets closer than this are told
        apart once they separate. 0: off.
    merge_px: a confirmed track within this distance of an older confirmed track is dropped (a
        large target's second peak that became a track anyway, e.g. continued by weak detections
        under a low detector threshold, is a false point in every frame it lives). 0: off.
    ego_motion: compensate camera motion by global frame registration (needs `frame`).
    ego_method: 'phase' (phase correlation) or 'ecc'; ego_min_response: phase correlations
        weaker than this are ignored (featureless sky); ego_scale: registration resolution.
    min_travel_px: report a track only once it has moved this far from where it started, in the
        stabilised frame (moving-target indication; 0: off). Why optional: it removes stationary
        objects that persist like targets (warm animals on a field, a hot spot), but a slow or
        hovering target is held back until it has travelled that far.
    trail: positions kept per track for drawing.
    """

    gate_px: float = 8.0  # defaults chosen on ir-drone/val (benchmarks.track --sweep): the most false
    birth_hits: int = 3  # points removed with at most 1 point of recall lost (README, Tracking)
    birth_window: int = 5
    max_misses: int = 10
    coast: int = 0
    process_noise: float = 0.2
    measurement_noise: float = 1.0
    birth_score: float = 0.0
    exclusion_px: float = 12.0
    merge_px: float = 0.0
    ego_motion: bool = False
    ego_method: str = "phase"
    ego_min_response: float = 0.05
    ego_scale: float = 1.0
    min_travel_px: float = 0.0
    trail: int = 30

    def __post_init__(self):
        if self.gate_px <= 0:
            raise ValueError(f"gate_px must be > 0, got {self.gate_px}")
        if not 1 <= self.birth_hits <= self.birth_window:
            raise ValueError(f"need 1 <= birth_hits <= birth_window, got M={self.birth_hits} N={self.birth_window}")
        if self.max_misses < 1 or self.coast < 0 or self.coast >= self.max_misses:
            raise ValueError(f"need max_misses >= 1 and 0 <= coast < max_misses, got K={self.max_misses} "
                             f"coast={self.coast}")
        if self.process_noise <= 0 or self.measurement_noise <= 0:
            raise ValueError("process_noise and measurement_noise must be > 0")
        if self.exclusion_px < 0 or self.merge_px < 0:
            raise ValueError(f"exclusion_px and merge_px must be >= 0, got {self.exclusion_px}, {self.merge_px}")
        if self.min_travel_px < 0:
            raise ValueError(f"min_travel_px must be >= 0, got {self.min_travel_px}")
        if self.ego_method not in EGO_METHODS:
            raise ValueError(f"ego_method must be one of {EGO_METHODS}, got {self.ego_method!r}")
        if not 0 < self.ego_scale <= 1:
            raise ValueError(f"ego_scale must be in (0, 1], got {self.ego_scale}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_pairs(cls, pairs, base: "TrackerConfig | None" = None) -> "TrackerConfig":
        """A config from 'name=value' strings (CLI `--tracker gate_px=6 birth_hits=2`), over `base`."""
        cur = (base or cls()).to_dict()
        for p in pairs or ():
            k, sep, v = str(p).partition("=")
            if not sep or k not in cur:
                raise ArgumentError(f"--tracker {p!r}: expected NAME=VALUE with NAME one of {', '.join(cur)}")
            t = type(cur[k])
            try:
                cur[k] = (v.lower() in ("1", "true", "yes", "on")) if t is bool else t(v)
            except ValueError:
                raise ArgumentError(f"--tracker {p!r}: {k} takes a {t.__name__} (now {cur[k]!r})") from None
            if t is float and not math.isfinite(cur[k]):
                raise ArgumentError(f"--tracker {p!r}: {k} must be a finite number")
        try:
            return cls(**cur)
        except ValueError as e:
            raise ArgumentError(f"--tracker {' '.join(map(str, pairs))}: {e}") from None
