"""The scene temperature field of a synthetic infrared frame: sky with clouds, sea or ground.

Why its own module: the clutter is the physics half of `edge.datasets.synthetic` (1/f^beta fractal
fields, cloud rims, waves and sun glint, warm and cold blocks), independent of the sensor and
the targets rendered on top of it; `edge.datasets.synthetic` composes it with them. `sc` below is an
`edge.datasets.synthetic.SceneConfig` (its ranges are drawn uniformly per frame or clip).
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

__all__ = ["clutter", "uniform"]


def uniform(rng, lohi) -> float:
    """One uniform draw in the (lo, hi) range `lohi`."""
    return float(rng.uniform(lohi[0], lohi[1]))


@lru_cache(maxsize=16)
def _log_freq(h: int, w: int, aniso: float) -> np.ndarray:
    """log of the radial frequency of the rfft2 grid (float32, cached per size)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :] * aniso
    f0 = 1.0 / max(h, w)  # soft low cut so beta=3 does not become one big gradient
    return (0.5 * np.log(fx * fx + fy * fy + f0 * f0)).astype(np.float32)


def _fractal(rng, shape, beta: float, aniso: float = 1.0, down: int = 1) -> np.ndarray:
    """Zero-mean, unit-std field with power spectrum ~ 1/f^beta (aniso > 1 stretches along x).

    Random complex spectrum times f^(-beta/2), one inverse real FFT (single precision). `down`
    > 1 makes it at 1/down resolution and resizes (bilinear): for beta >= 2 almost no power lies
    above that Nyquist, and the random numbers are most of the cost."""
    if down > 1:
        small = _fractal(rng, (-(-shape[0] // down), -(-shape[1] // down)), beta, aniso)
        return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    h, w = shape
    amp = np.exp(_log_freq(h, w, float(aniso)) * np.float32(-beta / 2.0))
    amp[0, 0] = 0.0
    spec = rng.standard_normal((h, w // 2 + 1, 2), dtype=np.float32).view(np.complex64)[..., 0]
    spec *= amp
    f = np.fft.irfft2(spec, s=(h, w)).astype(np.float32, copy=False)
    f -= f.mean()
    f /= f.std() + np.float32(1e-12)
    return f


def _sky(rng, shape, sc) -> np.ndarray:
    h, w = shape
    t = np.linspace(-6.0, 0.0, h, dtype=np.float32)[:, None] + np.zeros((1, w), np.float32)
    f = _fractal(rng, shape, uniform(rng, sc.beta), down=2)
    thr = np.quantile(f[::4, ::4], 1.0 - uniform(rng, sc.cloud_cover))
    c = np.clip((f - thr) / 1.2, 0.0, 1.0)
    c = c * c * (3.0 - 2.0 * c)  # smoothstep: soft cloud boundaries
    fine = _fractal(rng, shape, 1.6, down=2)  # texture inside the clouds (thicker = warmer)
    t += c * uniform(rng, sc.cloud_contrast_k) * np.clip(0.55 + 0.2 * (f - thr) + 0.15 * fine, 0.2, 1.5)
    gx = cv2.Sobel(c, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(c, cv2.CV_32F, 0, 1, ksize=3)
    edge = cv2.GaussianBlur(np.sqrt(gx * gx + gy * gy), (0, 0), 1.0)
    t += uniform(rng, sc.edge_gain_k) * edge / (float(edge.max()) + 1e-6)
    return t


def _below_horizon(rng, shape, sc):
    h, w = shape
    h0 = uniform(rng, sc.horizon) * h
    tilt = float(rng.uniform(-0.05, 0.05))
    yy = np.arange(h, dtype=np.float32)[:, None]
    hrow = h0 + tilt * (np.arange(w, dtype=np.float32)[None, :] - w / 2)
    below = np.clip(yy - hrow + 0.5, 0.0, 1.0)  # 1 px soft horizon edge
    return yy, hrow, below


def _sea(rng, shape, sc, yy, hrow, below) -> np.ndarray:
    h, w = shape
    waves = _fractal(rng, shape, 2.6, aniso=5.0, down=2)
    depth = np.clip((yy - hrow) / max(h - hrow.min(), 1.0), 0.0, 1.0)
    t = 2.0 + 1.5 * depth + (0.4 + 0.8 * depth) * waves
    t += 3.0 * np.exp(-(((yy - hrow) / 2.0) ** 2))  # warm horizon band (longest air path)
    # sun glint: sparse 1-3 px specks, Poisson in a band of the sea (they look like targets)
    n = int(rng.poisson(uniform(rng, sc.glint_density) * h * w * 4e-4))
    if n:
        centre = float(hrow.mean()) + rng.uniform(0.1, 0.6) * (h - float(hrow.mean()))
        x = rng.integers(0, w, n)
        y = np.clip(np.rint(rng.normal(centre, 0.08 * h, n)), 0, h - 1).astype(int)
        specks = np.zeros(shape, np.float32)
        np.add.at(specks, (y, x), rng.exponential(6.0, n).astype(np.float32))
        t += cv2.GaussianBlur(specks, (0, 0), 0.7) * below * 6.0
    return t


def _ground(rng, shape, sc, yy, hrow) -> np.ndarray:
    h, w = shape
    t = 4.0 + 2.5 * _fractal(rng, shape, 2.0, down=2) + 0.6 * _fractal(rng, shape, 1.2)
    blocks = np.zeros(shape, np.float32)
    top = int(max(0, hrow.min()))
    for _ in range(int(rng.integers(3, 12))):
        bw, bh = int(rng.integers(4, max(5, w // 8))), int(rng.integers(3, max(4, h // 12)))
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(top, h))
        cv2.rectangle(blocks, (x0, y0), (x0 + bw, y0 + bh), float(rng.choice([-1, 1]) * rng.uniform(2, 8)), -1)
    return t + cv2.GaussianBlur(blocks, (0, 0), 0.7)


def clutter(rng, shape, sc, kind: str) -> np.ndarray:
    """Scene temperature field (K, relative to the reference) of the given kind."""
    sky = _sky(rng, shape, sc)
    if kind == "sky":
        return sky
    yy, hrow, below = _below_horizon(rng, shape, sc)
    low = _sea(rng, shape, sc, yy, hrow, below) if kind == "sea" else _ground(rng, shape, sc, yy, hrow)
    return sky + below * (low - sky)
