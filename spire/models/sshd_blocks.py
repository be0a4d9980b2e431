"""Building blocks of SSHD-Net (P2P-HDNet): ODConv, coordinate attention, HRNet and HCEM stages.

Why a separate file: `sshd.py` wires the network (method.md §7); the blocks here are the parts
with their own maths. ODConv (omni-dimensional dynamic convolution, Li et al. ICLR 2022) with
kernel_num 1 gates the input channels, the output filters and the k x k taps per sample; the
per-sample 3x3 kernel is run as one grouped convolution over the batch, which is why the
network exports with a static batch only.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .hrpe_blocks import BN_MOMENTUM

__all__ = ["ODConv2d", "CoordAtt", "BasicBlock", "ODBasicBlock", "ODBottleneck", "HRStage",
           "HCEMStage"]


class _ODAttention(nn.Module):
    """Pooled descriptor -> 1x1 -> BN -> ReLU -> channel / filter / spatial sigmoid gates."""

    _fuse_pairs = (("fc", "bn"),)

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int,
                 reduction: float = 0.0625, min_channel: int = 16) -> None:
        super().__init__()
        hidden = max(int(in_planes * reduction), min_channel)
        self.kernel_size = kernel_size
        self.temperature = 1.0
        self.fc = nn.Conv2d(in_planes, hidden, 1, bias=False)
        self.bn = nn.BatchNorm2d(hidden)
        self.relu = nn.ReLU(inplace=True)
        self.channel_fc = nn.Conv2d(hidden, in_planes, 1)
        self.filter_fc = nn.Conv2d(hidden, out_planes, 1)
        self.spatial_fc = nn.Conv2d(hidden, kernel_size * kernel_size, 1) if kernel_size > 1 else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor):
        h = self.relu(self.bn(self.fc(x.mean(dim=(2, 3), keepdim=True))))
        t = self.temperature
        ca = torch.sigmoid(self.channel_fc(h) / t)
        fa = torch.sigmoid(self.filter_fc(h) / t)
        sa = None
        if self.spatial_fc is not None:
            k = self.kernel_size
            sa = torch.sigmoid(self.spatial_fc(h) / t).reshape(-1, 1, 1, k, k)
        return ca, fa, sa


class ODConv2d(nn.Module):
    """ODConv with one kernel (kernel_num 1): y = conv(x * a_c, W * a_s) * a_f, per sample.

    `weight` keeps the reference layout (kernel_num, out, in, k, k). A 1x1 ODConv has no spatial
    gate and runs as an ordinary convolution; a k x k one folds the batch into groups.
    """

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, reduction: float = 0.0625) -> None:
        super().__init__()
        self.in_planes, self.out_planes = in_planes, out_planes
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.attention = _ODAttention(in_planes, out_planes, kernel_size, reduction)
        self.weight = nn.Parameter(torch.empty(1, out_planes, in_planes, kernel_size, kernel_size))
        nn.init.kaiming_normal_(self.weight[0], mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ca, fa, sa = self.attention(x)
        x = x * ca
        w = self.weight[0]
        if sa is None:
            return F.conv2d(x, w, None, self.stride, self.padding) * fa
        b, c, h, wd = x.shape
        k = self.kernel_size
        kernels = (w.unsqueeze(0) * sa).reshape(b * self.out_planes, c, k, k)
        out = F.conv2d(x.reshape(1, b * c, h, wd), kernels, None, self.stride, self.padding, groups=b)
        return out.reshape(b, self.out_planes, out.shape[-2], out.shape[-1]) * fa

    def extra_repr(self) -> str:
        return (f"{self.in_planes}, {self.out_planes}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class CoordAtt(nn.Module):
    """Coordinate attention (Hou et al. CVPR 2021): gates from pooling along H and along W."""

    _fuse_pairs = (("conv1", "bn1"),)

    def __init__(self, channels: int, reduction: int = 32) -> None:
        super().__init__()
        mip = max(8, channels // reduction)
        self.conv1 = nn.Conv2d(channels, mip, 1)
        self.bn1 = nn.BatchNorm2d(mip)
        self.act = nn.Hardswish()  # h-swish, x * ReLU6(x + 3) / 6
        self.conv_h = nn.Conv2d(mip, channels, 1)
        self.conv_w = nn.Conv2d(mip, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x_h = x.mean(dim=3, keepdim=True)                        # (n, c, h, 1)
        x_w = x.mean(dim=2, keepdim=True).transpose(2, 3)        # (n, c, w, 1)
        y = self.act(self.bn1(self.conv1(torch.cat((x_h, x_w), dim=2))))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        a_h = torch.sigmoid(self.conv_h(y_h))
        a_w = torch.sigmoid(self.conv_w(y_w.transpose(2, 3)))
        return x * a_w * a_h


class BasicBlock(nn.Module):
    """ResNet basic block 3x3 -> 3x3 with identity shortcut (HRNet branches)."""

    _fuse_pairs = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, channels: int, od: bool = False) -> None:
        super().__init__()
        conv = ((lambda: ODConv2d(channels, channels, 3, padding=1)) if od else
                (lambda: nn.Conv2d(channels, channels, 3, padding=1, bias=False)))
        self.conv1 = conv()
        self.bn1 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.conv2 = conv()
        self.bn2 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + x)


def ODBasicBlock(channels: int) -> BasicBlock:
    """A BasicBlock whose two 3x3 convolutions are ODConvs (the DCFM block)."""
    return BasicBlock(channels, od=True)


class ODBottleneck(nn.Module):
    """Bottleneck 1x1 -> 3x3 -> 1x1, all three ODConv, identity shortcut (end of layer1)."""

    def __init__(self, channels: int = 256, planes: int = 64) -> None:
        super().__init__()
        self.conv1 = ODConv2d(channels, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = ODConv2d(planes, planes, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = ODConv2d(planes, channels, 1)
        self.bn3 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + x)


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, relu: bool = False) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
              nn.BatchNorm2d(cout, momentum=BN_MOMENTUM)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


def _up(cin: int, cout: int, factor: int) -> nn.Sequential:
    return nn.Sequential(*_conv_bn(cin, cout, 1), nn.Upsample(scale_factor=float(factor), mode="nearest"))


class HRStage(nn.Module):
    """HRNet exchange stage: 4 BasicBlocks per branch, then every output sums every input.

    Lower -> higher resolution: 1x1 conv + BN + nearest upsample; higher -> lower: a chain of
    3x3 stride-2 conv + BN (ReLU except the last). `od=True` makes each branch's first block an
    ODBasicBlock (the DCFM stage).
    """

    def __init__(self, n_in: int, n_out: int, c: int = 32, od: bool = False, blocks: int = 4) -> None:
        super().__init__()
        self.n_in, self.n_out = n_in, n_out
        self.branches = nn.ModuleList([
            nn.Sequential(*[BasicBlock(c * 2 ** i, od=od and b == 0) for b in range(blocks)])
            for i in range(n_in)])
        self.fuse_layers = nn.ModuleList()
        for i in range(n_out):
            row = nn.ModuleList()
            for j in range(n_in):
                if i == j:
                    row.append(nn.Identity())
                elif j > i:
                    row.append(_up(c * 2 ** j, c * 2 ** i, 2 ** (j - i)))
                else:
                    chain = [_conv_bn(c * 2 ** j, c * 2 ** j, 3, 2, relu=True) for _ in range(i - j - 1)]
                    chain.append(_conv_bn(c * 2 ** j, c * 2 ** i, 3, 2))
                    row.append(nn.Sequential(*chain))
            self.fuse_layers.append(row)
        self.relu = nn.ReLU(inplace=True)

    def run_branches(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        return [branch(xi) for branch, xi in zip(self.branches, x)]

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        x = self.run_branches(x)
        out = []
        for row in self.fuse_layers:
            y = row[0](x[0])
            for j in range(1, self.n_in):
                y = y + row[j](x[j])
            out.append(self.relu(y))
        return out


class HCEMStage(HRStage):
    """HCEM / SFCC stepped feature cascade (method.md §7), then the usual HRNet fuse.

    After block k of every branch: k even cascades down (x[i] += D(x[i-1]), i = 1..n-1,
    D = 3x3 s2 conv + BN), k odd cascades up (x[i] += U(x[i+1]), i = n-2..0, U = 1x1 conv + BN +
    nearest x2), each sum followed by ReLU, so fine detail and context are exchanged after every
    block instead of once per stage.
    """

    def __init__(self, n_in: int, n_out: int, c: int = 32, blocks: int = 4) -> None:
        super().__init__(n_in, n_out, c, od=False, blocks=blocks)
        self.down = nn.ModuleList([_conv_bn(c * 2 ** i, c * 2 ** (i + 1), 3, 2) for i in range(n_in - 1)])
        self.up = nn.ModuleList([_up(c * 2 ** (i + 1), c * 2 ** i, 2) for i in range(n_in - 1)])

    def run_branches(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        x = list(x)
        n = self.n_in
        for k in range(len(self.branches[0])):
            x = [branch[k](xi) for branch, xi in zip(self.branches, x)]
            if k % 2 == 0:
                for i in range(1, n):
                    x[i] = self.relu(x[i] + self.down[i - 1](x[i - 1]))
            else:
                for i in range(n - 2, -1, -1):
                    x[i] = self.relu(x[i] + self.up[i](x[i + 1]))
        return x
