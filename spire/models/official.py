"""Import the released SPIRE weights into the faithful `hrpe` network.

Why: the two checkpoints published with SPIRE (NIRIXIANG/SPIRE-IRSTD, `weights/`) are the
reference every SPIRE-Edge number is compared with; loading them strictly into `hrpe` and
reproducing their outputs proves the faithful network (names, quirks) is the published one.
The files hold {'model', 'optimizer', 'lr_scheduler', 'epoch'}; only `model` is used.

    model = load_official('/work/shared/weights/spire-official/SPIRE-SIRST4-512-epoch230-lr0.005.pth')
    model.cfg.input_size      # 512 (read from the file name; 640 for the UAVB file)
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import torch
import torch.nn as nn

from .checkpoint import CheckpointError, read_checkpoint_file
from .registry import create_model

__all__ = ["load_official", "import_official", "official_state_dict", "OFFICIAL_PARAMS"]

OFFICIAL_PARAMS = 294_753
_FIX = "pass one of the released files (e.g. /work/shared/weights/spire-official/*.pth)"


def official_state_dict(path: str | os.PathLike) -> tuple[dict, dict]:
    """(state dict, info) from an official file; info = {path, sha256, epoch, input_size}."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such file; {_FIX}")
    ckpt = read_checkpoint_file(p, "cpu")
    sd = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{p}: no 'model' state dict of tensors inside; {_FIX}")
    m = re.search(r"-(\d{3,4})-", p.name)
    info = {
        "path": str(p),
        "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
        "epoch": int(ckpt["epoch"]) if isinstance(ckpt.get("epoch"), (int, float)) else None,
        "input_size": int(m.group(1)) if m and int(m.group(1)) % 32 == 0 else None,
    }
    return sd, info


def load_official(path: str | os.PathLike, strict: bool = True) -> nn.Module:
    """The faithful `hrpe` with an official SPIRE checkpoint loaded, in eval mode.

    `model.official` holds {path, sha256, epoch, input_size}; `model.cfg.input_size` follows the
    size in the file name (SIRST4: 512, UAVB: 640), since the weights were trained at that size.
    """
    sd, info = official_state_dict(path)
    model = create_model("hrpe")
    try:
        model.load_state_dict(sd, strict=strict)
    except RuntimeError as e:
        missing = sorted(set(model.state_dict()) - set(sd))
        extra = sorted(set(sd) - set(model.state_dict()))
        detail = (f"{len(missing)} missing key(s) e.g. {missing[:2]}, {len(extra)} unexpected e.g. "
                  f"{extra[:2]}" if missing or extra else str(e).splitlines()[-1].strip()[:160])
        raise CheckpointError(f"{path}: not an official SPIRE/HRPE state dict ({detail}); {_FIX}") from None
    if info["input_size"]:
        model.cfg = model.cfg.replace(input_size=info["input_size"])
    model.official = info
    return model.eval()


def import_official(path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Convert an official file into a SPIRE-Edge checkpoint folder (checkpoint + metadata.json).

    The folder then works wherever a trained checkpoint does (`load_checkpoint`, export,
    quantisation, `edge.run` via its sidecar). Returns the checkpoint path.
    """
    from edge.model.sidecar import ModelMeta, file_sha256, io_specs, write_sidecar

    from .checkpoint import save_checkpoint

    model = load_official(path)
    info, cfg = model.official, model.cfg
    size = cfg.input_size
    inp, out = io_specs(size, cfg.in_chans, cfg.stride)
    meta = {
        "arch": "hrpe", "arch_kwargs": {}, "format": "torch", "precision": "fp32",
        "input": inp, "output": out,
        "preprocess": cfg.preprocess_config(size).to_dict(),
        "codec": cfg.build_codec(size).to_dict(),
        "source_checkpoint": {"path": info["path"], "sha256": info["sha256"]},
        "training": {"source": "official SPIRE release (NIRIXIANG/SPIRE-IRSTD)", "epoch": info["epoch"]},
    }
    folder = Path(out_dir)
    ckpt = save_checkpoint(folder / f"{Path(info['path']).stem}.pt", model, meta, epoch=info["epoch"])
    write_sidecar(folder, ModelMeta(model_file=ckpt.name, model_sha256=file_sha256(ckpt), **meta))
    return ckpt
