"""Parameters and MACs of the registered models, for choosing a variant per device.

Why: an edge variant is picked by its cost at the input size the device will run, so every
variant reports the same two numbers measured the same way: trainable parameters and
multiply-accumulates (`torch.utils.flop_counter.FlopCounterMode` FLOPs / 2, convolutions and
matmuls; elementwise ops are not counted) for one frame at S x S.

    python -m spire.models --summary --imgsz 512
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from .registry import create_model, list_models

__all__ = ["count_params", "count_macs", "summarize", "format_table"]


def count_params(model: nn.Module, trainable: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


def count_macs(model: nn.Module, imgsz: int = 512, in_chans: int | None = None) -> int:
    """Multiply-accumulates of one (1, C, S, S) forward pass in eval mode (FLOPs / 2)."""
    cfg = getattr(model, "cfg", None)
    c = in_chans or (cfg.in_chans if cfg is not None else 3)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, c, imgsz, imgsz))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops() // 2)


def summarize(pattern: str = "*", imgsz: int = 512) -> list[dict]:
    """One row per registered model: name, in_chans, params, GMAC at imgsz, output shape, cfg."""
    rows = []
    for name in list_models(pattern):
        model = create_model(name).eval()
        cfg = model.cfg
        rows.append({
            "model": name, "in_chans": cfg.in_chans, "params": count_params(model),
            "gmac": count_macs(model, imgsz) / 1e9, "imgsz": imgsz,
            "output": [1, 1, imgsz // cfg.stride, imgsz // cfg.stride],
            "codec": cfg.codec.get("type"), "letterbox": cfg.letterbox, "faithful": cfg.faithful,
        })
    return rows


def format_table(rows: list[dict]) -> str:
    """Markdown table of `summarize` rows."""
    if not rows:
        return "(no models)"
    s = rows[0]["imgsz"]
    lines = [f"| model | in_chans | params | GMAC @{s} | output | codec | letterbox |",
             "|---|---:|---:|---:|---|---|---|"]
    for r in rows:
        out = "x".join(str(v) for v in r["output"])
        lines.append(f"| {r['model']}{' (faithful)' if r['faithful'] else ''} | {r['in_chans']} | "
                     f"{r['params']:,} | {r['gmac']:.3f} | {out} | {r['codec']} | {r['letterbox']} |")
    return "\n".join(lines)
