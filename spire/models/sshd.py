"""SSHD-Net (published as P2P-HDNet, TGRS 2025): the heavy, accurate end of the zoo.

Why: HRPE trades capacity for speed; SSHD-Net is the reference point-regression network with a
full HRNet-W32 backbone (four branches, 32/64/128/256 channels) plus three additions aimed at
tiny targets (method.md §7): HCEM, a stepped cascade that exchanges detail and context after
every block; DCFM, ODConv blocks and coordinate attention on the high-resolution branches; and
the ATLDH head, coordinate attention before the 1x1 regression conv. It is trained with plain
Gaussian targets and decoded with thr = vr = 0.2.

Geometry: input 3 x S x S (imagenet-rgb, letterboxed), S a multiple of 32 (the lowest branch
runs at stride 32), output 1 x S/4 x S/4, linear. ODConv runs a per-sample grouped convolution,
so export with a static batch (batch 1 on devices). Its attention BatchNorm sees one value per
channel and sample, so train-mode batches need >= 2 samples (P2P-HDNet trains with 5).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn as nn

from .hrpe_blocks import BN_MOMENTUM, Bottleneck
from .registry import IMAGENET_MEAN, IMAGENET_STD, ModelCfg, check_arch_kwargs, default_cfgs, register_model
from .sshd_blocks import CoordAtt, HCEMStage, HRStage, ODBottleneck

__all__ = ["SSHDArch", "SSHDNet"]


@dataclass(frozen=True)
class SSHDArch:
    """Widths of SSHD-Net. `width` is the HRNet base width (W32: branches 32/64/128/256)."""

    in_chans: int = 3
    width: int = 32
    stem: int = 64
    l1_planes: int = 64

    def __post_init__(self) -> None:
        if self.width % 8:
            raise ValueError(f"SSHDArch.width must be a multiple of 8, got {self.width}")


def _down(cin: int, cout: int) -> nn.Sequential:
    """Transition to a new lower-resolution branch: 3x3 s2 conv + BN + ReLU (nested, as HRNet)."""
    return nn.Sequential(nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(cout, momentum=BN_MOMENTUM),
        nn.ReLU(inplace=True),
    ))


class SSHDNet(nn.Module):
    """HRNet-W32 + HCEM + DCFM (ODConv, CoordAtt) + ATLDH head; (B,3,S,S) -> (B,1,S/4,S/4)."""

    _fuse_pairs = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, arch: SSHDArch | None = None, **overrides) -> None:
        super().__init__()
        a = self.arch_cfg = replace(arch or SSHDArch(), **overrides)
        c, l1_out = a.width, a.l1_planes * 4
        self.conv1 = nn.Conv2d(a.in_chans, a.stem, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(a.stem, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(a.stem, a.stem, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(a.stem, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(
            Bottleneck(a.stem, a.l1_planes, l1_out),
            Bottleneck(l1_out, a.l1_planes, l1_out),
            Bottleneck(l1_out, a.l1_planes, l1_out),
            ODBottleneck(l1_out, a.l1_planes),
        )
        self.transition1 = nn.ModuleList([
            nn.Sequential(nn.Conv2d(l1_out, c, 3, padding=1, bias=False),
                          nn.BatchNorm2d(c, momentum=BN_MOMENTUM), nn.ReLU(inplace=True)),
            _down(l1_out, 2 * c),
        ])
        self.stage2 = nn.Sequential(HRStage(2, 2, c))
        self.transition2 = nn.ModuleList([CoordAtt(c), nn.Identity(), _down(2 * c, 4 * c)])
        self.stage3 = nn.Sequential(
            HRStage(3, 3, c), HCEMStage(3, 3, c), HRStage(3, 3, c), HRStage(3, 3, c, od=True))
        self.transition3 = nn.ModuleList(
            [CoordAtt(c), CoordAtt(2 * c), nn.Identity(), _down(4 * c, 8 * c)])
        self.stage4 = nn.Sequential(HRStage(4, 4, c), HRStage(4, 4, c), HRStage(4, 1, c, od=True))
        self.head_att = CoordAtt(c)  # ATLDH: attention before the regression conv
        self.final_layer = nn.Conv2d(c, 1, 1)
        self.stride = 4

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        xs = [t(x) for t in self.transition1]
        xs = self.stage2(xs)
        xs = [self.transition2[0](xs[0]), self.transition2[1](xs[1]), self.transition2[2](xs[-1])]
        xs = self.stage3(xs)
        xs = [self.transition3[0](xs[0]), self.transition3[1](xs[1]), self.transition3[2](xs[2]),
              self.transition3[3](xs[-1])]
        return self.head_att(self.stage4(xs)[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.forward_features(x))


default_cfgs["sshd"] = ModelCfg(
    in_chans=3, input_size=512, stride=4,
    codec={"type": "gaussian", "sigma": 2.0, "thr": 0.2, "vr": 0.2, "top_k": 8},
    norm={"mode": "imagenet-rgb", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
    letterbox="center", scale_up=True, faithful=False,
)


@register_model
def sshd(**kwargs) -> SSHDNet:
    """SSHD-Net / P2P-HDNet, HRNet-W32 based (28,735,256 parameters, ~41.1 GMAC at 512x512)."""
    check_arch_kwargs("sshd", SSHDArch, kwargs)
    model = SSHDNet(SSHDArch(), **kwargs)
    cfg = default_cfgs["sshd"]
    if model.arch_cfg.in_chans != cfg.in_chans:
        cfg = cfg.replace(in_chans=1, norm={"mode": "mean-std", "mean": [0.45], "std": [0.25]})
    model.cfg = cfg
    return model
