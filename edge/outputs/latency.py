"""Per-stage latencies of a run in bounded memory and bounded time, however long the run.

Why: `edge.run` kept every latency of every stage in Python lists (about 160 bytes a frame) and
recomputed the percentiles over all of them every few frames, so a camera left running for a day
(2.6 million frames at 30 fps) held ~400 MB of floats and spent longer and longer on each
summary. `LatencyLog` keeps the first `exact` values as they are (short runs, tests and
benchmarks get exactly numpy's percentiles) and from then on counts every value in a fixed
log-spaced histogram (ratio 1.005 between bin edges, 1 µs .. 100 s: percentiles within 0.25 %),
with the exact count, sum, minimum and maximum. Memory and the cost of a percentile stay fixed.

numpy only (edge never imports torch).
"""
from __future__ import annotations

import math
from array import array

import numpy as np

__all__ = ["LatencyLog"]

_LO_MS, _HI_MS, _RATIO = 1e-3, 1e5, 1.005
_NBINS = int(math.ceil(math.log(_HI_MS / _LO_MS) / math.log(_RATIO))) + 2  # + under / overflow
_LOG_RATIO = math.log(_RATIO)


class LatencyLog:
    """Append-only latencies (ms): exact up to `exact` values, then a fixed histogram; `last` is the newest."""

    def __init__(self, exact: int = 5000):
        self.exact = int(exact)
        self.values = array("d")
        self.hist: np.ndarray | None = None
        self.count, self.total = 0, 0.0
        self.lo, self.hi = math.inf, -math.inf
        self.last: float | None = None

    def append(self, ms: float) -> None:
        v = float(ms)
        self.count += 1
        self.total += v
        self.lo, self.hi, self.last = min(self.lo, v), max(self.hi, v), v
        if self.hist is None:
            self.values.append(v)
            if len(self.values) > self.exact:  # from here on: counts per bin only
                self.hist = np.zeros(_NBINS, np.int64)
                np.add.at(self.hist, _bins(np.frombuffer(self.values, np.float64)), 1)
                self.values = array("d")
        else:
            self.hist[_bin(v)] += 1

    def __len__(self) -> int:
        return self.count

    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def percentile(self, q: float) -> float | None:
        """numpy's (linear) percentile while exact, else the bin's geometric centre (clamped to min/max)."""
        if not self.count:
            return None
        if self.hist is None:
            return float(np.percentile(np.frombuffer(self.values, np.float64), q))
        rank = q / 100.0 * (self.count - 1)
        k = int(np.searchsorted(np.cumsum(self.hist), rank, side="right"))
        return float(min(max(_centre(k), self.lo), self.hi))


def _bin(v: float) -> int:
    if v < _LO_MS:
        return 0
    return min(_NBINS - 1, 1 + int(math.log(v / _LO_MS) / _LOG_RATIO))


def _bins(a: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        k = 1 + np.floor(np.log(np.maximum(a, 1e-300) / _LO_MS) / _LOG_RATIO)
    return np.clip(np.where(a < _LO_MS, 0, k), 0, _NBINS - 1).astype(np.int64)


def _centre(k: int) -> float:
    if k <= 0:
        return _LO_MS
    return _LO_MS * _RATIO ** (k - 0.5)
