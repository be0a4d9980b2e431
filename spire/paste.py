"""Copy-paste of real targets into background training views (numpy + OpenCV, no torch).

Why: the false alarms and misses that remain sit on clutter the positive views rarely show
(SIRST-V2's 379 target-free frames of cloud, sea and buildings; target-free video frames),
while the targets come from a few hundred frames. Pasting real targets, cut from the labelled
training frames, into a share of the background views puts positives on that clutter, at random
places, sizes and contrasts, so the network must tell target from clutter there instead of
learning where targets usually are.

A target is cut as a residual: the small patch around its label minus the median of the patch's
border (its local background). Adding the residual puts the target's own signature (shape,
polarity, blur) on any background without carrying its old surroundings along, and needs no
mask (the video clips have points only). Patches weaker than `min_contrast` grey levels are not
kept: a box-centre label on a large aircraft is not a point target.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PATCH_RADIUS = 5  # 11 x 11 px: the SPIRE point targets are at most ~9 px across


@dataclass(frozen=True)
class PasteConfig:
    """How a background view gets targets: `prob` of the plain background views receive 1..`max_targets`
    residuals, each scaled by U(scale) and multiplied by U(gain)."""

    prob: float = 0.0
    max_targets: int = 3
    scale: tuple[float, float] = (0.75, 1.5)
    gain: tuple[float, float] = (0.5, 1.5)
    margin: float = 8.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"copy-paste probability must be in [0, 1], got {self.prob}")


def cut_residual(frame: np.ndarray, x: float, y: float, r: int = PATCH_RADIUS):
    """(residual patch (2r+1)^2 float32, sub-pixel offset of the label from the patch centre), or None
    when the patch leaves the frame."""
    cx, cy = int(round(x)), int(round(y))
    if cx - r < 0 or cy - r < 0 or cx + r >= frame.shape[1] or cy + r >= frame.shape[0]:
        return None
    patch = frame[cy - r: cy + r + 1, cx - r: cx + r + 1].astype(np.float32)
    if patch.ndim == 3:
        patch = patch.mean(axis=2)
    border = np.concatenate([patch[0], patch[-1], patch[1:-1, 0], patch[1:-1, -1]])
    return patch - np.median(border), (float(x) - cx, float(y) - cy)


class TargetBank:
    """Residual patches of real targets, drawn from training frames only."""

    def __init__(self, patches: list[np.ndarray], offsets: list[tuple[float, float]]):
        if not patches:
            raise ValueError("no target patch passed the contrast test; copy-paste needs labelled point targets")
        self.patches, self.offsets = patches, offsets

    def __len__(self) -> int:
        return len(self.patches)

    @classmethod
    def from_store(cls, store, rng: np.random.Generator, frames_per_domain: int = 400,
                   min_contrast: float = 6.0) -> "TargetBank":
        """Cut every label of up to `frames_per_domain` positive frames of each domain (so one large
        root does not make the whole bank)."""
        by_domain: dict[int, list[int]] = {}
        for i in store.positives:
            by_domain.setdefault(store.records[i].domain, []).append(i)
        patches, offsets = [], []
        for idx in by_domain.values():
            chosen = rng.choice(idx, size=min(frames_per_domain, len(idx)), replace=False)
            for i in sorted(int(v) for v in chosen):
                got = store.load(i)
                if got is None:
                    continue
                frame, pts = got
                for x, y in np.asarray(pts, np.float32).reshape(-1, 2):
                    cut = cut_residual(frame, float(x), float(y))
                    if cut is not None and np.abs(cut[0]).max() >= min_contrast:
                        patches.append(cut[0])
                        offsets.append(cut[1])
        return cls(patches, offsets)

    def paste(self, frame: np.ndarray, points: np.ndarray, rng: np.random.Generator,
              cfg: PasteConfig) -> tuple[np.ndarray, np.ndarray]:
        """`frame` with 1..max_targets residuals added at random places (clipped to its dtype's range)
        and `points` with their labels appended."""
        h, w = frame.shape[:2]
        out = frame.astype(np.float32)
        new = []
        for _ in range(int(rng.integers(1, cfg.max_targets + 1))):
            k = int(rng.integers(len(self.patches)))
            z = float(rng.uniform(*cfg.scale))
            res = self.patches[k] * float(rng.uniform(*cfg.gain))
            side = max(3, int(round(res.shape[0] * z)) | 1)  # odd, so the centre is a pixel
            res = cv2.resize(res, (side, side), interpolation=cv2.INTER_LINEAR)
            r = side // 2
            lo = cfg.margin + r
            if w - 1 - lo <= lo or h - 1 - lo <= lo:
                break
            cx, cy = int(rng.integers(lo, w - lo)), int(rng.integers(lo, h - lo))
            region = out[cy - r: cy + r + 1, cx - r: cx + r + 1]
            region += res[..., None] if out.ndim == 3 else res
            dx, dy = self.offsets[k]
            new.append((cx + dx * z, cy + dy * z))
        if np.issubdtype(frame.dtype, np.integer):
            info = np.iinfo(frame.dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        pts = np.asarray(points, np.float32).reshape(-1, 2)
        if new:
            pts = np.vstack([pts, np.asarray(new, np.float32)])
        return out.astype(frame.dtype), pts
