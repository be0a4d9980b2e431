"""Where frames come from: the built-in IR clip, labelled clip folders, videos, cameras, streams, images.

    (no --source)   the built-in real thermal clip (edge.demo: IR_DRONE_154, labelled), scored
    DIR             a labelled dataset (edge.datasets layouts; the ir-drone clip layout videos/ +
                    labels/ + <split>.txt is scored per clip and overall), else a folder of frames
    VIDEO / IMAGE   a video file (mp4/avi/mkv/... through OpenCV; labelled when NAME.csv is beside
                    it or in ../labels/), or one image
    camera:N        a camera; rtsp:// http(s):// ... URLs and GStreamer pipelines ('a ! b ! appsink')
    synthetic       generated frames with exactly known targets (edge.datasets.synthetic): a test fixture
                    and speed check, not real IR (the shipped model finds few of its targets)

Every source yields the same `Item(frame_id, name, frame, gt, read_ms, clip)`: `frame` is the
read array or the exception that reading it raised (a corrupt file must not stop a run, so the
run loop logs it with its name, skips it and counts it), `gt` the labelled points in image px or
None, `clip` the clip a video frame belongs to (per-clip scores). `report()` adds what a source
knows to summary.json (dropped frames in real-time mode, clips, undecodable frames). Videos and
cameras are in edge.sources.capture.
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
    """One frame from a source (frame is an np.ndarray, or the Exception that reading raised).

    Kept beside `edge.scoring.LabelledFrame` (`LabelledFrame.from_item`, `SourceFrames`) because a
    live run also needs its read time; scoring takes the LabelledFrame view of it.
    """

    frame_id: int
    name: str
    frame: object
    gt: np.ndarray | None
    read_ms: float = 0.0
    clip: str | None = None


@dataclass
class Source:
    """Base: `kind`, `spec` (what the user passed), `labelled`, `fps` (video/camera), iteration.

    `is_video`: consecutive frames of a video (an annotated .mp4 is written for them);
    `fps_out`: the frame rate of what the source yields (fps / frame stride).
    """

    spec: str
    kind: str = "source"
    labelled: bool = False
    fps: float | None = None
    limit: int | None = None
    is_video = False
    should_stop = None  # a callable set by the run loop: True once Ctrl-C / SIGTERM asked the run to stop

    def __iter__(self) -> Iterator[Item]:
        raise NotImplementedError

    def __len__(self) -> int:  # frames expected (0 when unknown: camera)
        return 0

    @property
    def fps_out(self) -> float | None:
        return self.fps

    def report(self) -> dict:
        """Source facts for summary.json (empty by default)."""
        return {}

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
    """edge.datasets.synthetic.demo_clip(): seeded generated frames with exactly known targets (labelled).

    A fixture for tests and a calibration / speed fallback: its clutter does not look like real
    IR, so its detection figures say nothing about real frames (use the built-in clip for that).
    """

    def __init__(self, limit: int | None = None):
        super().__init__("synthetic", "synthetic", True, None, limit)
        from edge.datasets.synthetic import demo_clip

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

    def report(self) -> dict:
        return {"source_note": "synthetic: generated frames with known targets (not real IR)"}


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

    def __init__(self, root: str | Path, limit: int | None = None, stride: int = 1):
        root = Path(root)
        super().__init__(str(root), "folder", False, None, limit)
        if root.is_file():
            self.files = [root]
        else:
            folder = root / "images" if (root / "images").is_dir() else root
            self.files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            self.files = self.files[::max(1, int(stride))]
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
    """A labelled dataset folder (edge.datasets layouts): frames plus their target points.

    In the clip layout (videos/ + labels/ + <split>.txt) every item carries its clip, so the run
    scores each clip and all of them; `stride` keeps every k-th frame of each clip; `fps` is the
    first clip's frame rate (for the annotated video).
    """

    def __init__(self, root: str | Path, split: str = "all", limit: int | None = None, stride: int = 1):
        from edge.datasets import open_dataset

        super().__init__(str(root), "dataset", True, None, limit)
        self.stride = max(1, int(stride))
        self.dataset = open_dataset(root, split=split, stride=self.stride)
        if len(self.dataset) == 0:
            raise DatasetError(f"{root}: split {split!r} has no frames; pass --split with a list that exists")
        self.clips = list(getattr(self.dataset, "clips", None) or [])
        if self.clips:
            self.kind, self.is_video = "clips", True
            self.fps = _video_fps(self.dataset.entries[0].image)

    @property
    def fps_out(self) -> float | None:
        return self.fps / self.stride if self.fps else None

    def __len__(self) -> int:
        return _cap(len(self.dataset), self.limit)

    def __iter__(self) -> Iterator[Item]:
        names = self.dataset.names
        clip_of = getattr(self.dataset, "clip_of", None) if self.clips else None
        for i in range(len(self)):
            clip = clip_of(i) if clip_of else None
            sample, ms = _timed_read(self.dataset.__getitem__, i)
            if isinstance(sample, Exception):
                yield Item(i, names[i], sample, None, ms, clip)
            else:
                gt = sample.points if sample.labelled else None
                yield Item(i, sample.name, sample.frame, gt, ms, clip)

    def report(self) -> dict:
        out = {"clips_listed": len(self.clips)} if self.clips else {}
        if self.stride > 1:
            out["frame_stride"] = self.stride
        return out


class DemoSource(DatasetSource):
    """The built-in real thermal clip (edge.demo, IR_DRONE_154), labelled: what runs with no --source."""

    def __init__(self, limit: int | None = None, stride: int = 1):
        from edge.demo import demo_root, demo_video

        super().__init__(demo_root(), "all", limit, stride)
        self.spec, self.kind = str(demo_video()), "demo"

    def report(self) -> dict:
        from edge.demo import demo_description

        return {**super().report(), "source_note": demo_description()}


def _video_fps(path: Path) -> float | None:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    finally:
        cap.release()
    return float(fps) if fps and 0 < fps < 1000 else None


VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".ts")
LIVE_KINDS = ("camera", "stream")


def open_source(spec: str | None, limit: int | None = None, split: str = "all", stride: int = 1,
                realtime: bool = False) -> Source:
    """None (the built-in clip) | 'synthetic' | DIR | IMAGE | VIDEO | 'camera:N' | URL | GStreamer pipeline.

    `stride` keeps every k-th frame; `realtime` (videos, cameras, streams only) reads through a
    grabber thread that keeps the newest frame and counts the ones it drops.
    """
    from edge.sources.capture import STREAM_PREFIXES, CaptureOptions, CaptureSource, capture_kind

    stride = 1 if stride is None else int(stride)
    if stride < 1:
        raise DatasetError(f"--frame-stride {stride}: must be >= 1 (1 keeps every frame)")
    path = Path(spec) if spec else None
    live = capture_kind(spec) if spec and not (path.exists() or spec == "synthetic") else None
    if realtime and not (live or (path and path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES)):
        raise DatasetError(f"--realtime needs a live source (camera:N, a stream URL or pipeline) or a video "
                           f"file, not {spec or 'the built-in clip'}; leave --realtime out to use every frame")
    if spec is None:
        return DemoSource(limit, stride)
    if spec == "synthetic":
        return SyntheticSource(limit)
    if live == "camera":
        idx = spec.split(":", 1)[1]
        device = int(idx) if idx.isdigit() else idx
        return CaptureSource(spec, device, "camera", CaptureOptions(limit, stride, realtime))
    if live == "stream":
        import cv2

        api = cv2.CAP_GSTREAMER if "!" in spec and not spec.lower().startswith(STREAM_PREFIXES) else None
        return CaptureSource(spec, spec, "stream", CaptureOptions(limit, stride, realtime, api=api))
    if path.is_dir():
        from edge.datasets import detect_format

        try:
            detect_format(path)
        except DatasetError:
            return FolderSource(path, limit, stride)
        return DatasetSource(path, split, limit, stride)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return FolderSource(path, limit)
        return CaptureSource(spec, str(path), "video", CaptureOptions(limit, stride, realtime))
    raise DatasetError(f"{spec}: no such folder, video or image; pass a folder, a video file, camera:N, a stream "
                       "URL (rtsp://, http://), a GStreamer pipeline, or synthetic (leave --source out for the "
                       "built-in clip)")


def __getattr__(name: str):  # CaptureSource lives in edge.sources.capture (which imports this module)
    if name == "CaptureSource":
        from edge.sources.capture import CaptureSource

        return CaptureSource
    raise AttributeError(f"module 'edge.sources' has no attribute {name!r}")


__all__ = ["Item", "Source", "SyntheticSource", "FolderSource", "DatasetSource", "DemoSource", "CaptureSource",
           "open_source", "FrameError", "VIDEO_SUFFIXES", "LIVE_KINDS"]
