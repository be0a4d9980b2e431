"""Samples, lazy datasets and the mask -> points rule shared by every dataset layout.

The layouts (NUAA, BasicIRSTD, SPIRE JSON, LESPS) differ only in where files and lists live; what
a training or evaluation loop receives is always a `Sample` with a frame, float target points in
image pixels and the mask when there is one. Keeping the mask -> point rule (centroids of
8-connected components) in one function means labels, converter and metrics agree to the pixel.
Problems in the data (missing mask, mask of the wrong size, unreadable mask) are reported once
each as a `DatasetWarning` and in `dataset.problems`, never raised: public IRSTD sets have a few
such frames and one bad file should not stop a 200-epoch run.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.frames import read_frame

__all__ = ["Sample", "Entry", "Dataset", "ConcatDataset", "DatasetWarning", "points_from_mask",
           "mask_components", "read_mask", "scale_points"]

CENTROIDS = ("geometric", "intensity")


class DatasetWarning(UserWarning):
    """A data problem that was worked around (the sample was skipped, rescaled or left unlabelled)."""


@dataclass
class Sample:
    """One labelled frame.

    frame: H×W or H×W×3 RGB (uint8/uint16 as stored), from `edge.frames.read_frame`.
    points: float32 (N, 2) target centres (x, y) in image pixels (pixel i's centre is i).
    mask: uint8 H×W (0 / 255) or None; scr: (N,) signal-to-clutter ratios or None.
    labelled: False for a frame whose labels could not be read (points is then empty).
    Kept beside `edge.scoring.LabelledFrame` (what scoring reads, `LabelledFrame.from_sample`)
    because it carries what readers and training need and scoring does not: file, mask and SCR.
    """

    name: str
    path: Path | None
    frame: np.ndarray
    points: np.ndarray
    mask: np.ndarray | None = None
    scr: np.ndarray | None = None
    labelled: bool = True


@dataclass
class Entry:
    """Where one sample's files are; `points` is set when the layout stores points directly."""

    name: str
    image: Path
    mask: Path | None = None
    points: np.ndarray | None = None
    point_mask: Path | None = None
    labelled: bool = True
    clip: str | None = None  # video layout: the clip and the 0-based frame index in it
    frame_index: int | None = None


def mask_components(mask: np.ndarray, frame: np.ndarray | None = None, centroid: str = "geometric"):
    """(centroids float32 (N,2) x,y; boxes int (N,4) x,y,w,h; areas int (N,)) of mask > 0.

    Components are 8-connected, in OpenCV label order (raster order of each component's first
    pixel). `centroid='geometric'` is the mean pixel coordinate (what SPIRE's converter and
    skimage regionprops give); 'intensity' weights pixels by the frame's grey value (falls back
    to geometric where the weights sum to 0).
    """
    if centroid not in CENTROIDS:
        raise ValueError(f"centroid must be one of {CENTROIDS}, got {centroid!r}")
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[:, :, :3].max(axis=2)
    n, labels, stats, cents = cv2.connectedComponentsWithStats((m > 0).astype(np.uint8), connectivity=8)
    cents = cents[1:].astype(np.float64)
    if centroid == "intensity" and n > 1:
        if frame is None:
            raise ValueError("centroid='intensity' needs the frame")
        g = np.asarray(frame, dtype=np.float64)
        g = g.mean(axis=2) if g.ndim == 3 else g
        if g.shape != labels.shape:
            raise ValueError(f"frame shape {g.shape} differs from mask shape {labels.shape}")
        lab = labels.ravel()
        w = np.bincount(lab, weights=g.ravel(), minlength=n)[1:]
        ys, xs = np.indices(labels.shape)
        wx = np.bincount(lab, weights=(g * xs).ravel(), minlength=n)[1:]
        wy = np.bincount(lab, weights=(g * ys).ravel(), minlength=n)[1:]
        ok = w > 0
        cents[ok, 0] = wx[ok] / w[ok]
        cents[ok, 1] = wy[ok] / w[ok]
    boxes = stats[1:, :4].astype(np.int64)
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.int64)
    return cents.astype(np.float32), boxes, areas


def points_from_mask(mask: np.ndarray, frame: np.ndarray | None = None, centroid: str = "geometric") -> np.ndarray:
    """Target points float32 (N, 2): centroids of the 8-connected components of mask > 0.

    Geometric centroid (mean of the component's pixel coordinates) by default, the convention of
    SPIRE's mask -> JSON tool; `centroid='intensity'` weights by `frame`. A LESPS point mask (one
    255 pixel per target) gives those pixels' coordinates.
    """
    return mask_components(mask, frame, centroid)[0]


def scale_points(xy: np.ndarray, src_hw, dst_hw) -> np.ndarray:
    """Map pixel-index points from an image of size src_hw to one of size dst_hw (centres align)."""
    sy, sx = dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1]
    out = np.asarray(xy, dtype=np.float64).reshape(-1, 2).copy()
    out[:, 0] = (out[:, 0] + 0.5) * sx - 0.5
    out[:, 1] = (out[:, 1] + 0.5) * sy - 0.5
    return out.astype(np.float32)


def read_mask(path: Path) -> np.ndarray | None:
    """H×W uint8 mask (0 / 255) from any image file; None when the file cannot be decoded."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    m = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if m is None or m.size == 0:
        return None
    if m.ndim == 3:
        m = m[:, :, :3].max(axis=2)
    return np.where(m > 0, 255, 0).astype(np.uint8)


@dataclass
class Dataset:
    """A lazy labelled dataset: files are read in `__getitem__`, never at construction.

    Built by `edge.datasets.open_dataset`; `format` is the layout name, `split` the list used,
    `problems` the data problems found so far (each also warned once).
    """

    root: Path
    format: str
    split: str
    entries: list[Entry]
    centroid: str = "geometric"
    problems: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.centroid not in CENTROIDS:
            raise ValueError(f"centroid must be one of {CENTROIDS}, got {self.centroid!r}")
        self._seen = set(self.problems)

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def report(self, message: str) -> None:
        """Record a data problem and warn about it the first time it is seen."""
        if message not in self._seen:
            self._seen.add(message)
            self.problems.append(message)
            warnings.warn(message, DatasetWarning, stacklevel=3)

    def _labels_from_mask(self, path: Path, frame: np.ndarray, kind: str):
        """(points, mask at image size) from a mask file, or (None, None) when unreadable or another shape."""
        m = read_mask(path)
        if m is None:
            self.report(f"{path}: unreadable {kind}; the frame is kept unlabelled (fix or delete the file)")
            return None, None
        hw = frame.shape[:2]
        if m.shape != hw:
            size = f"{path}: {kind} is {m.shape[1]}x{m.shape[0]} but its image is {hw[1]}x{hw[0]}"
            refuse = abs((hw[1] / m.shape[1]) / (hw[0] / m.shape[0]) - 1.0) > 0.01  # another image's mask
            msg = (f"{size}, another aspect ratio: not this image's mask; the frame is kept unlabelled (training "
                   "and evaluation skip it; fix or delete the mask file)" if refuse else
                   f"{size}; rescaled to the image (re-export the mask at the image size to silence this)")
            if msg not in self._seen:  # one plain line (no Python warning with a source line), once per file
                import sys

                self._seen.add(msg)
                self.problems.append(msg)
                print(f"warning: {msg}", file=sys.stderr)
            if refuse:
                return None, None
            pts = scale_points(points_from_mask(m), m.shape, hw)
            m = cv2.resize(m, (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)
            return pts, m
        return points_from_mask(m, frame, self.centroid), m

    def __getitem__(self, i: int) -> Sample:
        e = self.entries[i]
        frame = read_frame(e.image)
        mask = None
        points = e.points
        labelled = e.labelled
        if e.mask is not None:
            pts, mask = self._labels_from_mask(e.mask, frame, "mask")
            if points is None:
                points, labelled = pts, pts is not None
        if e.point_mask is not None:
            points, _ = self._labels_from_mask(e.point_mask, frame, "point mask")
            labelled = points is not None
        if points is None:
            points = np.zeros((0, 2), np.float32)
        return Sample(e.name, e.image, frame, np.asarray(points, np.float32).reshape(-1, 2), mask,
                      None, labelled)


class ConcatDataset:
    """Several datasets read as one (index runs through them in order)."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        self._offsets = np.cumsum([0] + [len(d) for d in self.datasets])
        fmts = {getattr(d, "format", "?") for d in self.datasets}
        self.format = fmts.pop() if len(fmts) == 1 else "mixed"
        self.root = [getattr(d, "root", None) for d in self.datasets]
        self.split = "+".join(str(getattr(d, "split", "?")) for d in self.datasets)

    @property
    def names(self) -> list[str]:
        return [n for d in self.datasets for n in d.names]

    @property
    def problems(self) -> list[str]:
        return [p for d in self.datasets for p in getattr(d, "problems", [])]

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __getitem__(self, i: int) -> Sample:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        k = int(np.searchsorted(self._offsets, i, side="right")) - 1
        return self.datasets[k][i - int(self._offsets[k])]
