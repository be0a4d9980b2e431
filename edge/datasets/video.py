"""The video-clip layout: labelled IR clips read frame by frame as `Sample`s (OpenCV decode).

    ROOT/videos/NAME.mp4      (or .avi/.mkv/.mov) one clip each
    ROOT/labels/NAME.csv      frame,cx,cy[,w,h,cls]: 0-based frame index, target centre in pixels
    ROOT/<split>.txt          clip names, one a line (split by clip, never by frame)

Why a layout of its own: thermal video is what a camera on a mast or a drone gives, and it is
labelled per frame with a point (a box centre), not per image with a mask. Each frame becomes a
sample named `CLIP#NNNNNN` (the same name `edge.sources` gives video frames), so training,
evaluation and the runtime report and score video exactly as they do image folders.

Neighbouring frames are near-duplicates at 30 fps, so `stride` keeps every k-th frame of each
clip (training and validation use 10; the runtime scores every frame). A frame with no label row
is labelled target-free, as the dataset's README defines it. Reading in order decodes each clip
once, in one pass (the last clips stay cached); a jump to another clip (calibration and shuffled
training draw frames at random) seeks to that one frame instead of decoding the whole clip. A
frame the file cannot deliver (a truncated or corrupt clip) raises a one-line `FrameError` that
callers skip and count.
"""
from __future__ import annotations

import csv
import math
from collections import OrderedDict, defaultdict
from pathlib import Path

import cv2
import numpy as np

from edge.errors import DatasetError, FrameError

from .core import Dataset, Entry

__all__ = ["VIDEO_SUFFIXES", "bgr_to_frame", "is_video_layout", "read_point_labels", "clip_frame_count",
           "label_range_counts", "label_range_message", "clip_geometry", "decode_frames", "seek_frame",
           "VideoDataset", "open_video_dataset", "split_clip_name"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm")
_CACHED_CLIPS = 2


def is_video_layout(root: Path) -> bool:
    """True for a folder with videos/ and labels/ (the ir-drone layout)."""
    return (root / "videos").is_dir() and (root / "labels").is_dir()


def split_clip_name(name: str) -> tuple[str, int]:
    """'CLIP#000123' -> ('CLIP', 123)."""
    clip, _, idx = str(name).rpartition("#")
    if not clip or not idx.isdigit():
        raise ValueError(f"{name!r} is not a video frame name (CLIP#NNNNNN)")
    return clip, int(idx)


def _label_row(row: dict) -> tuple[int, float, float]:
    """(frame, cx, cy) of one CSV row; ValueError unless frame is a whole number >= 0 and cx, cy finite."""
    frame, cx, cy = int(row["frame"]), float(row["cx"]), float(row["cy"])
    if frame < 0 or not (math.isfinite(cx) and math.isfinite(cy)):
        raise ValueError("out of range")
    return frame, cx, cy


def read_point_labels(path: Path) -> dict[int, np.ndarray]:
    """frame index -> float32 (N, 2) target centres from a `frame,cx,cy,...` CSV.

    A row that cannot be a target (frame not a whole number >= 0, cx or cy not a finite number:
    `abc`, `7.5`, `nan`, `inf`) is refused with the file, line and row: a NaN centre used to be
    scored as a target no detection can match and crashed the overlay drawing. A UTF-8 byte-order
    mark (Excel's "CSV UTF-8") is read as such, not as part of the first column's name.
    """
    out: dict[int, list] = defaultdict(list)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = csv.DictReader(f)
            missing = {"frame", "cx", "cy"} - {(n or "").strip() for n in rows.fieldnames or []}
            if missing:
                raise DatasetError(f"{path}: label file has no {', '.join(sorted(missing))} column; "
                                   "expected a header frame,cx,cy[,w,h,cls]")
            rows.fieldnames = [(n or "").strip() for n in rows.fieldnames]
            for k, row in enumerate(rows, start=2):
                try:
                    frame, cx, cy = _label_row(row)
                except (TypeError, ValueError):
                    raise DatasetError(f"{path}:{k}: unreadable label row {row!r}; fix the line (frame is a whole "
                                       "number >= 0, cx and cy are finite numbers)") from None
                out[frame].append((cx, cy))
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not a UTF-8 text file ({e.reason}); save the labels as UTF-8 CSV") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read the label file ({e.strerror or e})") from None
    return {k: np.asarray(v, np.float32).reshape(-1, 2) for k, v in out.items()}


def label_range_counts(labels: dict[int, np.ndarray], n_frames: int, hw: tuple[int, int] | None) -> tuple[int, int]:
    """(points outside the W x H frame, points on frames at or beyond `n_frames`); 0 / None skip a check."""
    outside = beyond = 0
    for k, pts in labels.items():
        if n_frames and k >= n_frames:
            beyond += len(pts)
        elif hw and len(pts):
            h, w = hw
            outside += int(((pts[:, 0] < 0) | (pts[:, 1] < 0) | (pts[:, 0] > w) | (pts[:, 1] > h)).sum())
    return outside, beyond


def label_range_message(where, outside: int, beyond: int) -> str | None:
    """The ONE warning line for label points no detection can match (None when there are none)."""
    if not outside and not beyond:
        return None
    parts = [f"{outside} label point(s) outside their frame"] if outside else []
    parts += [f"{beyond} on frame indices beyond the video's last frame"] if beyond else []
    return (f"{where}: {' and '.join(parts)}; kept (they count as missed targets when scored): fix the "
            "label file")


def clip_geometry(path: Path) -> tuple[int, tuple[int, int] | None]:
    """(frames the container declares, (H, W) or None) without decoding."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0, None
        h, w = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), ((h, w) if h > 0 and w > 0 else None)
    finally:
        cap.release()


def clip_frame_count(path: Path) -> int:
    """Frames the container says the clip has (0 when OpenCV cannot open it)."""
    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
    finally:
        cap.release()


def bgr_to_frame(bgr: np.ndarray) -> np.ndarray:
    """A decoded (BGR) video frame as edge frames are: grey when the clip is grey (thermal), else RGB.

    The one rule for every video frame (clip folders here, video files and cameras in edge.sources.capture),
    so a clip scores the same read as a file or from a clip folder.
    """
    if bgr.ndim == 2:
        return bgr
    b, g, r = bgr[:, :, 0], bgr[:, :, 1], bgr[:, :, 2]
    if np.array_equal(b, g) and np.array_equal(g, r):
        return np.ascontiguousarray(g)
    if max(float(np.abs(b.astype(np.int16) - g).mean()), float(np.abs(g.astype(np.int16) - r).mean())) < 6.0:
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)  # a grey clip whose codec added a little chroma
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def seek_frame(path: Path, index: int) -> np.ndarray | None:
    """One frame by seeking (OpenCV/FFmpeg decodes from the keyframe before it), or None."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened() or not cap.set(cv2.CAP_PROP_POS_FRAMES, int(index)):
            return None
        ok, fr = cap.read()
        return bgr_to_frame(fr) if ok and fr is not None else None
    finally:
        cap.release()


def decode_frames(path: Path, wanted: set[int] | None = None) -> dict[int, np.ndarray]:
    """index -> frame for the frames of `wanted` (all when None), in one sequential pass.

    Frames not wanted are only grabbed (demuxed), not converted; decoding stops at the last
    wanted index or where the file ends or breaks.
    """
    cap = cv2.VideoCapture(str(path))
    out: dict[int, np.ndarray] = {}
    try:
        if not cap.isOpened():
            return out
        last = max(wanted) if wanted else None
        i = 0
        while last is None or i <= last:
            if wanted is None or i in wanted:
                ok, fr = cap.read()
                if not ok or fr is None:
                    break
                out[i] = bgr_to_frame(fr)
            elif not cap.grab():
                break
            i += 1
    finally:
        cap.release()
    return out


class VideoDataset(Dataset):
    """Frames of labelled clips (format 'video'); `clips` lists the clips, `clip_of(i)` sample i's."""

    def __post_init__(self):
        super().__post_init__()
        self._cache: OrderedDict[str, dict[int, np.ndarray]] = OrderedDict()
        self._wanted: dict[str, set[int]] = defaultdict(set)
        for e in self.entries:
            self._wanted[e.clip].add(e.frame_index)
        self._last = -1
        self.printed: set[str] = set()  # problems already shown as one plain stderr line

    @property
    def clips(self) -> list[str]:
        return list(dict.fromkeys(e.clip for e in self.entries))

    def clip_of(self, i: int) -> str:
        return self.entries[i].clip

    def _clip_frames(self, e: Entry) -> dict[int, np.ndarray]:
        got = self._cache.get(e.clip)
        if got is None:
            got = decode_frames(e.image, self._wanted[e.clip])
            self._cache[e.clip] = got
            while len(self._cache) > _CACHED_CLIPS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(e.clip)
        return got

    def __getitem__(self, i: int):
        from .core import Sample

        e = self.entries[i]
        in_order = e.clip in self._cache or i in (self._last + 1, 0)
        self._last = i
        frame = (self._clip_frames(e) if in_order else {e.frame_index: seek_frame(e.image, e.frame_index)}
                 ).get(e.frame_index)
        if frame is None:
            raise FrameError(f"{e.name}: frame {e.frame_index} could not be decoded from {e.image} "
                             "(truncated or corrupt clip); re-encode or re-copy the video")
        pts = e.points if e.points is not None else np.zeros((0, 2), np.float32)
        return Sample(e.name, e.image, frame, np.asarray(pts, np.float32).reshape(-1, 2), None, None, True)


def _video_index(folder: Path) -> dict[str, Path]:
    rank = {s: k for k, s in enumerate(VIDEO_SUFFIXES)}
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        s = p.suffix.lower()
        if s in rank and (p.stem not in out or rank[s] < rank[out[p.stem].suffix.lower()]):
            out[p.stem] = p
    return out


def open_video_dataset(root: Path, names: list[str] | None, stride: int = 1, problems: list[str] | None = None,
                       split: str = "all", centroid: str = "geometric") -> VideoDataset:
    """A `VideoDataset` of the clips `names` (all clips when None), every `stride`-th frame."""
    stride = int(stride)
    if stride < 1:
        raise DatasetError(f"{root}: frame stride {stride} must be >= 1 (1 keeps every frame)")
    problems = problems if problems is not None else []
    videos = _video_index(root / "videos")
    names = list(videos) if names is None else list(dict.fromkeys(names))
    entries, no_video, no_label, unreadable = [], [], [], []
    outside = beyond = 0
    for clip in names:
        vid = videos.get(clip)
        if vid is None:
            no_video.append(clip)
            continue
        lab = root / "labels" / f"{clip}.csv"
        if not lab.is_file():
            no_label.append(clip)
            continue
        labels = read_point_labels(lab)
        n, hw = clip_geometry(vid)
        if n <= 0:
            unreadable.append(clip)
            continue
        o, b = label_range_counts(labels, n, hw)
        outside, beyond = outside + o, beyond + b
        for k in range(0, n, stride):
            pts = labels.get(k, np.zeros((0, 2), np.float32))
            entries.append(Entry(f"{clip}#{k:06d}", vid, None, pts, None, True, clip, k))
    for what, lst in (("with no video in videos/", no_video), ("with no labels/NAME.csv", no_label),
                      ("that OpenCV cannot open", unreadable)):
        if lst:
            shown = ", ".join(lst[:5]) + (", ..." if len(lst) > 5 else "")
            problems.append(f"{root}: {len(lst)} listed clip(s) {what}, skipped: {shown}")
    ds = VideoDataset(root, "video", str(split), entries, centroid, problems)
    msg = label_range_message(f"{root}/labels", outside, beyond)
    if msg:  # one plain line (no Python warning with a source line), as for a rescaled mask
        import sys

        problems.append(msg)
        ds.printed.add(msg)
        print(f"warning: {msg}", file=sys.stderr)
    return ds
