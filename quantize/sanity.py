"""INT8 that is silently wrong is refused: degenerate calibration sets, and an F1 drop beyond a tolerance.

Why: INT8 ranges come from the calibration frames only. All-black or constant frames (a dead
sensor dump, a wrong folder), frames with almost no dynamic range, or frames unlike the ones the
model will see (another sensor, another gain) give ranges that clip or waste the 8 bits, and
`quantize.ptq` used to say nothing: on all-black frames it exited 0 and printed a `next:` hint
while F1 fell from 87.5 to 45.5. Here, before any quantizer runs:

- a frame is *flat* when fewer than `FLAT_RANGE` grey levels (of 255, after the runtime's own
  `to_255`) lie between its 0.5th and 99.5th percentiles; flat frames are dropped with a warning,
  and a set with more than `MAX_FLAT_SHARE` of them is refused;
- a set whose frames' median spread is below `MIN_SPREAD` grey levels has too little dynamic range;
- a set whose pixel mean differs from the reference frames' by more than `MAX_MEAN_SHIFT` (of the
  0..1 scale) or whose pixel std is more than `MAX_STD_RATIO` times off is refused. The reference
  is the validation frames of the fidelity report when there are real ones, else the training
  statistics in the model's sidecar (`preprocess.norm` of a 'mean-std' model).

After quantizing, `check_drop` makes the fidelity report a gate: INT8 F1 more than
`DEFAULT_MAX_DROP` points below FP32 is an error (exit 2) unless the caller allows the drop
(`--allow-drop`); the artifact and its fidelity.json stay in place for inspection.

Thresholds, measured on the shared sets (2 cores, 2026-12): real NUAA-SIRST / SIRST-V2 frames
spread 40-255 grey levels (median 129 / 117), their train and val splits differ by < 0.03 in mean
and < 1.2x in std; synthetic frames (edge.datasets.synthetic) spread ~90-255.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from edge.errors import DatasetError, SpireEdgeError
from edge.inference.preprocess import Normalization, to_255

__all__ = ["PixelStats", "pixel_stats", "check_calibration", "check_drop", "FidelityGateError",
           "FLAT_RANGE", "MAX_FLAT_SHARE", "MIN_SPREAD", "MAX_MEAN_SHIFT", "MAX_STD_RATIO", "DEFAULT_MAX_DROP"]

FLAT_RANGE = 2.0  # grey levels between p0.5 and p99.5 below which a frame is constant / near-constant
MAX_FLAT_SHARE = 0.5  # more flat frames than this: the set is refused
MIN_SPREAD = 10.0  # median p0.5..p99.5 spread (grey levels) below which a set has too little dynamic range
MAX_MEAN_SHIFT = 0.2  # |calibration mean - reference mean| on the 0..1 scale
MAX_STD_RATIO = 3.0  # calibration std / reference std outside [1/3, 3]
DEFAULT_MAX_DROP = 2.0  # F1 points INT8 may lose against FP32 before quantize.ptq / qat fail
_SAMPLE = 4  # every 4th pixel in each direction is plenty for a mean and a std


class FidelityGateError(SpireEdgeError):
    """An INT8 artifact whose F1 falls more than the tolerance below FP32's."""


@dataclass
class PixelStats:
    """Pixel statistics of a set of frames on the 0..1 scale the network's normalisation uses."""

    frames: int = 0
    mean: float = 0.0
    std: float = 0.0
    spread: float = 0.0  # median p0.5..p99.5 spread, grey levels
    flat: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"mean {self.mean:.3f}, std {self.std:.3f}, median spread {self.spread:.0f} grey levels"


def pixel_stats(frames: Iterable[tuple[str, np.ndarray]], norm: Normalization) -> PixelStats:
    """Mean / std / spread of (name, frame) pairs after the runtime's `to_255`; flat frames are named."""
    s1 = s2 = 0.0
    n = 0
    spreads, flat, count = [], [], 0
    for name, frame in frames:
        img = np.asarray(to_255(np.asarray(frame), norm), np.float32)
        count += 1
        lo, hi = np.percentile(img, (0.5, 99.5))
        spreads.append(float(hi - lo))
        if hi - lo < FLAT_RANGE:
            flat.append(str(name))
        sub = img[::_SAMPLE, ::_SAMPLE].astype(np.float64) / 255.0
        s1 += float(sub.sum())
        s2 += float(np.square(sub).sum())
        n += sub.size
    if not count:
        return PixelStats()
    mean = s1 / n
    return PixelStats(count, mean, float(np.sqrt(max(s2 / n - mean * mean, 0.0))), float(np.median(spreads)), flat)


def reference_stats(norm: Normalization, vals=None) -> tuple[PixelStats | None, str]:
    """What calibration frames should look like: real validation frames, else the model's training statistics."""
    if vals is not None and getattr(vals, "split", None) is not None:
        return pixel_stats(((v.name, v.frame) for v in vals if v.readable), norm), f"the validation frames ({vals.source})"
    if norm.mode == "mean-std" and len(norm.mean) == 1:
        return PixelStats(frames=0, mean=float(norm.mean[0]), std=float(norm.std[0])), \
            "the model's training frames (sidecar preprocess.norm)"
    return None, ""


def check_calibration(source, vals=None, warn=None) -> "object":
    """Refuse a degenerate calibration set (one line); returns the source without its flat frames.

    Args:
        source: quantize.calibration.CalibrationSource (frames + the model's PreprocessConfig).
        vals: the fidelity report's ValSet (None: compare with the sidecar's training statistics).
    Raises:
        DatasetError: mostly flat frames, too little dynamic range, or statistics far from the reference.
    """
    import dataclasses

    warn = warn or (lambda m: print(f"warning: {m}", file=sys.stderr, flush=True))
    norm = source.cfg.norm
    where = f"calibration set {source.source}" + (f" (split {source.split})" if source.split else "")
    st = pixel_stats(((f.name, f.frame) for f in source.frames), norm)
    if st.frames and len(st.flat) > MAX_FLAT_SHARE * st.frames:
        raise DatasetError(f"{where}: {len(st.flat)} of {st.frames} frames are constant or near-constant (fewer than "
                           f"{FLAT_RANGE:g} grey levels between their 0.5 and 99.5 percentiles, e.g. {st.flat[0]}); "
                           "INT8 ranges from them would be wrong: calibrate on real IR frames of the scene")
    if st.flat:
        warn(f"{where}: dropped {len(st.flat)} constant or near-constant frame(s) (e.g. {st.flat[0]})")
        flat = set(st.flat)
        source = dataclasses.replace(source, frames=[f for f in source.frames if f.name not in flat])
    if st.spread < MIN_SPREAD:
        raise DatasetError(f"{where}: median dynamic range is {st.spread:.1f} grey levels (below {MIN_SPREAD:g}): "
                           "too little contrast to set INT8 ranges; calibrate on real IR frames of the scene")
    ref, ref_name = reference_stats(norm, vals)
    if ref is not None and ref.std > 0:
        st = pixel_stats(((f.name, f.frame) for f in source.frames), norm) if st.flat else st
        ratio = st.std / ref.std if st.std > 0 else float("inf")
        if abs(st.mean - ref.mean) > MAX_MEAN_SHIFT or not 1 / MAX_STD_RATIO <= ratio <= MAX_STD_RATIO:
            raise DatasetError(f"{where}: pixel {st.line()} differs badly from {ref_name} (mean {ref.mean:.3f}, "
                               f"std {ref.std:.3f}; allowed: mean within {MAX_MEAN_SHIFT:g}, std within "
                               f"{MAX_STD_RATIO:g}x); calibrate on frames of the sensor and scene the model runs on")
    return source


def check_drop(rep: dict, what: str, max_drop: float = DEFAULT_MAX_DROP) -> str | None:
    """The gate's one-line verdict on a fidelity report: None when INT8 F1 is within `max_drop` points of FP32."""
    drop = 100.0 * (float(rep["fp32_f1"]) - float(rep["int8_f1"]))
    if drop <= max_drop:
        return None
    return (f"{what}: INT8 F1 {rep['int8_f1']:.3f} is {drop:.1f} points (x0.01) below FP32 {rep['fp32_f1']:.3f} "
            f"on {rep['frames']} {rep.get('val_source', '')} frames (tolerance {max_drop:g}; fidelity.json beside it)")
