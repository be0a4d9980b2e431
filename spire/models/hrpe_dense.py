"""HRPE-dense: the HRPE recipe (one stride-4 map, no decoder, 1x1 heatmap head) with plain 3x3 blocks.

Why a second HRPE architecture: on the CPUs we ship to, HRPE's Lite-HRNet/ShuffleNet blocks
spend their time moving memory, not computing. Profiled with OpenVINO on this machine (hrpe_lite
at 512², one thread), channel shuffle + split + concat took about half the FP32 time
(ShuffleChannels 6.5 ms, Split 1.4 ms, Concat 1.1 ms against 9 ms of convolutions), and none of
it gets cheaper in INT8, while depthwise convolutions and SE gates gain little from VNNI. A stack
of residual dense 3x3 convolutions at stride 4 has no such ops: every layer is a convolution that
BN-folds into one op and runs as INT8 GEMM, which is where an edge CPU/NPU is fast.

Network (input B x in_chans x S x S, output B x 1 x S/4 x S/4, linear):
    stem    3x3 s2 conv (in_chans->stem1) + BN + ReLU; 3x3 s2 conv (stem1->width) + BN + ReLU
    body    n_blocks x [3x3 conv (width->width) + BN, + identity, ReLU]
    head    1x1 conv (width->1) with bias (as HRPE's `final_layer`)
Status (measured, not a shipped candidate yet): with spire.train's recipe on the shipped model's
data (crops 256, batch 16, AdamW, bg-ratio 0.5) it reached validation F1 0.01 after 60 epochs at
lr 1.5e-3 (0.00 after 40 at 5e-3) where hrpe_lite reached 0.75 in the same epochs; it lacks
HRPE's SE gates (the only global context in the network), the likeliest reason. Its speed case
stands (OpenVINO, 512², one thread, random weights: FP32 9.1 ms, NNCF INT8 3.0 ms).

Receptive field at the output: 11 px of stem + 8 px per block (59 px with 6 blocks), enough to
see a point target against its local clutter, which is what PRPS regression needs.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn as nn

from .hrpe import _cfg
from .hrpe_blocks import BN_MOMENTUM
from .registry import check_arch_kwargs, default_cfgs, register_model

__all__ = ["HRPEDenseArch", "HRPEDense", "ResidualConv"]


@dataclass(frozen=True)
class HRPEDenseArch:
    """Widths and depth of one HRPE-dense variant.

    Args:
        in_chans: input channels (1 = IR native).
        stem1: channels of the stride-2 conv.
        width: channels of the stride-4 map (stem output, blocks, head input).
        n_blocks: residual 3x3 blocks at stride 4.
    """

    in_chans: int = 1
    stem1: int = 16
    width: int = 32
    n_blocks: int = 6

    def __post_init__(self) -> None:
        if self.n_blocks < 1:
            raise ValueError(f"HRPEDenseArch.n_blocks must be >= 1, got {self.n_blocks}")
        if self.width % 8 or self.stem1 % 8:
            raise ValueError("HRPEDenseArch widths must be multiples of 8 (SIMD / INT8 GEMM blocking), "
                             f"got stem1={self.stem1}, width={self.width}")


class ResidualConv(nn.Module):
    """ReLU(x + BN(conv3x3(x))): one dense 3x3 layer with an identity shortcut."""

    _fuse_pairs = (("conv", "bn"),)

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.bn(self.conv(x)))


class HRPEDense(nn.Module):
    """Stride-4 heatmap network: 2-conv stem -> residual dense 3x3 blocks -> 1x1 head."""

    _fuse_pairs = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, arch: HRPEDenseArch | None = None, **overrides) -> None:
        super().__init__()
        a = replace(arch or HRPEDenseArch(), **overrides)
        self.arch_cfg = a
        self.conv1 = nn.Conv2d(a.in_chans, a.stem1, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(a.stem1, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(a.stem1, a.width, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(a.width, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.blocks = nn.Sequential(*[ResidualConv(a.width) for _ in range(a.n_blocks)])
        self.final_layer = nn.Conv2d(a.width, 1, 1)
        self.stride = 4

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The stride-4 feature map (B, width, S/4, S/4) before the head."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.blocks(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.forward_features(x))


_ARCHS: dict[str, HRPEDenseArch] = {
    "hrpe_dense": HRPEDenseArch(),
    "hrpe_dense_s": HRPEDenseArch(stem1=8, width=16, n_blocks=6),
}
default_cfgs.update({name: _cfg() for name in _ARCHS})


def _create(name: str, **kwargs) -> HRPEDense:
    check_arch_kwargs(name, HRPEDenseArch, kwargs)
    model = HRPEDense(_ARCHS[name], **kwargs)
    model.cfg = default_cfgs[name]
    return model


@register_model
def hrpe_dense(**kwargs) -> HRPEDense:
    """INT8-friendly edge default candidate: width 32, six residual 3x3 blocks at stride 4."""
    return _create("hrpe_dense", **kwargs)


@register_model
def hrpe_dense_s(**kwargs) -> HRPEDense:
    """Half width (16) for the smallest boards; a quarter of hrpe_dense's MACs."""
    return _create("hrpe_dense_s", **kwargs)
