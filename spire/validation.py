"""How a training run validates: the path frames take (as the exports run them) and the scoring.

Why its own module: `spire.train` and `quantize.qat` (fake-quantised fine-tuning) select epochs the
same way, and QAT must not import the training command to do it.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from edge.metrics.operating import THR_GRID
from edge.metrics.points import PointMetrics
from edge.scoring import score

from .data import Reporter, iter_eval_frames
from .train_config import TrainConfig

__all__ = ["validation_path", "Validation", "validate"]


def validation_path(cfg: TrainConfig, mcfg, pre, codec, native: bool):
    """(preprocess, codec, Predictor mode, description) of validation: with --val-fit, edge.run's
    path on the exports (their --val-imgsz input, the model's fit, larger frames tiled); else whole
    frames ('native') or letterboxed to the crop size ('resize')."""
    if cfg.val_fit:
        return (dataclasses.replace(pre, imgsz=cfg.val_imgsz), mcfg.build_codec(cfg.val_imgsz), "auto",
                f"as edge.run on {cfg.val_imgsz} px exports, fit {cfg.val_fit}")
    if native:
        return pre, codec, "native", "native resolution, padded to 32"
    return pre, codec, "resize", f"letterbox {pre.imgsz}"


@dataclasses.dataclass
class Validation:
    """What a run validates on and how: the sets, the path (preprocess, codec and Predictor mode of
    `validation_path`), the reporter of unreadable frames, a per-set cap, the frames cache, quiet."""

    sets: list
    pre: object
    codec: object
    mode: str
    reporter: Reporter
    max_frames: int = 0
    cache: list | None = None
    quiet: bool = False


def validate(model, v: Validation, info) -> dict:
    """Validation metrics of the unwrapped model (rank 0 only), through edge's Predictor in `v.mode`
    (validation_path: the same path spire.evaluate and edge.run take).

    Each validation set is scored on its own; one decode threshold is chosen for all of them and
    the model's score is the worst set's F1 (`edge.metrics.operating.joint_operating_point`), so
    a model cannot be selected for one domain at another's expense. `max_frames` caps each set.
    """
    from edge.metrics.operating import joint_operating_point
    from spire.torch_backend import torch_predictor

    pred = torch_predictor(model, v.pre, v.codec, mode=v.mode, device=info.device)
    per_set = {}
    for k, ds in enumerate(v.sets):
        metrics = PointMetrics()
        frames = iter_eval_frames(ds, v.reporter, v.cache[k] if v.cache is not None else None)
        score(pred, frames, thr=min(THR_GRID[0], v.codec.thr), metrics=metrics, progress=not v.quiet,
              desc="validating", limit=v.max_frames or None)
        name = Path(str(ds.root)).name
        per_set[name if name not in per_set else f"{name}_{k}"] = metrics
    return joint_operating_point(per_set, v.codec.thr)
