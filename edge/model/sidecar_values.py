"""The values a sidecar holds, checked once on load with the command line's rules.

Why: a hand-edited or corrupted `metadata.json` used to get through `edge.model.sidecar`'s structure
checks and fail later, deep in the runtime: `codec.thr` 0 or -1 turned every local maximum into a
target and 7 found nothing (while `--conf -1` is refused), `norm.std [0]`, `thr "abc"`, unknown
`norm.mode` / `fit` / `letterbox`, `top_k 0` or `low_pct > high_pct` ended in 30-line
tracebacks. `check_values` refuses all of them with one `SidecarError` line naming the file, the
key and what it accepts. The decode threshold follows the very rule `--conf` follows
(`edge.argcheck.score_threshold_ok`), so a value the CLI refuses cannot come in through a file.

numpy/stdlib only (edge never imports torch).
"""
from __future__ import annotations

import math

from edge.argcheck import SCORE_THR_RULE, score_threshold_ok
from edge.errors import SidecarError

__all__ = ["check_values"]

_FIX = "fix the value or re-export the model"


def _bad(where: str, key: str, value, allowed: str) -> SidecarError:
    return SidecarError(f"{where}: '{key}' is {value!r}; {allowed}; {_FIX}")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v, minimum: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def _check_norm(norm, where: str, channels) -> None:
    from edge.inference.preprocess import NORM_MODES

    if not isinstance(norm, dict):
        raise _bad(where, "preprocess.norm", norm, "must be a JSON object with mode, mean and std")
    if norm.get("mode") not in NORM_MODES:
        raise _bad(where, "preprocess.norm.mode", norm.get("mode"), f"must be one of {', '.join(NORM_MODES)}")
    mean, std = norm.get("mean", []), norm.get("std", [])
    for key, vals in (("mean", mean), ("std", std)):
        if not isinstance(vals, list) or not all(_number(v) for v in vals):
            raise _bad(where, f"preprocess.norm.{key}", vals, "must be a list of finite numbers")
    if any(v <= 0 for v in std):
        raise _bad(where, "preprocess.norm.std", std, "every value must be > 0 (it divides the input)")
    if len(mean) != len(std) or (mean and len(mean) not in (1, channels)):
        raise _bad(where, "preprocess.norm.mean/std", [mean, std], f"need equal lengths, 1 or {channels} values")
    lo, hi = norm.get("low_pct", 0.5), norm.get("high_pct", 99.5)
    if not (_number(lo) and _number(hi) and 0 <= lo < hi <= 100):
        raise _bad(where, "preprocess.norm.low_pct/high_pct", [lo, hi], "need 0 <= low_pct < high_pct <= 100")


def _check_preprocess(pre: dict, where: str) -> None:
    from edge.inference.preprocess import FITS, LETTERBOXES

    if "imgsz" in pre and (not _whole(pre["imgsz"], 32) or pre["imgsz"] % 32):
        raise _bad(where, "preprocess.imgsz", pre["imgsz"], "must be a positive multiple of 32")
    if "channels" in pre and (pre["channels"] not in (1, 3) or isinstance(pre["channels"], bool)):
        raise _bad(where, "preprocess.channels", pre["channels"], "must be 1 or 3")
    if "norm" in pre:  # (absent only in hand-made test sidecars that are never run)
        _check_norm(pre["norm"], where, pre.get("channels", 3))
    for key, allowed, default in (("letterbox", LETTERBOXES, "center"), ("fit", FITS, "native")):
        if pre.get(key, default) not in allowed:
            raise _bad(where, f"preprocess.{key}", pre.get(key), f"must be one of {', '.join(allowed)}")
    if not isinstance(pre.get("scale_up", True), bool):
        raise _bad(where, "preprocess.scale_up", pre.get("scale_up"), "must be true or false")


def _check_codec(codec: dict, where: str, stride: int) -> None:
    from edge.codecs.peaks import REFINE_METHODS

    thr = codec.get("thr", 0.35)
    if isinstance(thr, bool) or not score_threshold_ok(thr):
        raise _bad(where, "codec.thr", thr, f"the decode threshold must be a number in {SCORE_THR_RULE} "
                   "(the rule --conf follows)")
    checks = (("top_k", codec.get("top_k", 8), _whole(codec.get("top_k", 8), 1), "must be a whole number >= 1"),
              ("vr", codec.get("vr", 0.35), _number(codec.get("vr", 0.35)) and 0 <= codec.get("vr", 0.35) < 1,
               "must be a number in [0, 1)"),
              ("sigma", codec.get("sigma", 2.0), _number(codec.get("sigma", 2.0)) and codec.get("sigma", 2.0) > 0,
               "must be a number > 0"),
              ("stride", codec.get("stride", stride), codec.get("stride", stride) == stride,
               f"must equal 'output.stride' ({stride})"),
              ("refine", codec.get("refine"), codec.get("refine") in (None, *REFINE_METHODS),
               f"must be one of {', '.join(REFINE_METHODS)}"),
              ("faithful", codec.get("faithful", False), isinstance(codec.get("faithful", False), bool),
               "must be true or false"))
    for key, value, ok, allowed in checks:
        if not ok:
            raise _bad(where, f"codec.{key}", value, allowed)


def check_values(meta, where: str) -> None:
    """Refuse a sidecar whose preprocessing or decoding values cannot work; one line naming the key.

    The structure (keys, shapes, format) is `ModelMeta.validate`'s; this checks the numbers and
    names inside `preprocess` and `codec`, then builds both objects once so anything the
    constructors refuse is reported the same way.
    """
    _check_preprocess(meta.preprocess, where)
    _check_codec(meta.codec, where, int(meta.output["stride"]))
    builds = (("preprocess", meta.preprocess_config),) if "norm" in meta.preprocess else ()
    for key, build in (*builds, ("codec", meta.build_codec)):
        try:
            build()
        except (ValueError, TypeError, KeyError) as e:
            raise SidecarError(f"{where}: '{key}' cannot be used ({e}); {_FIX}") from None
