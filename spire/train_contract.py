"""The model a training run starts from (--init) and the deployment contract it ends with.

Why its own module: the deployment contract (edge.model.contract: the input size and fit a checkpoint is
deployed at) is decided here once for every run: from --val-fit / --val-imgsz, or inherited from
the model a fine-tuning run starts from, so the fine-tuned best.pt exports, quantises and evaluates
at the size its users run it at without being told.
"""
from __future__ import annotations

import dataclasses
import sys

from .cli import UsageError
from .train_config import TrainConfig

__all__ = ["load_init", "deployment", "inherit_deployment"]


def load_init(cfg: TrainConfig, model) -> dict:
    """Load --init's weights into `model` (same architecture, strict); returns the checkpoint."""
    from spire.models.checkpoint import read_checkpoint_file, resolve_checkpoint

    path = resolve_checkpoint(cfg.init)
    ckpt = read_checkpoint_file(path)
    from spire.models.registry import canonical_name

    if canonical_name(ckpt.get("arch") or "") != cfg.model:  # old names are aliases (hrpe_dense = spire_m)
        try:  # another architecture with the very same parameters (spire_s -> spire_s_local: a new gate pooling)
            model.load_state_dict(ckpt["model"])
        except RuntimeError:
            raise UsageError(f"--init {path}: a {ckpt.get('arch')!r} checkpoint cannot start a --model {cfg.model} "
                             "run (its weights do not fit)") from None
        print(f"note: --init {path}: {ckpt.get('arch')!r} weights start a {cfg.model} run (same parameters)",
              file=sys.stderr)
    model.load_state_dict(ckpt["model"])
    from edge.model.sidecar import file_sha256
    from spire.models.checkpoint import apply_contract

    apply_contract(path, ckpt)  # its sidecar's fit, size and threshold: how the model is deployed
    return {**ckpt, "sha256": file_sha256(path)}


def deployment(cfg: TrainConfig, mcfg, pre, codec):
    """(preprocess, codec) of the model as it is deployed, stored in its checkpoint (edge.model.contract).

    Why: the network is trained on --imgsz crops but runs on --val-imgsz inputs (frames that fit
    at their own size or padded, as --val-fit says; larger ones tiled); exporting, quantising and
    evaluating the checkpoint must use that size without being told. A model that letterboxes
    whole frames (scale_up) is deployed at its training size.
    """
    if cfg.val_fit or not pre.scale_up:
        return dataclasses.replace(pre, imgsz=cfg.val_imgsz), mcfg.build_codec(cfg.val_imgsz)
    return pre, codec


def inherit_deployment(cfg: TrainConfig, init: dict | None) -> TrainConfig:
    """--init without --val-fit: validate and deploy as the model it starts from is deployed."""
    if init is None or cfg.val_fit or not init.get("deployed"):
        return cfg
    ipre = init["meta"]["preprocess"]
    return dataclasses.replace(cfg, val_fit=ipre.get("fit") or "native", val_imgsz=int(ipre["imgsz"]))  # recorded in the sidecar: the path may be overwritten later
