"""`BaseCodec`: one object owns both halves of a heatmap representation, and the registry.

The same codec dict (`to_dict()`, stored in every sidecar) builds the training targets and
decodes the deployed model's output, so the two halves cannot drift apart (mmpose's design,
without its framework imports: numpy only, so the device runtime imports the same class).

Note (shapes and spaces):
    S = input_size, h = w = S / stride (heatmap_size). N points, K = top_k.
    encode: points (N, 2) (x, y) in network-input px -> {'heatmap': float32 (h, w)}.
    decode: map (h, w) | (1, h, w) | (1, 1, h, w) -> Points in input px, or in image px when
            a Letterbox is given.
Cell convention: default mode, cell c covers input px [stride·c, stride·c + stride), its centre
is stride·c + (stride − 1)/2; faithful mode, cell c is input px stride·c (SPIRE's ×4, no offset).
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from edge.codecs.peaks import REFINE_METHODS, as_map, cell_table, find_peaks, refine, select_top_k
from edge.errors import ArgumentError
from edge.inference.points import Points

CODECS: dict[str, type] = {}

# What a score is, stated once: the raw value of the network's heatmap at a peak. The head is linear
# (no sigmoid, as the official network) and regresses training targets in 0..1 (1 at a labelled
# target's centre), so a confident target scores about 1 and may score more (1.59 and 2.05 were seen
# on the built-in clip with spire-s); nothing bounds it above. A threshold (--conf, `thr=`, a sidecar's
# codec thr) is therefore any number in (0, SCORE_RANGE[1]]: above 0 (0 would keep every local
# maximum of the background) and at most 2, about the highest score a trained model emits, so a
# threshold that can only find nothing (a sidecar's thr 7, `--conf 35` typed as a percentage) is
# refused in one line instead of silently finding nothing.
SCORE_RANGE = (0.0, 2.0)


def check_threshold(value, what: str = "--conf") -> float:
    """`value` as a float decode threshold in (SCORE_RANGE[0], SCORE_RANGE[1]], else a one-line
    ArgumentError naming `what` (the option, or the sidecar file and its key)."""
    lo, hi = SCORE_RANGE
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not lo < v <= hi:  # NaN fails too
        raise ArgumentError(f"{what} {value!r}: a score threshold must be a number in ({lo:g}, {hi:g}] (scores are "
                            "the heatmap's peak values, about 1 at a target and possibly above 1; leave it out for "
                            "the model's validated threshold)")
    return v


def register_codec(name: str):
    """Class decorator: make a codec buildable from {'type': name, ...}."""

    def deco(cls):
        CODECS[name] = cls
        cls.type_name = name
        return cls

    return deco


def build_codec(cfg: dict) -> "BaseCodec":
    """Rebuild a codec from its `to_dict()` (e.g. a sidecar's 'codec' entry).

    Every codec is registered by then: importing this module runs the package's `__init__`,
    which imports each codec module (nothing is imported back from here, so no cycle)."""
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    if kind not in CODECS:
        raise ValueError(f"unknown codec type {kind!r}; known: {sorted(CODECS)}")
    return CODECS[kind](**cfg)


class BaseCodec(ABC):
    """Heatmap codec with SPIRE-style peak decoding (threshold, 3×3 NMS, top-K, sub-pixel).

    Args:
        input_size: network input side S (pixels).
        stride: output stride (4 for HRPE / HRNet).
        sigma: Gaussian σ in heatmap cells.
        faithful: reproduce the official code's quirks (method.md §2 and §4) exactly.
        thr: absolute score threshold (a peak must be > thr).
        vr: SPIRE's relative cut (keep peaks ≥ (1 − vr)·best); applied in faithful mode only,
            since it drops real dim targets next to a bright one.
        top_k: at most K points per map.
        refine: 'quadratic' | 'centroid' | 'quarter' | 'none'; None picks 'quarter' when
            faithful, else 'quadratic'.
    """

    type_name = "base"

    def __init__(self, input_size: int, stride: int = 4, sigma: float = 2.0, faithful: bool = False,
                 thr: float = 0.35, vr: float = 0.35, top_k: int = 8, refine: str | None = None):
        if input_size <= 0 or stride <= 0 or input_size % stride:
            raise ValueError(f"input_size {input_size} must be a positive multiple of stride {stride}")
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if not 0 <= vr < 1:
            raise ValueError(f"vr must be in [0, 1), got {vr}")
        refine = refine or ("quarter" if faithful else "quadratic")
        if refine not in REFINE_METHODS:
            raise ValueError(f"refine must be one of {REFINE_METHODS}, got {refine!r}")
        self.input_size = int(input_size)
        self.stride = int(stride)
        self.sigma = float(sigma)
        self.faithful = bool(faithful)
        self.thr = float(thr)
        self.vr = float(vr)
        self.top_k = int(top_k)
        self.refine = refine

    @property
    def heatmap_size(self) -> int:
        """Side of the (square) heatmap, S / stride."""
        return self.input_size // self.stride

    def to_dict(self) -> dict:
        return {"type": self.type_name, "input_size": self.input_size, "stride": self.stride,
                "sigma": self.sigma, "faithful": self.faithful, "thr": self.thr, "vr": self.vr,
                "top_k": self.top_k, "refine": self.refine}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "type")
        return f"{type(self).__name__}({args})"

    @abstractmethod
    def encode(self, points, image: np.ndarray | None = None) -> dict:
        """Points (N, 2) in input px (+ the letterboxed image) -> {'heatmap': float32 (h, w)}."""

    # ------------------------------------------------------------------ decode
    def _output_table(self, shape: tuple, letterbox) -> tuple[np.ndarray, np.ndarray]:
        """(table (n, 2), scale (2,)) float32: every cell's output position (input px, or image
        px through letterbox.inverse) and output px per cell. Cell + offset -> table[idx] +
        offset·scale: one fused affine (float32 keeps 1e-4 px at 4000 px). The last one is
        cached: a video stream decodes every frame through the same Letterbox."""
        cached = getattr(self, "_last_table", None)
        if cached is not None and cached[0] is letterbox and cached[1] == shape:
            return cached[2]
        off = 0.0 if self.faithful else (self.stride - 1) / 2
        a = np.array([self.stride, self.stride], np.float64)
        b = np.array([off, off])
        if letterbox is not None:
            a, b = a / (letterbox.sx, letterbox.sy), (b - (letterbox.tx, letterbox.ty)) / (letterbox.sx, letterbox.sy)
        out = ((cell_table(shape) * a + b).astype(np.float32), a.astype(np.float32))
        self._last_table = (letterbox, shape, out)
        return out

    def decode(self, heatmap, letterbox=None, thr: float | None = None) -> Points:
        """Peaks of one map -> Points (input px, or image px through `letterbox.inverse`).

        `thr` overrides the codec's threshold for this call (e.g. a low one that keeps candidates
        for a PR sweep); the codec itself is never changed.

        Faithful mode is method.md §4: NMS peaks > thr, sorted, relative vr cut, K slots,
        quarter-cell shift, ×stride, and a coordinate exactly 0 before the inverse transform
        stays 0 after it. The official K-slot output pads with (0, 0), score 0, which its own
        evaluation drops; here only filled slots are returned (never more than K).
        Scores are the raw map values at the peaks, best first (see SCORE_RANGE: about 1 at a
        target, not bounded by 1).
        """
        hm = as_map(heatmap)
        idx, vals = find_peaks(hm, self.thr if thr is None else float(thr))
        if idx.size == 0:
            return Points.empty()
        idx, vals = select_top_k(idx, vals, self.top_k, self.vr if self.faithful else None)
        off = refine(hm, idx, vals, self.refine)
        table, scale = self._output_table(hm.shape, letterbox)
        xy = table[idx] + off * scale
        if self.faithful and letterbox is not None:  # the official nrx_affine_points quirk
            xy[(cell_table(hm.shape)[idx] + off) == 0] = 0
        return Points.trusted(xy, vals[:, 0])

    def decode_batch(self, maps, letterboxes=None) -> list[Points]:
        """(B, 1, h, w) or (B, h, w) maps (+ one Letterbox per map, or None) -> list of Points."""
        maps = np.asarray(maps)
        if maps.ndim == 4:
            if maps.shape[1] != 1:
                raise ValueError(f"decode_batch expects (B, 1, h, w) maps, got {maps.shape}")
            maps = maps[:, 0]
        if maps.ndim != 3:
            raise ValueError(f"decode_batch expects (B, 1, h, w) or (B, h, w) maps, got {maps.shape}")
        if letterboxes is None:
            letterboxes = [None] * len(maps)
        if len(letterboxes) != len(maps):
            raise ValueError(f"{len(maps)} maps but {len(letterboxes)} letterboxes")
        return [self.decode(m, lb) for m, lb in zip(maps, letterboxes)]
