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
    body    per dilation d: ReLU(x + BN(conv3x3(ReLU(BN(conv3x3_d(x))))))   (ResNet basic block)
    neck    1x1 conv (width->neck) + BN + ReLU                                (optional)
    gate    x * sigmoid(1x1(ReLU(1x1(mean_hw(x)))))  on the neck: whole-frame context (optional)
    head    1x1 conv (neck or width -> 1) with bias (as HRPE's `final_layer`)

Why these widths (measured with `quantize.ptq` on random weights at 512², 2 threads, INT8 vs
FP32 latency of the same model): INT8 pays off only where convolutions are wide enough for the
INT8 GEMM to beat an FP32 GEMM that already runs near peak. Width 32: OpenVINO 2.8x, onnxruntime
1.8x; 48: 3.1x / 2.4x; 64: 3.5x / 2.6x; 64 with a 16-channel neck: 3.8x / 3.1x; with the gate
too: 3.7x / 3.0x. The neck matters because the head stays FP32: the map it reads is dequantized,
and at 64 channels that hand-over cost as much as a third of a convolution.

Training: the first version (six single-conv residual blocks, default head init) started at
outputs ~1e2 and never left the all-zero plateau (validation F1 0.01 after 60 epochs). Zero-gain
residual BNs and a 1e-3 head init start the network at the all-zero map with identity blocks;
it then learns faster than hrpe_lite (validation F1 0.46 after 5 epochs, lite: 0.25 after 20),
but without the gate it over-fits and plateaus lower (0.80 after 200 epochs, lite 0.85; the train
loss went to half of lite's). The SE gate, the whole-frame context HRPE's blocks have, was worth
5-9 points at equal epochs (0.71 / 0.74 / 0.75 at epochs 15 / 20 / 30 against 0.65 / 0.63 /
0.65); a 500x stronger weight decay instead changed nothing (0.61 / 0.65 / 0.65). This network is
the spire ladder (spire_n / spire_s / spire_m: widths 32 / 48 / 64), the default models since the
ladder replaced hrpe_lite (README, "Models").

Receptive field at the output: 7 px of stem, then 8·d px per 3x3 of dilation d at stride 4:
87 px with dilations (1, 2, 4), enough to judge a point target against the clutter
around it, which is what PRPS regression needs.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn as nn

from .hrpe import _cfg
from .hrpe_blocks import BN_MOMENTUM
from .registry import check_arch_kwargs, default_cfgs, register_model

__all__ = ["HRPEDenseArch", "HRPEDense", "ResidualConv", "LocalGate"]


@dataclass(frozen=True)
class HRPEDenseArch:
    """Widths and depth of one HRPE-dense variant.

    Args:
        in_chans: input channels (1 = IR native).
        stem1: channels of the stride-2 conv.
        width: channels of the stride-4 map (stem output, blocks, head input).
        dilations: one residual block per entry (two 3x3 convs each, the first with this
            dilation) at stride 4.
        neck: channels of a 1x1 conv + BN + ReLU between the blocks and the head (0: none). The head
            stays FP32 in INT8 models, so the map it reads is dequantized: a narrow neck makes that
            hand-over (and the FP32 head) `width / neck` times cheaper.
        gate: a squeeze-excitation gate on the neck (or last block) output: the one piece of
            whole-frame context, as HRPE's SE gates give it.
        gate_window: 0: the gate averages the whole input (SE); k > 0 (odd): it averages a k x k
            window of the stride-4 map around each place, over real pixels only (`LocalGate`), so a
            frame run at its own size scores what it scores padded to a bigger input.
    """

    in_chans: int = 1
    stem1: int = 16
    width: int = 64
    dilations: tuple[int, ...] = (1, 2, 4)
    neck: int = 16
    gate: bool = True
    gate_window: int = 0

    def __post_init__(self) -> None:
        if self.gate_window < 0 or (self.gate_window and self.gate_window % 2 == 0):
            raise ValueError(f"HRPEDenseArch.gate_window must be 0 (global) or an odd window, got {self.gate_window}")
        object.__setattr__(self, "dilations", tuple(int(d) for d in self.dilations))
        if not self.dilations or min(self.dilations) < 1:
            raise ValueError(f"HRPEDenseArch.dilations must be one or more ints >= 1, got {self.dilations}")
        if self.width % 8 or self.stem1 % 8 or self.neck % 8 or self.neck < 0:
            raise ValueError("HRPEDenseArch widths must be multiples of 8 (SIMD / INT8 GEMM blocking; neck 0 = "
                             f"none), got stem1={self.stem1}, width={self.width}, neck={self.neck}")


class ResidualConv(nn.Module):
    """ReLU(x + BN(conv3x3(ReLU(BN(conv3x3_dilated(x)))))): a ResNet basic block, dilated first conv.

    The second BN starts at zero gain, so a fresh block is the identity and a deep stack starts
    with the stem's activations at the head (the first version, without it, started with outputs
    ~1e2 and never left the all-zero plateau). Dilation widens the context a point target is
    judged against (clutter edges, sky/ground) without leaving stride 4 or adding non-conv ops.
    """

    _fuse_pairs = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        nn.init.zeros_(self.bn2.weight)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(x + self.bn2(self.conv2(y)))


class SEGate(nn.Module):
    """x * sigmoid(W2 ReLU(W1 mean(x))): per-channel weights from the whole frame."""

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.pool(x)))))


class LocalGate(SEGate):
    """x * sigmoid(W2 ReLU(W1 localmean_k(x))): the SE gate with a k x k window mean instead of the frame's.

    Why: the global mean makes every score depend on the whole input, so padding a 320x256 frame
    to 512x512 (what the ladder ships, `fit: pad`, 3.2x the pixels) changes the scores, and at
    their own size frames lost 6-11 F1 points. A window mean that leaves padding out
    (count_include_pad=False) gives the same gate at every place farther than k/2 from the
    padding, whatever the input size. Separable (k x 1 then 1 x k): 2k adds per value instead of
    k^2, exact because the valid part of a window is a rectangle. AveragePool runs on every
    backend (ONNX AveragePool, OpenVINO AvgPool exclude-pad, TFLite AVERAGE_POOL_2D); same
    parameters as SEGate (fc1, fc2), so a global-gate checkpoint initialises it.
    """

    def __init__(self, channels: int, window: int, reduction: int = 2) -> None:
        super().__init__(channels, reduction)
        r = window // 2
        self.pool = nn.Sequential(nn.AvgPool2d((window, 1), stride=1, padding=(r, 0), count_include_pad=False),
                                  nn.AvgPool2d((1, window), stride=1, padding=(0, r), count_include_pad=False))


class HRPEDense(nn.Module):
    """Stride-4 heatmap network: 2-conv stem -> dilated basic blocks -> 1x1 neck -> SE gate -> 1x1 head."""

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
        self.blocks = nn.Sequential(*[ResidualConv(a.width, d) for d in a.dilations])
        if a.neck:
            self.neck = nn.Sequential(nn.Conv2d(a.width, a.neck, 1, bias=False),
                                      nn.BatchNorm2d(a.neck, momentum=BN_MOMENTUM), nn.ReLU(inplace=True))
        else:
            self.neck = nn.Identity()
        c = a.neck or a.width
        self.gate = (LocalGate(c, a.gate_window) if a.gate_window else SEGate(c)) if a.gate else nn.Identity()
        self.final_layer = nn.Conv2d(c, 1, 1)
        nn.init.normal_(self.final_layer.weight, std=1e-3)  # start near the all-zero map, not at ~1e2
        nn.init.zeros_(self.final_layer.bias)
        self.stride = 4

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The stride-4 feature map (B, neck or width, S/4, S/4) the head reads."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.gate(self.neck(self.blocks(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.forward_features(x))


_ARCHS: dict[str, HRPEDenseArch] = {
    # The SPIRE-Edge ladder (n < s < m), one family of INT8-first models; `--model spire-s` works too,
    # and the names of the first version (hrpe_dense = spire_m, hrpe_dense_s = spire_n) are aliases
    # (spire.models.registry.ALIASES), so their checkpoints still load.
    "spire_n": HRPEDenseArch(stem1=16, width=32, neck=16, gate=True),
    "spire_s": HRPEDenseArch(stem1=16, width=48, neck=16, gate=True),
    "spire_m": HRPEDenseArch(stem1=16, width=64, neck=16, gate=True),
    # spire-s with a 31 x 31 window gate (124 px of context at stride 4): runs frames at their own size
    "spire_s_local": HRPEDenseArch(stem1=16, width=48, neck=16, gate=True, gate_window=31),
    # the same with a 63 x 63 window (252 px): more of the context the global gate had on large frames
    "spire_s_local63": HRPEDenseArch(stem1=16, width=48, neck=16, gate=True, gate_window=63),
}
# PTQ recipe per backend (ModelCfg.int8), from each rung's fidelity reports on sirst-v2/val: the SE
# gate's global mean and the 16-channel neck before it lose the most to INT8 (plain NNCF PTQ of
# spire-n: -2.7 F1 points, gate + neck in FP32: +2.0), TensorRT's rules need only the gate, and
# onnxruntime's MinMax ranges are set by rare hot pixels, so it calibrates on percentiles.
# spire-s's OpenVINO INT8 keeps its first convolution too (gate + neck only: -1.2 points, with
# conv1: -0.4, at 3.65x the FP32 speed).
_INT8_FAMILY = {
    "onnxruntime": {"calibrate_method": "Percentile"},
    "openvino": {"ignored_scope": ["gate", "neck"]},
    "tflite": {"ignored_scope": ["gate", "neck"]},
    "tensorrt": {"ignored_scope": ["gate"]},
}
_INT8 = {
    "spire_n": _INT8_FAMILY,
    "spire_s": {**_INT8_FAMILY, "openvino": {"ignored_scope": ["gate", "neck", "conv1"]}},
    "spire_m": {**_INT8_FAMILY, "openvino": {}},  # the round before's plain NNCF INT8 (-4.8: its FP32 ships)
    "spire_s_local": {**_INT8_FAMILY, "openvino": {"ignored_scope": ["gate", "neck", "conv1"]}},
}
_INT8["spire_s_local63"] = _INT8["spire_s_local"]  # the same layers, the same recipe
default_cfgs.update({name: _cfg(int8=_INT8[name]) for name in _ARCHS})


def _create(name: str, **kwargs) -> HRPEDense:
    check_arch_kwargs(name, HRPEDenseArch, kwargs)
    model = HRPEDense(_ARCHS[name], **kwargs)
    model.cfg = default_cfgs[name]
    return model


@register_model
def spire_n(**kwargs) -> HRPEDense:
    """Ladder rung n: width 32 (61 k params), the smallest boards; INT8 gains least at this width."""
    return _create("spire_n", **kwargs)


@register_model
def spire_s(**kwargs) -> HRPEDense:
    """Ladder rung s: width 48 (0.13 M params)."""
    return _create("spire_s", **kwargs)


@register_model
def spire_s_local(**kwargs) -> HRPEDense:
    """spire-s with a window gate (`LocalGate`): the same weights, frames run at their own size."""
    return _create("spire_s_local", **kwargs)


@register_model
def spire_s_local63(**kwargs) -> HRPEDense:
    """spire_s_local with a 63 x 63 window gate (an experiment of issue 28: does more context help SIRST-V2?)."""
    return _create("spire_s_local63", **kwargs)


@register_model
def spire_m(**kwargs) -> HRPEDense:
    """Ladder rung m: width 64 (0.23 M params), the widest INT8 GEMMs of the family."""
    return _create("spire_m", **kwargs)
