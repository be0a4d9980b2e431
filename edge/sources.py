"""Where frames come from: the built-in synthetic clip, an image folder (labelled when it is a dataset), a video, a camera.

Every source yields the same `Item(frame_id, name, frame, gt, read_ms)`: `frame` is the read
array or the exception that reading it raised (a corrupt file must not stop a run, so the run
loop logs it with its name, skips it and counts it), `gt` the labelled points in image px or
None. Videos and cameras that stop delivering frames are retried a few times, then end cleanly.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from edge.errors import DatasetError, FrameError, SpireEdgeError
from edge.frames import IMAGE_SUFFIXES, read_frame


class Item(NamedTuple):
    """One frame from a source (frame is an np.ndarray, or the Exception that reading raised)."""

    frame_id: int
    name: str
    frame: object
    gt: np.ndarray | None
    read_ms: float = 0.0


@dataclass
class Source:
    """Base: `kind`, `spec` (what the user passed), `labelled`, `fps` (video/camera), iteration."""

    spec: str
    kind: str = "source"
    labelled: bool = False
    fps: float | None = None
    limit: int | None = None

    def __iter__(self) -> Iterator[Item]:
        raise NotImplementedError

    def __len__(self) -> int:  # frames expected (0 when unknown: camera)
        return 0

    def close(self) -> None:
        """Release a capture device or file."""


def _timed_read(fn, *args):
    t = time.perf_counter()
    try:
        out = fn(*args)
    except (SpireEdgeError, ValueError, OSError) as e:
        out = e
    return out, (time.perf_counter() - t) * 1000.0


def _cap(n: int, limit: int | None) -> int:
    return n if not limit or limit <= 0 else min(n, limit)


# --------------------------------------------------------------------------- synthetic
class SyntheticSource(Source):
    """edge.synthetic.demo_clip(): a seeded IR clip with known targets (labelled)."""

    def __init__(self, limit: int | None = None):
        super().__init__("synthetic", "synthetic", True, None, limit)
        from edge.synthetic import demo_clip

        try:  # generate only the frames asked for (or more than the default clip when asked)
            clip = demo_clip(n_frames=int(limit)) if limit and limit > 0 else demo_clip()
        except TypeError:
            clip = demo_clip()
        self.clip = list(_clip_frames(clip))

    def __len__(self) -> int:
        return _cap(len(self.clip), self.limit)

    def __iter__(self) -> Iterator[Item]:
        for i, (frame, pts) in enumerate(self.clip[:len(self)]):
            out, ms = _timed_read(read_frame, frame, f"synthetic#{i:04d}")
            yield Item(i, f"synthetic#{i:04d}", out, np.asarray(pts, np.float32).reshape(-1, 2), ms)


def _clip_frames(clip) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(frame, points) pairs from demo_clip()'s result, whichever container it uses."""
    if isinstance(clip, dict):
        clip = zip(clip["frames"], clip["points"])
    elif hasattr(clip, "frames") and hasattr(clip, "points"):
        clip = zip(clip.frames, clip.points)
    elif isinstance(clip, tuple) and len(clip) == 2 and isinstance(clip[0], np.ndarray) and clip[0].ndim >= 3:
        clip = zip(clip[0], clip[1])
    for item in clip:
        if isinstance(item, dict):
            yield item["frame"], item.get("points", np.zeros((0, 2)))
        elif hasattr(item, "frame"):
            yield item.frame, getattr(item, "points", np.zeros((0, 2)))
        else:
            yield item[0], item[1]


# --------------------------------------------------------------------------- folders
class FolderSource(Source):
    """Every image file of a folder (sorted by name), unlabelled; a single image file works too."""

    def __init__(self, root: str | Path, limit: int | None = None):
        root = Path(root)
        super().__init__(str(root), "folder", False, None, limit)
        if root.is_file():
            self.files = [root]
        else:
            folder = root / "images" if (root / "images").is_dir() else root
            self.files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise DatasetError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found; pass a folder of frames, "
                               "a video file, camera:N or synthetic")

    def __len__(self) -> int:
        return _cap(len(self.files), self.limit)

    def __iter__(self) -> Iterator[Item]:
        for i, p in enumerate(self.files[:len(self)]):
            out, ms = _timed_read(read_frame, p)
            yield Item(i, p.name, out, None, ms)


class DatasetSource(Source):
    """A labelled dataset folder (edge.datasets layouts): frames plus their target points."""

    def __init__(self, root: str | Path, split: str = "all", limit: int | None = None):
        from edge.datasets import open_dataset

        super().__init__(str(root), "dataset", True, None, limit)
        self.dataset = open_dataset(root, split=split)
        if len(self.dataset) == 0:
            raise DatasetError(f"{root}: split {split!r} has no frames; pass --split with a list that exists")

    def __len__(self) -> int:
        return _cap(len(self.dataset), self.limit)

    def __iter__(self) -> Iterator[Item]:
        names = self.dataset.names
        for i in range(len(self)):
            sample, ms = _timed_read(self.dataset.__getitem__, i)
            if isinstance(sample, Exception):
                yield Item(i, names[i], sample, None, ms)
            else:
                gt = sample.points if sample.labelled else None
                yield Item(i, sample.name, sample.frame, gt, ms)


# --------------------------------------------------------------------------- video / camera
class CaptureSource(Source):
    """A video file or camera through cv2.VideoCapture; a stalled stream is retried, then ends."""

    def __init__(self, spec: str, device: int | str, kind: str, limit: int | None = None,
                 retries: int = 3, retry_wait_s: float = 0.2):
        import cv2

        super().__init__(spec, kind, False, None, limit)
        self.cap = cv2.VideoCapture(device)
        if not self.cap.isOpened():
            what = "camera" if kind == "camera" else "video"
            raise DatasetError(f"{spec}: cannot open this {what}; check the path/index and that OpenCV has "
                               f"a backend for it (ffmpeg/v4l2)")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else None
        self.count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if kind == "video" else 0
        self.retries, self.retry_wait_s = int(retries), float(retry_wait_s)
        self.stopped_early = False
        self.stem = Path(spec).stem if kind == "video" else spec.replace(":", "")

    def __len__(self) -> int:
        n = max(self.count, 0)
        return _cap(n, self.limit) if n else (self.limit or 0)

    def _grab(self):
        import cv2

        for attempt in range(self.retries + 1):
            ok, frame = self.cap.read()
            if ok and frame is not None:
                return frame[:, :, ::-1].copy() if frame.ndim == 3 else frame  # BGR -> RGB
            if self.kind == "video" and self.count and self.cap.get(cv2.CAP_PROP_POS_FRAMES) >= self.count:
                return None  # the file simply ended
            if attempt < self.retries:
                time.sleep(self.retry_wait_s)
        self.stopped_early = self.kind == "camera" or (self.count and self.cap.get(cv2.CAP_PROP_POS_FRAMES) < self.count)
        return None

    def __iter__(self) -> Iterator[Item]:
        i = 0
        while not self.limit or i < self.limit:
            t = time.perf_counter()
            frame = self._grab()
            if frame is None:
                return
            name = f"{self.stem}#{i:06d}"
            out, _ = _timed_read(read_frame, frame, name)
            yield Item(i, name, out, None, (time.perf_counter() - t) * 1000.0)  # grab + check
            i += 1

    def close(self) -> None:
        self.cap.release()


VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".ts")


def open_source(spec: str | None, limit: int | None = None, split: str = "all") -> Source:
    """'synthetic' | DIR (dataset layout -> labelled) | image file | VIDEO | 'camera:N' -> a Source."""
    spec = spec or "synthetic"
    if spec == "synthetic":
        return SyntheticSource(limit)
    if spec.startswith("camera:"):
        idx = spec.split(":", 1)[1]
        return CaptureSource(spec, int(idx) if idx.isdigit() else idx, "camera", limit)
    path = Path(spec)
    if path.is_dir():
        from edge.datasets import detect_format

        try:
            detect_format(path)
        except DatasetError:
            return FolderSource(path, limit)
        return DatasetSource(path, split, limit)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return FolderSource(path, limit)
        return CaptureSource(spec, str(path), "video", limit)
    raise DatasetError(f"{spec}: no such folder, video or image; use synthetic, a folder, a video file or camera:N")


__all__ = ["Item", "Source", "SyntheticSource", "FolderSource", "DatasetSource", "CaptureSource",
           "open_source", "FrameError", "VIDEO_SUFFIXES"]
