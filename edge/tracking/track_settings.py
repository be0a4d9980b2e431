"""The tracking operating point stored with a model, and what `edge.run --track` runs with.

Why: confirmed tracks pay at a lower detector threshold than per-frame points (faint targets come
up with flickering noise, and M-of-N confirmation keeps the targets), so a model carries two
operating points: the per-frame one (`codec.thr`) and, in the sidecar's
`extra.operating_point.tracking`, the detector threshold and tracker settings chosen for tracks
(`{"thr", "tracker": {TrackerConfig fields that differ from the defaults}, "rule", "measured"}`,
written by `python -m benchmarks.track --sweep-thr --write-op`). `--conf` and `--tracker
NAME=VALUE` still win: `--conf` replaces the threshold, `--tracker` pairs apply over the stored
settings.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.tracking.tracker import TrackerConfig

__all__ = ["TrackSettings", "tracking_entry", "track_settings"]


@dataclass(frozen=True)
class TrackSettings:
    """What a tracked run uses: detector threshold (None: the codec's), tracker config, and a line
    saying where each came from (printed by edge.run, kept in summary.json)."""

    conf: float | None
    config: TrackerConfig
    source: str


def tracking_entry(model_path: str | Path | None) -> dict | None:
    """The sidecar's `extra.operating_point.tracking` of a model folder or file (None: no sidecar,
    or none stored)."""
    if model_path is None:
        return None
    from edge.errors import SidecarError
    from edge.model.sidecar import read_sidecar

    try:
        meta = read_sidecar(model_path, verify=False)  # the Predictor verifies the files next
    except (SidecarError, OSError):
        return None
    point = (meta.extra or {}).get("operating_point") or {}
    entry = point.get("tracking")
    return dict(entry) if isinstance(entry, dict) and "thr" in entry else None


def track_settings(entry: dict | None, conf: float | None, pairs) -> TrackSettings:
    """Threshold and TrackerConfig for `--track`: the stored entry unless `--conf` / `--tracker` say otherwise."""
    stored = TrackerConfig.from_pairs([f"{k}={v}" for k, v in (entry or {}).get("tracker", {}).items()])
    cfg = TrackerConfig.from_pairs(pairs, stored)
    if entry is None:
        src = "no tracking operating point in the sidecar: detector threshold " + (
            f"{conf:g} (--conf)" if conf is not None else "from the codec") + ", tracker defaults"
        return TrackSettings(conf, cfg, src + (" + --tracker" if pairs else ""))
    thr = float(entry["thr"]) if conf is None else conf
    changed = " ".join(f"{k}={v}" for k, v in entry.get("tracker", {}).items()) or "defaults"
    src = (f"detector threshold {thr:g} ({'--conf' if conf is not None else 'tracking operating point'}), "
           f"tracker {changed} (tracking operating point){' + --tracker ' + ' '.join(pairs) if pairs else ''}")
    return TrackSettings(thr, cfg, src)
