"""Building blocks of HRPE (SPIRE's network): bottleneck, ShuffleNetV2 unit, OCCW stage.

Why a separate file: `hrpe.py` holds the network and its registered variants; these blocks are
the parts whose attribute names must equal the official state-dict prefixes (method.md §3), so
they are kept small and literal. Every op is conv / BN / ReLU / sigmoid / mean / reshape-
transpose / add / mul / concat, so the whole family exports to ONNX, OpenVINO and TFLite with
static shapes and no data-dependent control flow.
"""
from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["channel_shuffle", "Bottleneck", "ShuffleUnit", "SqueezeExcite",
           "ConditionalChannelWeighting", "OCCWStage", "BN_MOMENTUM"]

BN_MOMENTUM = 0.1


def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    """ShuffleNet channel shuffle as reshape -> transpose -> reshape (exports as plain ops)."""
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class Bottleneck(nn.Module):
    """ResNet bottleneck 1x1 -> 3x3 -> 1x1 (`conv1..3`, `bn1..3`) with an optional projection."""

    _fuse_pairs = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))

    def __init__(self, inplanes: int, planes: int, outplanes: int | None = None) -> None:
        super().__init__()
        outplanes = outplanes or planes * 4
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, outplanes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(outplanes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if inplanes != outplanes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, outplanes, 1, bias=False),
                nn.BatchNorm2d(outplanes, momentum=BN_MOMENTUM),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit, stride 1: keep half the channels, transform the other half, shuffle.

    `branch2` indices 0..7 = 1x1, BN, ReLU, depthwise 3x3, BN, 1x1, BN, ReLU (official names).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"ShuffleUnit needs an even channel count, got {channels}")
        c = channels // 2
        self.branch2 = nn.Sequential(
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False),
            nn.BatchNorm2d(c, momentum=BN_MOMENTUM),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat((x1, self.branch2(x2)), dim=1), 2)


class SqueezeExcite(nn.Module):
    """Channel gate: global mean -> 1x1 (no bias) -> ReLU -> 1x1 (no bias) -> sigmoid -> multiply.

    The official code pools with AdaptiveAvgPool2d(1); a keepdim mean is the same number and
    exports as a single ReduceMean on every backend.
    """

    def __init__(self, channels: int, ratio: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // ratio)
        self.fc = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=(2, 3), keepdim=True))


class ConditionalChannelWeighting(nn.Module):
    """OCCW block: split; second half -> depthwise 3x3 -> BN -> SE [-> depthwise 3x3]; concat; shuffle.

    `local_attention=True` is SPIRE's LA-OCCW variant (an extra bias-free depthwise 3x3 with no
    BN and no activation after the SE gate).
    """

    _fuse_pairs = (("depthwise_convs", "bn"),)

    def __init__(self, channels: int, local_attention: bool = False, se_ratio: int = 4) -> None:
        super().__init__()
        c = channels // 2
        self.depthwise_convs = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.spatial_weighting = nn.Sequential(SqueezeExcite(c, se_ratio))
        self.local_attention = (nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
                                if local_attention else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        x2 = self.spatial_weighting(self.bn(self.depthwise_convs(x2)))
        if self.local_attention is not None:
            x2 = self.local_attention(x2)
        return channel_shuffle(torch.cat((x1, x2), dim=1), 2)


class OCCWStage(nn.Module):
    """One single-branch OCCW stage: `branches.0` = OCCW, LA-OCCW, ShuffleUnit; then ReLU.

    `fuse_scale=2.0` reproduces the official quirk (method.md §3): its HRNet-style fuse loop
    starts from the branch output and then adds it again, so the stage returns ReLU(2 * b(x)).
    The weights were trained with that factor, so the faithful model must keep it. New variants
    use 1.0 (the fuse of one branch is the identity): a plain ReLU, one multiply fewer per stage.
    """

    def __init__(self, channels: int, fuse_scale: float = 1.0) -> None:
        super().__init__()
        self.fuse_scale = float(fuse_scale)
        self.branches = nn.ModuleList([nn.Sequential(
            ConditionalChannelWeighting(channels, local_attention=False),
            ConditionalChannelWeighting(channels, local_attention=True),
            ShuffleUnit(channels),
        )])
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.branches[0](x)
        if self.fuse_scale == 2.0:
            y = y + y  # bit-identical to the official `x[0] + x[0]`
        elif self.fuse_scale != 1.0:
            y = y * self.fuse_scale
        return self.relu(y)

    def extra_repr(self) -> str:
        return f"fuse_scale={self.fuse_scale}"
