"""Numeric options checked once, with one line that names the option: threads, score threshold, counts.

Why: `--threads -4` went to the runtime (which clamps or crashes), `--conf -1` silently turned
every local maximum into a target. The runtime refuses both with one line (exit 2 in the CLIs),
and the Predictor applies the same rules to API callers.
"""
from __future__ import annotations

import math

from edge.codecs.base import SCORE_RANGE, check_threshold
from edge.errors import ArgumentError

__all__ = ["ArgumentError", "check_threads", "check_conf", "check_count", "check_raw16", "SCORE_THR_RULE",
           "score_threshold_ok"]

# The one rule for a decode threshold, wherever it comes from (--conf, a sidecar's codec.thr,
# quantize.pick --thr): edge.codecs.base.SCORE_RANGE, which says what a score is.
SCORE_THR_RULE = f"({SCORE_RANGE[0]:g}, {SCORE_RANGE[1]:g}]"  # in words, for messages


def check_threads(threads, flag: str = "--threads") -> int | None:
    """None (the runtime's default) or a whole number >= 1."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, float)) or threads != int(threads) or threads < 1:
        raise ArgumentError(f"{flag} {threads}: must be a whole number of CPU threads >= 1 "
                            "(leave it out for the runtime's default)")
    return int(threads)


def score_threshold_ok(v) -> bool:
    """Whether `v` passes the one threshold rule (`edge.codecs.base.check_threshold`), as a bool."""
    try:
        check_threshold(v)
    except ArgumentError:
        return False
    return True


def check_conf(conf, flag: str = "--conf") -> float | None:
    """None (the sidecar's threshold) or a score threshold in edge.codecs.base.SCORE_RANGE."""
    if conf is None:
        return None
    return check_threshold(conf, flag)


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
