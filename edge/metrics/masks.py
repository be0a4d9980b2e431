"""BasicIRSTD-convention metrics for methods that output masks (segmentation IRSTD models).

The NUAA-SIRST table (IoU / Pd / Fa x1e-6, method.md sections 5 and 8) is measured this way, so
comparing a point detector with ACM, DNANet or SCTransNet needs the same rules:
threshold the output (> 0.5), take 8-connected components of prediction and ground truth; each GT
component, in label order, is detected by the *first* remaining predicted component whose centroid
is < 3 px from its centroid (that component is then used up); Fa = predicted pixels outside matched
components / all pixels. IoU is dataset-level (sum of intersections / sum of unions), nIoU the
mean per-image IoU.

Fa bug of older toolboxes, not reproduced: they listed matched component *areas* and counted as
false every predicted area not in that list, so an unmatched component with the same pixel count
as a matched one was silently dropped from Fa. Here components are tracked by label.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["MaskMetrics", "components"]


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels HxW int32, areas (K,), centroids (K,2) x,y) of the 8-connected parts of mask > 0."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    n, labels, stats, cents = cv2.connectedComponentsWithStats(m, connectivity=8)
    return labels, stats[1:, cv2.CC_STAT_AREA].astype(np.int64), cents[1:].astype(np.float64)


@dataclass
class MaskMetrics:
    """Accumulate (prediction map, GT mask) pairs; `compute()` gives iou, niou, pd, fa_per_pixel.

    threshold: a pixel is predicted when map > threshold (probabilities; BasicIRSTD: 0.5).
    match_dist: a GT component is detected by a predicted centroid closer than this (px, strict).
    """

    threshold: float = 0.5
    match_dist: float = 3.0
    _acc: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.reset()

    def reset(self) -> None:
        self._acc = dict(inter=0, union=0, iou_sum=0.0, images=0, targets=0, detected=0,
                         fa_pixels=0, pixels=0, dist_sum=0.0)

    def update(self, pred: np.ndarray, gt_mask: np.ndarray) -> dict:
        """Add one frame; `pred` is a score/probability map or a binary mask of the GT's shape.

        Returns this frame's counts (targets, detected, fa_pixels, iou).
        """
        pred = np.asarray(pred)
        gt = np.asarray(gt_mask)
        if gt.ndim == 3:
            gt = gt.max(axis=2)
        if pred.ndim == 3 and pred.shape[0] == 1:
            pred = pred[0]
        if pred.shape != gt.shape:
            raise ValueError(f"prediction shape {pred.shape} differs from mask shape {gt.shape}; "
                             "crop the padded output back to the image size first")
        p = pred > self.threshold
        g = gt > 0
        inter = int(np.count_nonzero(p & g))
        union = int(np.count_nonzero(p | g))

        p_lab, _, p_cent = components(p)
        _, _, g_cent = components(g)
        free = list(range(len(p_cent)))  # predicted components not used yet, label order
        matched = np.zeros(len(p_cent) + 1, dtype=bool)  # indexed by label (0 = background)
        detected, dist_sum = 0, 0.0
        for gc in g_cent:
            for k in free:
                d = float(np.hypot(*(p_cent[k] - gc)))
                if d < self.match_dist:
                    detected += 1
                    dist_sum += d
                    matched[k + 1] = True
                    free.remove(k)
                    break
        fa_pixels = int(np.count_nonzero(p & ~matched[p_lab]))

        a = self._acc
        a["inter"] += inter
        a["union"] += union
        iou = inter / union if union else 1.0  # empty prediction of an empty mask is perfect
        a["iou_sum"] += iou
        a["images"] += 1
        a["targets"] += len(g_cent)
        a["detected"] += detected
        a["fa_pixels"] += fa_pixels
        a["pixels"] += int(g.size)
        a["dist_sum"] += dist_sum
        return {"targets": len(g_cent), "detected": detected, "fa_pixels": fa_pixels, "iou": iou}

    def compute(self) -> dict:
        """iou, niou, pd, fa_per_pixel (predicted pixels outside matched components / pixels),
        plus the counts; fractions, not %. BasicIRSTD tables print Fa x1e-6."""
        a = self._acc
        return {
            "iou": a["inter"] / a["union"] if a["union"] else 0.0,
            "niou": a["iou_sum"] / a["images"] if a["images"] else 0.0,
            "pd": a["detected"] / a["targets"] if a["targets"] else 0.0,
            "fa_per_pixel": a["fa_pixels"] / a["pixels"] if a["pixels"] else 0.0,
            "targets": a["targets"], "detected": a["detected"], "fa_pixels": a["fa_pixels"],
            "pixels": a["pixels"], "images": a["images"],
            "loc_error_px": a["dist_sum"] / a["detected"] if a["detected"] else float("nan"),
        }

    def summary_line(self) -> str:
        r = self.compute()
        return (f"IoU {r['iou']:.4f}  nIoU {r['niou']:.4f}  Pd {r['pd']:.4f}  "
                f"Fa {r['fa_per_pixel'] * 1e6:.2f}e-6 false pixels/px  "
                f"[{r['detected']}/{r['targets']} targets, {r['images']} images; "
                f"map > {self.threshold:g}, centroid < {self.match_dist:g} px]")
