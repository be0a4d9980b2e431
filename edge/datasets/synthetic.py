"""Seeded synthetic infrared frames and clips with exactly known targets (numpy + OpenCV only).

Real IRSTD data is small and its labels are approximate; a generator whose every target has a
known sub-pixel position and a known SCR gives the runtime a demo source that needs no download,
tests a fixture of any size, calibration a fallback and metrics a per-SCR ground truth.

Physics, in kelvin then counts (all steps vectorised; one 512x512 frame takes a few ms):
- clutter: 1/f^beta fractal fields made in the Fourier domain (one inverse real FFT each):
  clouds (thresholded fractal, beta 2..3) over a sky that is colder at the top, with bright
  sun-lit cloud rims; below a tilted horizon either sea (horizontally stretched waves, a warm
  horizon band and a band of sparse sun glints) or ground (fractal texture plus warm/cold blocks);
- sensor: column fixed-pattern noise, vignetting, temporal noise at the given NETD, then the
  14-bit ADC (counts = offset + gain * T), then hot/dead pixels; an 8-bit view through a
  histogram AGC (percentile stretch, as a camera does);
- targets: Gaussian PSF (sigma 0.5..1.5 px) at sub-pixel positions, bright or dark; the amplitude
  is solved so that the SCR defined in `edge.metrics.scr` equals the chosen value on the noisy
  background; the SCR measured on the final raw frame is what is returned.
Sequences keep the sensor pattern, drift the clutter slowly and move targets smoothly.
The clutter lives in `edge.datasets.synthetic_clutter`, the tracker scenarios in `edge.datasets.synthetic_tracks`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from edge.datasets import synthetic_tracks as st
from edge.datasets.core import Sample
from edge.metrics.scr import RING, measure_scr, ring_stats
from edge.datasets.synthetic_clutter import clutter, uniform
from edge.datasets.synthetic_tracks import Scenario

__all__ = ["SceneConfig", "SensorConfig", "TargetConfig", "SynthConfig", "SynthFrame", "Placed", "Scenario",
           "make_frame", "make_sequence", "demo_clip", "SyntheticDataset", "SCENES", "DEMO_SEED"]

SCENES = ("sky", "sea", "ground")
DEMO_SEED = 20250607


@dataclass(frozen=True)
class SceneConfig:
    """Clutter. Ranges (lo, hi) are drawn uniformly per frame (per clip for sequences)."""

    kind: str = "mixed"  # 'sky' | 'sea' | 'ground' | 'mixed' (one of the three at random)
    beta: tuple[float, float] = (2.0, 3.0)  # spectral slope of the cloud field
    cloud_cover: tuple[float, float] = (0.1, 0.6)  # fraction of the sky under cloud
    cloud_contrast_k: tuple[float, float] = (3.0, 10.0)
    edge_gain_k: tuple[float, float] = (1.0, 4.0)  # extra warmth on sun-lit cloud rims
    horizon: tuple[float, float] = (0.35, 0.7)  # horizon row as a fraction of the height
    glint_density: tuple[float, float] = (0.0, 1.0)  # 0: calm sea, 1: strong sun glint
    drift_px: tuple[float, float] = (0.0, 0.5)  # clutter drift per frame in sequences

    def __post_init__(self):
        if self.kind not in (*SCENES, "mixed"):
            raise ValueError(f"scene kind must be one of {SCENES + ('mixed',)}, got {self.kind!r}")


@dataclass(frozen=True)
class SensorConfig:
    """Detector and electronics (temperatures in kelvin, signal in ADC counts)."""

    netd_k: float = 0.05  # temporal noise, 1 sigma
    counts_per_k: float = 60.0
    offset: float = 6000.0  # counts at the reference scene temperature
    col_fpn_k: float = 0.04  # column fixed-pattern noise, 1 sigma
    defect_fraction: float = 2e-5  # hot + dead pixels
    vignetting_k: float = 1.5  # fall-off at the corners
    bits: int = 14
    agc_pct: tuple[float, float] = (0.5, 99.5)


@dataclass(frozen=True)
class TargetConfig:
    count: tuple[int, int] = (0, 3)  # inclusive range of targets per frame / clip
    scr: tuple[float, float] = (2.0, 10.0)
    sigma: tuple[float, float] = (0.5, 1.5)  # PSF sigma, px
    bright_fraction: float = 0.8
    speed: tuple[float, float] = (0.3, 2.0)  # px per frame in sequences
    min_separation: float = 24.0  # px, keeps each SCR ring free of other targets
    margin: int = 12  # px from the border (>= the SCR ring's outer radius)


@dataclass(frozen=True)
class SynthConfig:
    scene: SceneConfig = field(default_factory=SceneConfig)
    sensor: SensorConfig = field(default_factory=SensorConfig)
    targets: TargetConfig = field(default_factory=TargetConfig)


@dataclass
class SynthFrame:
    """raw uint16 (H,W) < 2**bits; view uint8 (H,W); points float32 (N,2) (x, y) px; scr float32
    (N,) measured on raw; sigma (N,) px; polarity int8 (N,) (+1 bright, -1 dark); scene name.
    Sequences only: ids (N,) each point's target (track) id; false_alarms (K,2) rendered
    target-like blobs that are not targets; camera (2,) camera position (see make_sequence)."""

    raw: np.ndarray
    view: np.ndarray
    points: np.ndarray
    scr: np.ndarray
    sigma: np.ndarray
    polarity: np.ndarray
    scene: str
    ids: np.ndarray | None = None
    false_alarms: np.ndarray | None = None
    camera: np.ndarray | None = None

    @property
    def frame(self) -> np.ndarray:
        """The 8-bit AGC view (what a camera's video output shows)."""
        return self.view


def _hw(size) -> tuple[int, int]:
    h, w = (size, size) if np.isscalar(size) else tuple(size)[:2]
    if int(h) < 8 or int(w) < 8:
        raise ValueError(f"size must be at least 8x8 pixels, got {size}")
    return int(h), int(w)


@dataclass
class _Sensor:
    """Per-clip fixed sensor pattern (K) and defect pixels."""

    pattern: np.ndarray
    hot: np.ndarray
    dead: np.ndarray
    config: SensorConfig

    @classmethod
    def make(cls, rng, shape, se: SensorConfig) -> "_Sensor":
        h, w = shape
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - (w - 1) / 2) ** 2 + (yy - (h - 1) / 2) ** 2) / (((w - 1) / 2) ** 2 + ((h - 1) / 2) ** 2)
        pattern = -se.vignetting_k * r2 + rng.normal(0, se.col_fpn_k, (1, w)).astype(np.float32)
        n = int(rng.binomial(h * w, se.defect_fraction)) if se.defect_fraction > 0 else 0
        idx = rng.choice(h * w, size=n, replace=False) if n else np.zeros(0, np.int64)
        hot = rng.random(n) < 0.5
        return cls(pattern.astype(np.float32), idx[hot], idx[~hot], se)


def _psf(x: float, y: float, sigma: float, shape):
    """(slices, Gaussian patch, mean of the patch over the SCR target disc)."""
    r = int(np.ceil(4 * sigma)) + 1
    h, w = shape
    x0, x1 = max(0, int(x) - r), min(w, int(x) + r + 1)
    y0, y1 = max(0, int(y) - r), min(h, int(y) + r + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    d2 = (xx - x) ** 2 + (yy - y) ** 2
    g = np.exp(-d2 / (2 * sigma * sigma))
    return (slice(y0, y1), slice(x0, x1)), g, float(g[d2 <= RING[0] ** 2].mean())


def _render(rng, temps: np.ndarray, sensor: _Sensor, pts, sig, pol, scr, kind) -> SynthFrame:
    """The frame: clutter temperatures `temps` (K) + sensor pattern + noise, targets (PSF solved for their SCR),
    ADC, defects and AGC."""
    se = sensor.config
    b = temps + sensor.pattern + rng.standard_normal(temps.shape, dtype=np.float32) * np.float32(se.netd_k)
    for (x, y), s, p, q in zip(pts, sig, pol, scr):
        mu_t, mu_b, sd = ring_stats(b, x, y)
        sl, g, mean_g = _psf(x, y, s, b.shape)
        need = p * (mu_b + p * q * sd - mu_t)  # contrast the PSF must add, in the target's direction
        amp = p * max(need, 0.25 * q * sd, 1e-3) / mean_g
        b[sl] += (amp * g).astype(np.float32)
    top = 2 ** se.bits - 1
    b *= np.float32(se.counts_per_k)
    b += np.float32(se.offset + 0.5)  # + 0.5 then truncation = rounding for the clipped range
    raw = np.clip(b, 0, top).astype(np.uint16)
    raw.ravel()[sensor.hot] = top
    raw.ravel()[sensor.dead] = 0
    pts = np.asarray(pts, np.float32).reshape(-1, 2)
    return SynthFrame(raw, _agc(raw, se), pts, measure_scr(raw, pts), np.asarray(sig, np.float32),
                      np.asarray(pol, np.int8), kind)


def _agc(raw: np.ndarray, se: SensorConfig) -> np.ndarray:
    """8-bit view: histogram percentiles -> 0..255 through a lookup table."""
    cdf = np.cumsum(np.bincount(raw.ravel(), minlength=2 ** se.bits))
    lo, hi = np.searchsorted(cdf, np.array(se.agc_pct) / 100.0 * cdf[-1])
    hi = max(int(hi), int(lo) + 1)
    lut = np.clip((np.arange(cdf.size) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return lut[raw]


def _place(rng, n: int, shape, tc: TargetConfig, avoid=()) -> np.ndarray:
    """n points inside the margin, min_separation apart (fewer if the frame is too small)."""
    h, w = shape
    m = tc.margin
    if w - 2 * m <= 0 or h - 2 * m <= 0:
        return np.zeros((0, 2))
    out = [np.asarray(a, float) for a in avoid]
    new = []
    for _ in range(n * 50):
        if len(new) == n:
            break
        p = np.array([rng.uniform(m, w - 1 - m), rng.uniform(m, h - 1 - m)])
        if all(np.hypot(*(p - q)) >= tc.min_separation for q in out + new):
            new.append(p)
    return np.array(new).reshape(-1, 2)


def _targets(rng, tc: TargetConfig, n_targets):
    n = int(rng.integers(tc.count[0], tc.count[1] + 1)) if n_targets is None else int(n_targets)
    sig = rng.uniform(*tc.sigma, n)
    pol = np.where(rng.random(n) < tc.bright_fraction, 1, -1)
    scr = rng.uniform(*tc.scr, n)
    return n, sig, pol, scr


def _setup(seed, config, scene):
    cfg = config or SynthConfig()
    rng = np.random.default_rng(seed)
    kind = scene or cfg.scene.kind
    if kind == "mixed":
        kind = SCENES[int(rng.integers(len(SCENES)))]
    if kind not in SCENES:
        raise ValueError(f"scene must be one of {SCENES + ('mixed',)}, got {kind!r}")
    return cfg, rng, kind


@dataclass(frozen=True)
class Placed:
    """Targets placed exactly: `points` (N,2) (x, y) px, and optionally their SCRs, PSF sigmas (px)
    and polarities (+1 bright, -1 dark), each an (N,) array or one value for all (else drawn from
    the config's ranges)."""

    points: object
    scr: object = None
    sigma: object = None
    polarity: object = None


def make_frame(size=256, seed=None, config: SynthConfig | None = None, n_targets: int | None = None,
               scene: str | None = None, placed: Placed | None = None) -> SynthFrame:
    """One synthetic frame. `size` is an int or (H, W); `seed` an int or a sequence of ints.

    `n_targets` / `scene` override the config's ranges; `placed` puts the targets exactly there
    instead of at random.
    """
    cfg, rng, kind = _setup(seed, config, scene)
    shape = _hw(size)
    temps = clutter(rng, shape, cfg.scene, kind)
    sensor = _Sensor.make(rng, shape, cfg.sensor)
    if placed is None:
        n, sig, pol, q = _targets(rng, cfg.targets, n_targets)
        pts = _place(rng, n, shape, cfg.targets)
        sig, pol, q = sig[: len(pts)], pol[: len(pts)], q[: len(pts)]
    else:
        pts = np.asarray(placed.points, np.float64).reshape(-1, 2)
        n, sig, pol, q = _targets(rng, cfg.targets, len(pts))
        sig = sig if placed.sigma is None else np.broadcast_to(np.asarray(placed.sigma, float), (n,))
        pol = pol if placed.polarity is None else np.broadcast_to(np.asarray(placed.polarity, int), (n,))
        q = q if placed.scr is None else np.broadcast_to(np.asarray(placed.scr, float), (n,))
    return _render(rng, temps, sensor, pts, sig, pol, q, kind)


def make_sequence(n_frames: int = 16, size=256, seed=None, config: SynthConfig | None = None,
                  n_targets: int | None = None, scene: str | None = None,
                  scenario: Scenario = Scenario()) -> list[SynthFrame]:
    """A clip: fixed sensor pattern, slowly drifting clutter, targets on smooth curved paths
    (constant SCR each, amplitude re-solved per frame), fresh temporal noise every frame.

    Each frame's `ids` say which target each point is (its track id, 0..n-1), so a tracker can
    be scored. `scenario`: the tracker situations (crossing, occlusions, one-frame false alarms,
    camera pan; `edge.datasets.synthetic_tracks.Scenario`), all off by default.
    """
    crossing, occlusions, false_alarms = scenario.crossing, scenario.occlusions, scenario.false_alarms
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    cfg, rng, kind = _setup(seed, config, scene)
    h, w = _hw(size)
    cam = st.camera_path(scenario.pan, n_frames)
    drift = uniform(rng, cfg.scene.drift_px) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
    pad = int(np.ceil(np.abs(drift).max() * (n_frames - 1) + np.abs(cam).max())) + 2
    big = clutter(rng, (h + 2 * pad, w + 2 * pad), cfg.scene, kind)
    sensor = _Sensor.make(rng, (h, w), cfg.sensor)
    tc = cfg.targets
    n, sig, pol, q = _targets(rng, tc, n_targets)
    p0 = _place(rng, n, (h, w), tc)
    n = len(p0)
    paths = st.smooth_paths(rng, p0, n_frames, (h, w), tc.margin, tc.speed)
    if crossing and n >= 2:
        paths[:, :2] = st.crossing_paths(rng, n_frames, (h, w), tc.margin, float(np.mean(tc.speed)))
    img = paths - cam[:, None, :]
    vis = st.visibility(n_frames, n, occlusions) & ((img >= 2) & (img <= [w - 3, h - 3])).all(2)  # in view
    fas = st.false_alarm_points(rng, n_frames, false_alarms, (h, w), tc.margin, tc.min_separation,
                                [img[i][vis[i]] for i in range(n_frames)])
    fa_sig, fa_q = rng.uniform(*tc.sigma, (2, n_frames, 4)) if false_alarms else (None, None)
    frames = []
    for i in range(n_frames):
        m = np.float32([[1, 0, pad + drift[0] * i + cam[i, 0]], [0, 1, pad + drift[1] * i + cam[i, 1]]])
        temps = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        ids, k = np.flatnonzero(vis[i]), len(fas[i])
        pts, sg, pl, qq = img[i][ids], sig[:n][ids], pol[:n][ids], q[:n][ids]
        if k:  # false alarms: bright blobs of a target's size and an SCR in the targets' range
            pts, sg = np.concatenate([pts, fas[i]]), np.concatenate([sg, fa_sig[i, :k]])
            pl = np.concatenate([pl, np.ones(k, int)])
            qq = np.concatenate([qq, tc.scr[0] + (tc.scr[1] - tc.scr[0]) * fa_q[i, :k]])
        f = _render(rng, temps, sensor, pts, sg, pl, qq, kind)
        t = len(ids)
        frames.append(replace(f, points=f.points[:t], scr=f.scr[:t], sigma=f.sigma[:t], polarity=f.polarity[:t],
                              ids=ids.astype(np.int64), false_alarms=f.points[t:], camera=cam[i].copy()))
    return frames


def demo_clip(n_frames: int = 48, size=(256, 320), seed: int = DEMO_SEED) -> list[SynthFrame]:
    """The embedded demo source: a fixed-seed sea-sky clip with three moving targets (SCR 3..8)."""
    cfg = SynthConfig(targets=replace(TargetConfig(), scr=(3.0, 8.0), bright_fraction=1.0))
    return make_sequence(n_frames, size, seed, cfg, n_targets=3, scene="sea")


class SyntheticDataset:
    """`n` independent synthetic frames with the dataset `Sample` interface.

    frame: the 8-bit AGC view (raw=False) or the 14-bit raw frame (raw=True); points and scr
    exact; mask None. Item i is always the same frame for the same seed (seed, i).
    """

    format = "synthetic"
    root = None

    def __init__(self, n: int, size=256, seed: int = 0, config: SynthConfig | None = None, raw: bool = False):
        self.n, self.size, self.seed, self.config, self.raw = int(n), size, int(seed), config, raw
        self.split = f"seed{seed}"
        self.problems: list[str] = []
        _hw(size)

    @property
    def names(self) -> list[str]:
        return [f"synthetic_{self.seed}_{i:06d}" for i in range(self.n)]

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return (self[i] for i in range(self.n))

    def __getitem__(self, i: int) -> Sample:
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} samples")
        f = make_frame(self.size, (self.seed, i), self.config)
        return Sample(f"synthetic_{self.seed}_{i:06d}", None, f.raw if self.raw else f.view, f.points,
                      None, f.scr)
