"""Numeric options checked once, with one line that names the option: threads, score threshold, counts.

Why: `--threads -4` went to the runtime (which clamps or crashes), `--conf -1` silently turned
every local maximum into a target. The runtime refuses both with one line (exit 2 in the CLIs),
and the Predictor applies the same rules to API callers.
"""
from __future__ import annotations

import math

from edge.errors import SpireEdgeError

__all__ = ["ArgumentError", "check_threads", "check_conf", "check_count", "check_raw16", "SCORE_THR_RULE",
           "score_threshold_ok", "check_out_path"]

# The one rule for a decode threshold, wherever it comes from (--conf, a sidecar's codec.thr,
# quantize.pick --thr). Heatmaps are linear (no sigmoid), so a peak can score a little above 1,
# but every validated threshold lies in THR_GRID (0.15 .. 0.95) or is 1.0 (spire-n's sidecar);
# <= 0 keeps every local maximum, and a threshold above 1 finds (almost) nothing.
SCORE_THR_RULE = "(0, 1]"


class ArgumentError(SpireEdgeError, ValueError):
    """An option value that cannot work; the message names the option and what it accepts."""


def check_threads(threads, flag: str = "--threads") -> int | None:
    """None (the runtime's default) or a whole number >= 1."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, float)) or threads != int(threads) or threads < 1:
        raise ArgumentError(f"{flag} {threads}: must be a whole number of CPU threads >= 1 "
                            "(leave it out for the runtime's default)")
    return int(threads)


def score_threshold_ok(v) -> bool:
    """True for a finite number in SCORE_THR_RULE, (0, 1]."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return False
    return math.isfinite(v) and 0.0 < v <= 1.0


def check_conf(conf, flag: str = "--conf") -> float | None:
    """None (the sidecar's threshold) or a score threshold in SCORE_THR_RULE, (0, 1]."""
    if conf is None:
        return None
    try:
        v = float(conf)
    except (TypeError, ValueError):
        raise ArgumentError(f"{flag} {conf!r}: must be a number in {SCORE_THR_RULE}") from None
    if not score_threshold_ok(v):
        raise ArgumentError(f"{flag} {conf}: must be a score threshold in {SCORE_THR_RULE} (heatmap peaks are scores in "
                            "0..1; leave it out for the model's validated threshold)")
    return v


def check_raw16(pair, flag: str = "--raw16") -> tuple[float, float] | None:
    """None (16-bit frames get the percentile AGC) or (scale > 0, offset), both finite."""
    if pair is None:
        return None
    try:
        scale, offset = (float(v) for v in pair)
    except (TypeError, ValueError):
        raise ArgumentError(f"{flag} {pair!r}: give SCALE OFFSET, the sensor's raw -> 8-bit map") from None
    if not (math.isfinite(scale) and math.isfinite(offset)) or scale <= 0:
        raise ArgumentError(f"{flag} {scale:g} {offset:g}: SCALE must be > 0 and both finite "
                            "(8-bit value = (raw - OFFSET) / SCALE)")
    return scale, offset


def check_count(n, flag: str, minimum: int = 0) -> int | None:
    """None or a whole number >= `minimum` (frames, warm-up runs, overlay interval)."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < minimum:
        raise ArgumentError(f"{flag} {n}: must be a whole number >= {minimum}")
    return n


def check_out_path(path, flag: str = "--out", file: bool = False):
    """Refuse, before any work, an output path that cannot be written: a folder above it is a file
    (or, for a folder, it is a file itself; for a `file`, it is a folder).

    Why: `spire.train --out afile/run` trained for minutes and then died in a traceback on its first
    write; the same path is refused here in one line. Returns the path unchanged (None passes).
    """
    if path is None:
        return None
    from pathlib import Path

    p = Path(path)
    if file and p.is_dir():
        raise ArgumentError(f"{flag} {p}: is a folder; pass a file path")
    for q in (p.parent, *p.parent.parents) if file else (p, *p.parents):
        if q.exists():
            if not q.is_dir():
                what = "is a file" if q == p else f"is under {q}, which is a file"
                raise ArgumentError(f"{flag} {p}: {what}, not a folder; pass a path in a folder")
            break
    return path
