"""Plain Gaussian targets (SSHD-Net / P2P-HDNet), with SPIRE-style peak decoding.

Faithful mode is the official `KeypointToHeatMap_oneMapwithManyPoints`: cell int(p/4 + 0.5),
an integer-centred 13×13 kernel, cell (0, 0) means "no target", overlapping cells take the mean.
Default mode puts the Gaussian's peak at the point's **sub-cell** position (cell centre
stride·c + (stride − 1)/2, the decoder's convention) and overlaps take the maximum: the target
then carries the sub-pixel location the decoder's log-parabola fit recovers exactly, instead
of a rounding error of up to half a cell (2 input px) baked into every label.
"""
from __future__ import annotations

import numpy as np

from edge.codecs.base import BaseCodec, register_codec
from edge.codecs.utils import as_points_array, kernel_radius, official_kernel, paste_max, paste_mean, subcell_gaussian


@register_codec("gaussian")
class GaussianCodec(BaseCodec):
    """Gaussian heatmap codec (SSHD-Net defaults: thr 0.2, vr 0.2, K 8, σ 2 cells).

    Encoded:
        heatmap: float32 (h, w), peak 1 at every target.
    """

    def __init__(self, input_size: int, stride: int = 4, sigma: float = 2.0, faithful: bool = False,
                 thr: float = 0.2, vr: float = 0.2, top_k: int = 8, refine: str | None = None):
        super().__init__(input_size, stride, sigma, faithful, thr, vr, top_k, refine)

    def _empty(self) -> np.ndarray:
        return np.zeros((self.heatmap_size, self.heatmap_size), np.float32)

    def official_cells(self, pts: np.ndarray) -> np.ndarray:
        """SPIRE's heatmap cell of each point: int(p/stride + 0.5) (truncation, as astype(int))."""
        return (pts / self.stride + 0.5).astype(int)

    def subcell(self, pts: np.ndarray) -> np.ndarray:
        """Continuous cell coordinates of input-px points (default-mode convention)."""
        return (pts - (self.stride - 1) / 2) / self.stride

    def encode(self, points, image: np.ndarray | None = None) -> dict:
        """Points (N, 2) in input px -> {'heatmap'}; `image` is unused (plain Gaussian)."""
        pts = as_points_array(points)
        hm = self._empty()
        if self.faithful:
            kernel = official_kernel(self.sigma)
            for ix, iy in self.official_cells(pts):
                if (ix, iy) != (0, 0):
                    paste_mean(hm, kernel, int(ix), int(iy))
            return {"heatmap": hm}
        r = kernel_radius(self.sigma)
        for cx, cy in self.subcell(pts[np.isfinite(pts).all(1)]):
            ix, iy = int(np.floor(cx + 0.5)), int(np.floor(cy + 0.5))
            paste_max(hm, subcell_gaussian(cx, cy, ix, iy, r, self.sigma), ix, iy)
        return {"heatmap": hm}
