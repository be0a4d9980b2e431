"""HRPE, SPIRE's single-high-resolution heatmap network, and its family for edge devices.

Why: `hrpe` is the published network exactly (method.md §3: official state-dict names, the
RGB-replicated 3-channel input, the ReLU(2·x) stage quirk), so the released weights load
strictly and give the official outputs. The edge variants keep what makes it work for point
targets (stride 4, one high-resolution map, two OCCW stages, a 1x1 head with bias) and cut
where the faithful MACs go: the 64-channel stem conv2 and the 256-channel `layer1`. They take
one IR channel, which removes the grey->RGB replication and two thirds of the first conv.

Layout follows timm: config dataclass, model, `_create`, `default_cfgs`, one short
`@register_model` function per variant.

Variants (measured: `python -m spire.models --summary --imgsz 512`, FlopCounterMode MACs):
    hrpe        faithful, 3-ch imagenet-rgb, faithful letterbox   294,753 params  4.837 GMAC
    hrpe_ir     faithful widths, 1-ch input, plain x1 fuse         293,601 params  4.761 GMAC
    hrpe_lite   stem 1->16->32, layer1 at 64 (2 shuffle units)      37,649 params  0.596 GMAC
    hrpe_nano   stem 1->8->16, layer1 at 32 (1 shuffle unit)        15,977 params  0.246 GMAC
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn

from .hrpe_blocks import BN_MOMENTUM, Bottleneck, OCCWStage, ShuffleUnit
from .registry import IMAGENET_MEAN, IMAGENET_STD, ModelCfg, check_arch_kwargs, default_cfgs, register_model

__all__ = ["HRPEArch", "HRPE"]


@dataclass(frozen=True)
class HRPEArch:
    """Widths and depths of one HRPE variant (held as data, like timm's stage tables).

    Args:
        in_chans: input channels (3 = official RGB replication, 1 = IR native).
        stem1: channels of the stride-2 `conv1`.
        stem2: channels of the stride-4 `conv2`.
        l1_planes: bottleneck inner width of `layer1.0`.
        l1_out: `layer1` width (bottleneck output, shuffle units).
        n_shuffle: ShuffleNetV2 units after the bottleneck in `layer1`.
        width: the high-resolution branch width after `transition1` (OCCW stages, head input).
        n_stages: OCCW stages (`stage2` + `stage4.*`); the official network has 2.
        fuse_scale: 2.0 reproduces the official ReLU(2·x) stage output; 1.0 for new variants.
    """

    in_chans: int = 3
    stem1: int = 64
    stem2: int = 64
    l1_planes: int = 64
    l1_out: int = 256
    n_shuffle: int = 3
    width: int = 32
    n_stages: int = 2
    fuse_scale: float = 2.0

    def __post_init__(self) -> None:
        if self.n_stages < 1:
            raise ValueError(f"HRPEArch.n_stages must be >= 1, got {self.n_stages}")
        for name in ("l1_out", "width"):
            if getattr(self, name) % 4:
                raise ValueError(f"HRPEArch.{name} must be a multiple of 4, got {getattr(self, name)}")


class HRPE(nn.Module):
    """Stride-4 heatmap network: stem -> layer1 -> transition -> OCCW stages -> 1x1 head.

    Input (B, in_chans, S, S) normalised; output (B, 1, S/4, S/4), linear (no sigmoid), as the
    official network. Attribute names equal the official state-dict prefixes.
    """

    _fuse_pairs = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, arch: HRPEArch | None = None, **overrides) -> None:
        super().__init__()
        arch = replace(arch or HRPEArch(), **overrides)
        self.arch_cfg = arch
        a = arch
        self.conv1 = nn.Conv2d(a.in_chans, a.stem1, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(a.stem1, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(a.stem1, a.stem2, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(a.stem2, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(
            Bottleneck(a.stem2, a.l1_planes, a.l1_out),
            *[ShuffleUnit(a.l1_out) for _ in range(a.n_shuffle)],
        )
        self.transition1 = nn.ModuleList([nn.Sequential(
            nn.Conv2d(a.l1_out, a.width, 3, padding=1, bias=False),
            nn.BatchNorm2d(a.width, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        )])
        self.stage2 = OCCWStage(a.width, a.fuse_scale)
        self.stage3 = nn.Sequential()  # empty in the official network; kept for the names
        self.stage4 = nn.Sequential(*[OCCWStage(a.width, a.fuse_scale) for _ in range(a.n_stages - 1)])
        self.final_layer = nn.Conv2d(a.width, 1, 1)
        self.stride = 4

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The stride-4 high-resolution feature map (B, width, S/4, S/4) before the head."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        x = self.transition1[0](x)
        x = self.stage2(x)
        x = self.stage3(x)
        return self.stage4(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.forward_features(x))


# ----------------------------------------------------------------------------- configs
def _prps(faithful: bool) -> dict:
    d = {"type": "prps", "sigma": 2.0, "thr": 0.35, "vr": 0.35, "top_k": 8, "faithful": faithful}
    if not faithful:
        d["refine"] = "quadratic"
    return d


_RGB_NORM = {"mode": "imagenet-rgb", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
# Placeholder single-channel statistics on [0, 1] values; training measures the real ones on its
# training split and writes them into the checkpoint / sidecar, which override these.
_IR_NORM = {"mode": "mean-std", "mean": [0.45], "std": [0.25]}


def _cfg(in_chans: int = 1, faithful: bool = False, **kw) -> ModelCfg:
    base = dict(in_chans=in_chans, input_size=512, stride=4, codec=_prps(faithful),
                norm=dict(_RGB_NORM if in_chans == 3 else _IR_NORM),
                letterbox="faithful" if faithful else "center",
                scale_up=faithful, faithful=faithful)
    base.update(kw)
    return ModelCfg(**base)


_ARCHS: dict[str, HRPEArch] = {
    "hrpe": HRPEArch(),
    "hrpe_ir": HRPEArch(in_chans=1, fuse_scale=1.0),
    "hrpe_lite": HRPEArch(in_chans=1, stem1=16, stem2=32, l1_planes=16, l1_out=64, n_shuffle=2,
                          width=32, fuse_scale=1.0),
    "hrpe_nano": HRPEArch(in_chans=1, stem1=8, stem2=16, l1_planes=8, l1_out=32, n_shuffle=1,
                          width=32, fuse_scale=1.0),
}

default_cfgs.update({
    "hrpe": _cfg(in_chans=3, faithful=True),
    "hrpe_ir": _cfg(),
    "hrpe_lite": _cfg(),
    "hrpe_nano": _cfg(),
})


def _create(name: str, **kwargs) -> HRPE:
    check_arch_kwargs(name, HRPEArch, kwargs)
    base = _ARCHS[name]
    if name == "hrpe" and any(kwargs.get(k, v) != v for k, v in asdict(base).items()):
        raise ValueError("hrpe is the faithful published network and takes no width/depth changes; "
                         "use hrpe_ir / hrpe_lite / hrpe_nano (or their kwargs) for new variants")
    model = HRPE(base, **kwargs)
    cfg = default_cfgs[name]
    in_chans = model.arch_cfg.in_chans
    if in_chans != cfg.in_chans:
        cfg = cfg.replace(in_chans=in_chans, norm=dict(_RGB_NORM if in_chans == 3 else _IR_NORM))
    model.cfg = cfg
    return model


@register_model
def hrpe(**kwargs) -> HRPE:
    """SPIRE's HRPE exactly as published (294,753 parameters); loads the official weights."""
    return _create("hrpe", **kwargs)


@register_model
def hrpe_ir(**kwargs) -> HRPE:
    """Faithful widths with a 1-channel IR stem and the plain (x1) stage fuse."""
    return _create("hrpe_ir", **kwargs)


@register_model
def hrpe_lite(**kwargs) -> HRPE:
    """Edge default: narrow stem and layer1 at 64 channels; same stride-4 OCCW stages and head."""
    return _create("hrpe_lite", **kwargs)


@register_model
def hrpe_nano(**kwargs) -> HRPE:
    """Smallest member (<= 0.3 GMAC at 512x512) for microcontroller-class NPUs and Raspberry Pi."""
    return _create("hrpe_nano", **kwargs)
