"""Checkpoints that rebuild themselves, and BatchNorm folding for QAT / export.

Why: every later stage (evaluation, export, quantisation, the device sidecar) starts from a
checkpoint file, so it must carry what rebuilds the network (`arch`, `arch_kwargs`, the
`ModelCfg`) next to the weights, load with `torch.load(weights_only=True)` (no pickled code),
and never be left half-written when a training run is killed (tmp file + `os.replace`).

    save_checkpoint('runs/x/best.pt', model, meta, optimizer=opt.state_dict(), epoch=12)
    model, ckpt = load_checkpoint('runs/x/best.pt')       # or the folder holding it
    fused = fuse_bn(model)                                  # eval copy, BN folded into convs
"""
from __future__ import annotations

import copy
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from edge.errors import SpireEdgeError
from edge.io import atomic_open
from edge.model.sidecar import file_sha256
from edge.model.zoo import named_checkpoint

from .registry import ModelCfg, create_model, is_model

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "read_checkpoint_file", "fuse_bn",
           "unwrap_model", "resolve_checkpoint", "apply_contract"]

_PLAIN = (str, int, float, bool, type(None), torch.Tensor)
_SUFFIXES = (".pt", ".pth", ".ckpt")


class CheckpointError(SpireEdgeError, ValueError):
    """A checkpoint file that is missing, unreadable, or not a SPIRE-Edge checkpoint."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside DataParallel / DDP / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def _check_plain(obj: Any, where: str) -> None:
    """Raise if `obj` holds anything `torch.load(weights_only=True)` would refuse."""
    if isinstance(obj, _PLAIN):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"save_checkpoint: key {k!r} in {where} must be str or int")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(f"save_checkpoint: {where} is a {type(obj).__name__}; store only tensors, "
                    "dicts, lists, str and numbers (convert it, e.g. with .to_dict() or str())")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, meta: dict | None = None,
                    **extra_state: Any) -> Path:
    """Write {'arch', 'arch_kwargs', 'model_cfg', 'model', 'meta', **extra_state} atomically.

    `model` must come from `create_model` (it carries `.arch`). `meta` is the sidecar dict
    (see edge/model/sidecar.py); `extra_state` holds e.g. optimizer / scheduler state dicts and the
    epoch. Everything is checked to be loadable with `weights_only=True` before writing.
    """
    path = Path(path)
    model = unwrap_model(model)
    arch = getattr(model, "arch", None)
    if not arch:
        raise ValueError("save_checkpoint: model has no .arch; build it with "
                         "spire.models.create_model(name) so the checkpoint can rebuild it")
    reserved = {"arch", "arch_kwargs", "model_cfg", "model", "meta"} & set(extra_state)
    if reserved:
        raise ValueError(f"save_checkpoint: extra state may not use reserved keys {sorted(reserved)}")
    cfg = getattr(model, "cfg", None)
    ckpt = {
        "arch": arch,
        "arch_kwargs": copy.deepcopy(dict(getattr(model, "arch_kwargs", {}) or {})),
        "model_cfg": cfg.to_dict() if isinstance(cfg, ModelCfg) else None,
        "model": OrderedDict((k, v.detach().cpu()) for k, v in model.state_dict().items()),
        "meta": copy.deepcopy(meta or {}),
        **extra_state,
    }
    for k, v in ckpt.items():
        if k != "model":
            _check_plain(v, k)
    with atomic_open(path, "wb") as f:
        torch.save(ckpt, f)
    return path


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint file for a file path, an artifact folder (metadata.json `model_file`, else
    its only *.pt / *.pth / *.ckpt file) or a ladder name (`spire-s`, weights/ladder.json)."""
    p = named_checkpoint(path)  # a ladder name ('spire-s'): that rung's committed checkpoint
    if p.is_file():
        return p
    if p.is_dir():
        side = p / "metadata.json"
        if side.is_file():
            try:
                model_file = json.loads(side.read_text()).get("model_file")
            except (OSError, ValueError) as e:
                raise CheckpointError(f"{side}: unreadable metadata ({e}); rewrite it or pass "
                                      "the checkpoint file itself") from None
            if model_file and (p / model_file).is_file():
                return p / model_file
        found = sorted(f for f in p.iterdir() if f.suffix in _SUFFIXES and f.is_file())
        if len(found) == 1:
            return found[0]
        what = "no" if not found else f"{len(found)}"
        raise CheckpointError(f"{p}: {what} checkpoint files (*.pt/*.pth) in the folder; "
                              "pass the file itself")
    raise CheckpointError(f"{p}: no such file or folder; pass a checkpoint written by "
                          "spire.train (or its folder)")


def read_checkpoint_file(path: Path, map_location: Any = "cpu") -> Any:
    """`torch.load(weights_only=True)` with a one-line CheckpointError naming the file when it fails."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle / zip / weights_only errors all mean "not loadable"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a loadable PyTorch checkpoint ({first[:160]}); "
                              "pass a file written by torch.save / save_checkpoint") from None


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu",
                    strict: bool = True) -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint describes and load its weights -> (model in eval mode, ckpt).

    `model.cfg` is the `ModelCfg` saved with it (so trained normalisation stats survive);
    `ckpt['meta']` is the model's deployment contract (edge.model.contract), `ckpt['deployed']` whether
    its deployed input size is known.
    """
    path = resolve_checkpoint(path)
    ckpt = read_checkpoint_file(path, map_location)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path}: no 'model' state dict inside; pass a checkpoint written "
                              "by spire.models.save_checkpoint")
    arch = ckpt.get("arch")
    if not arch:
        raise CheckpointError(f"{path}: no 'arch' entry (an official SPIRE file?); load official "
                              "weights with spire.models.load_official(path)")
    if not is_model(arch):
        raise CheckpointError(f"{path}: unknown architecture {arch!r}; this version of "
                              "spire-edge cannot rebuild it (upgrade the package)")
    model = create_model(arch, **dict(ckpt.get("arch_kwargs") or {}))
    try:
        model.load_state_dict(ckpt["model"], strict=strict)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit {arch!r} "
                              f"({str(e).splitlines()[0][:160]}); was the file edited?") from None
    if ckpt.get("model_cfg"):
        model.cfg = ModelCfg.from_dict(ckpt["model_cfg"])
    apply_contract(path, ckpt)
    return model.eval(), ckpt


def apply_contract(path: Path, ckpt: dict) -> None:
    """Put the model's one deployment contract in `ckpt['meta']` (and `ckpt['deployed']`).

    Why: the sidecar is what travels with a model and what the runtime reads; what is chosen after
    training (the decode threshold and its rule, how frames that fit are run) is written there, and
    the checkpoint file itself (whose sha256 the exports record) is never rewritten. So the
    sidecar's preprocess, codec and operating point win over the meta saved inside the file, but
    only a sidecar that names this very file (model_file and sha256) counts. A schema-1 meta is
    then read once into the schema-2 shape (`edge.model.contract.upgrade_meta`: preprocess.imgsz is the
    deployed input size); `ckpt['deployed']` says whether that size is known.
    """
    from edge.model.contract import upgrade_meta

    meta = ckpt.get("meta")
    if not isinstance(meta, dict):
        ckpt["deployed"] = False
        return
    side = path.parent / "metadata.json"
    try:
        d = json.loads(side.read_text()) if side.is_file() else {}
        if d.get("model_file") == path.name and d.get("model_sha256") == file_sha256(path):
            meta.update({k: d[k] for k in ("schema_version", "preprocess", "codec", "input", "output")
                         if isinstance(d.get(k), (dict, int))})
            if isinstance(d.get("extra"), dict):
                meta["extra"] = d["extra"]
    except (OSError, ValueError, AttributeError):
        pass
    ckpt["meta"], ckpt["deployed"] = upgrade_meta(meta, path)


# ----------------------------------------------------------------------------- BN folding
def _fold_pairs(module: nn.Module) -> int:
    """Fold (Conv2d, BatchNorm2d) pairs among `module`'s direct children; returns folds done.

    Pairs are consecutive children of an nn.Sequential, or attribute pairs a block declares in
    `_fuse_pairs` (its forward applies the BN right after the conv, nothing in between).
    """
    pairs: list[tuple[str, str]] = []
    names = list(module._modules)
    if isinstance(module, nn.Sequential):
        pairs += [(a, b) for a, b in zip(names, names[1:])]
    pairs += list(getattr(module, "_fuse_pairs", ()))
    done = 0
    for cname, bname in pairs:
        conv, bn = module._modules.get(cname), module._modules.get(bname)
        if type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d and bn.track_running_stats:
            module._modules[cname] = fuse_conv_bn_eval(conv, bn)
            module._modules[bname] = nn.Identity()
            done += 1
    return done


def fuse_bn(model: nn.Module) -> nn.Module:
    """An eval-mode deep copy with every BatchNorm folded into the conv before it.

    The copy keeps the module tree, `forward`, `.cfg` and `.arch` (BN layers become Identity,
    the convs gain a bias); outputs match the eval-mode original within float rounding. Used
    before QAT and export so int8 scales see the real conv weights. BNs that follow something
    other than a plain Conv2d (e.g. ODConv's dynamic convolution) stay as they are.
    """
    fused = copy.deepcopy(unwrap_model(model)).eval()
    n = 0
    for m in list(fused.modules()):
        n += _fold_pairs(m)
    fused.fused_bn = n
    return fused
