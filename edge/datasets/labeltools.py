"""Labels from labelling tools (CVAT, Label Studio, COCO) into the project's layouts, checked, written whole.

Why: single-point supervision exists so a team can click its own targets in the tool it already
uses; each tool's export is read by its own module (edge.datasets.cvat, .labelstudio, .coco) into
`MediaLabels` (a video or image and its `Mark`s, one per target per frame, tracks already
interpolated), and this module does what every reader shares: find each video or image the export
names (`MediaFinder`), check every mark against the real file (a frame beyond the video, a point
outside the frame, NaN: one line naming the export and the entry), and write the dataset:

    video tasks  OUT/videos/NAME.mp4 + OUT/labels/NAME.csv (frame,cx,cy,w,h,cls) + OUT/<split>.txt
    image tasks  the spire-json layout: OUT/images/, OUT/annotations/annotations.json, OUT/img_idx/<split>.txt

Nothing is written half: the dataset is built in a temp folder beside OUT and renamed into place
at the end, and an OUT that already holds files is refused (convert never writes into a dataset).
Coordinates are taken as the tools give them (pixels; Label Studio percentages times the size):
the tools' pixel-corner vs. the project's pixel-centre convention differ by half a pixel, well
inside the match radius, and keeping them equal makes an export -> import round trip exact.

`Detection` / `PreLabels` are the other direction's shared shape: what `edge.run --labels-out`
hands each tool's writer (see edge.outputs.labels_out).
"""
from __future__ import annotations

import csv
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import DatasetError

from .video import VIDEO_SUFFIXES, clip_frame_count

__all__ = ["Mark", "MediaLabels", "MediaFinder", "VideoInfo", "Detection", "PreLabels", "interpolate",
           "check_out_name", "check_out_folder", "write_labels_dataset", "import_labels", "tool_function",
           "READERS", "WRITERS", "TOOLS", "BOX_PX", "FILE_SUFFIXES"]

TOOLS = ("cvat", "labelstudio", "coco")
BOX_PX = 8.0  # the box drawn around a detected point in pre-labels (the demo clip's drone boxes are 8-9 px)
FILE_SUFFIXES = (".json", ".xml", ".csv", ".txt", ".zip", ".tar", ".gz", ".yaml", ".yml", ".png", ".jpg",
                 *VIDEO_SUFFIXES)


@dataclass
class Mark:
    """One target on one frame (frame 0 for an image); `where` names the entry for error lines."""

    frame: int
    x: float
    y: float
    w: float | None = None
    h: float | None = None
    cls: str = "target"
    where: str = ""


@dataclass
class MediaLabels:
    """A video or an image named by an export (`src`), the file found for it and its marks."""

    name: str
    kind: str  # 'video' | 'image'
    src: Path
    path: Path
    width: int
    height: int
    frames: int = 1
    marks: list[Mark] = field(default_factory=list)


@dataclass
class VideoInfo:
    path: Path
    frames: int
    width: int
    height: int


class MediaFinder:
    """Find the files an export names in `folder` (--videos DIR, else the export's own folder).

    Tools store paths of their own (CVAT a task's file name, Label Studio `/data/upload/3/1a2b3c4d-x.mp4`),
    so a name is looked up as given, then by its base name, then (Label Studio uploads) without the
    8-hex-digit prefix the tool adds. Results are cached: a video is opened once.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._videos: dict[str, VideoInfo] = {}

    def find(self, name: str, src: Path, where: str) -> Path:
        name = str(name).replace("\\", "/").split("?d=")[-1]
        base = name.split("/")[-1]
        stem, dash, rest = base.partition("-")
        cands = [self.folder / name, self.folder / base]
        if dash and len(stem) == 8 and all(c in "0123456789abcdef" for c in stem.lower()):
            cands.append(self.folder / rest)
        for c in cands:
            if c.is_file():
                return c
        raise DatasetError(f"{src}: {where} names {name!r}, which is not in {self.folder}; "
                           "pass the folder holding it with --videos DIR")

    def video(self, name: str, src: Path, where: str) -> VideoInfo:
        path = self.find(name, src, where)
        if str(path) not in self._videos:
            import cv2

            cap = cv2.VideoCapture(str(path))
            try:
                w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
            finally:
                cap.release()
            n = clip_frame_count(path)
            if n <= 0 or w <= 0 or h <= 0:
                raise DatasetError(f"{src}: {where}: {path} cannot be opened as a video; re-encode it (H.264 MP4)")
            self._videos[str(path)] = VideoInfo(path, n, w, h)
        return self._videos[str(path)]

    def image_size(self, name: str, src: Path, where: str) -> tuple[Path, int, int]:
        import cv2

        path = self.find(name, src, where)
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None or img.size == 0:
            raise DatasetError(f"{src}: {where}: {path} cannot be read as an image")
        return path, int(img.shape[1]), int(img.shape[0])


def number(value, src: Path, where: str, what: str = "coordinate") -> float:
    """float(value), or a one-line DatasetError for text, NaN and infinities."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{src}: {where}: {what} {value!r} is not a number; fix the entry") from None
    if not math.isfinite(v):
        raise DatasetError(f"{src}: {where}: {what} is {value!r}; fix or delete the entry")
    return v


def interpolate(a: list[tuple], b: list[tuple], t: float) -> list[tuple]:
    """Linear interpolation of two equally long lists of number tuples (a's values when lengths differ)."""
    if len(a) != len(b):
        return list(a)
    return [tuple(p + (q - p) * t for p, q in zip(u, v)) for u, v in zip(a, b)]


def _check(m: MediaLabels) -> None:
    """One-line refusal of a mark the file cannot hold: a frame beyond the video, a point outside the frame."""
    for k in m.marks:
        if not (math.isfinite(k.x) and math.isfinite(k.y)):
            raise DatasetError(f"{m.src}: {k.where}: the point is not a number ({k.x}, {k.y}); fix the entry")
        if not 0 <= k.frame < m.frames:
            raise DatasetError(f"{m.src}: {k.where}: frame {k.frame} is beyond {m.path.name}, which has "
                               f"{m.frames} frames (0..{m.frames - 1}); check that the export belongs to this video")
        if not (-0.5 <= k.x <= m.width and -0.5 <= k.y <= m.height):
            raise DatasetError(f"{m.src}: {k.where}: point ({k.x:.2f}, {k.y:.2f}) lies outside the "
                               f"{m.width}x{m.height} frame of {m.path.name}; fix the entry or the video")


def check_out_name(out: Path, flag: str = "--out") -> None:
    """Refuse an OUT named like a file (points.json): convert writes folders, never a file of that name."""
    if out.suffix.lower() in FILE_SUFFIXES:
        raise DatasetError(f"{flag} {out}: names a file, but convert writes a dataset folder; pass a folder "
                           f"path such as {out.with_suffix('')}")


def check_out_folder(out: Path, flag: str = "--out") -> None:
    """Refuse an OUT that names a file or already holds files (one line, the fix named)."""
    check_out_name(out, flag)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{flag} {out}: is a file; pass a new folder for the dataset")
    if out.is_dir() and any(out.iterdir()):
        raise DatasetError(f"{flag} {out}: already holds files; pass a new (or empty) folder, convert never "
                           "writes into an existing dataset")


def _write_video(tmp: Path, items: list[MediaLabels]) -> list[str]:
    (tmp / "videos").mkdir()
    (tmp / "labels").mkdir()
    clips: dict[str, list[Mark]] = {}
    paths: dict[str, Path] = {}
    for m in items:
        stem = m.path.stem
        if stem in paths and paths[stem] != m.path:
            raise DatasetError(f"{m.src}: names {m.path} but another export names {paths[stem]}, with the same "
                               "clip name; rename one video")
        paths[stem] = m.path
        clips.setdefault(stem, []).extend(m.marks)
    for stem, marks in clips.items():
        shutil.copy2(paths[stem], tmp / "videos" / f"{stem}{paths[stem].suffix.lower()}")
        with open(tmp / "labels" / f"{stem}.csv", "w", newline="", encoding="utf-8") as f:
            wr = csv.writer(f)
            wr.writerow(["frame", "cx", "cy", "w", "h", "cls"])
            for k in sorted(marks, key=lambda k: (k.frame, k.x, k.y)):
                wr.writerow([k.frame, f"{k.x:.2f}", f"{k.y:.2f}", "" if k.w is None else f"{k.w:.1f}",
                             "" if k.h is None else f"{k.h:.1f}", k.cls])
    return list(clips)


def _write_images(tmp: Path, items: list[MediaLabels], split: str) -> list[str]:
    import numpy as np

    from edge.frames import read_frame

    from .convert import write_spire_json
    from .core import Sample

    samples, seen = [], {}
    for m in items:
        if m.path.stem in seen and seen[m.path.stem] != m.path:
            raise DatasetError(f"{m.src}: {m.path} and {seen[m.path.stem]} have the same name; rename one image")
        seen[m.path.stem] = m.path
        pts = np.asarray([(k.x, k.y) for k in m.marks], np.float32).reshape(-1, 2)
        samples.append(Sample(m.path.stem, m.path, read_frame(m.path), pts))
    write_spire_json(samples, tmp, split=split, copy_masks=False)
    return [s.name for s in samples]


def write_labels_dataset(items: list[MediaLabels], out, split: str = "train") -> str:
    """Check every mark, write the dataset into a temp folder beside `out`, rename it into place.

    Returns a one-line summary for the command to print.
    """
    out = Path(out)
    check_out_folder(out)
    if not items:
        raise DatasetError(f"{out}: the export holds no video or image; nothing to write")
    kinds = {m.kind for m in items}
    if len(kinds) > 1:
        raise DatasetError(f"{items[0].src}: the exports mix video and image tasks; convert each kind into "
                           "its own folder")
    for m in items:
        _check(m)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        if kinds == {"video"}:
            names = _write_video(tmp, items)
            (tmp / f"{split}.txt").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
        else:
            names = _write_images(tmp, items, split)
        from edge.fileperm import chmod_new_dir

        chmod_new_dir(tmp)
        if out.is_dir():
            out.rmdir()  # empty (checked above); rename needs the name free
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    n_marks = sum(len(m.marks) for m in items)
    frames = len({(m.path, k.frame) for m in items for k in m.marks})
    what = "clip" if kinds == {"video"} else "image"
    return (f"{out}: {len(names)} {what}(s), {n_marks} labelled points on {frames} frames "
            f"({'video' if what == 'clip' else 'spire-json'} layout, list {split})")


@dataclass
class Detection:
    """One point the model reported on one frame (`track` set with --track)."""

    frame: int
    x: float
    y: float
    score: float
    track: int | None = None


@dataclass
class PreLabels:
    """The detections of one video or image, as a writer needs them (size, frame count, fps)."""

    name: str  # the file name the tool knows (NAME.mp4, frame.png)
    kind: str  # 'video' | 'image'
    width: int
    height: int
    frames: int = 1
    fps: float = 30.0
    stride: int = 1  # the run's --frame-stride: a track seen every `stride` frames has no gap
    detections: list[Detection] = field(default_factory=list)
    seen: list[int] = field(default_factory=list)  # frames processed (with or without detections)


READERS = {"cvat": "edge.datasets.cvat:read_cvat", "labelstudio": "edge.datasets.labelstudio:read_labelstudio",
           "coco": "edge.datasets.coco:read_coco"}
WRITERS = {"cvat": "edge.datasets.cvat:write_cvat", "labelstudio": "edge.datasets.labelstudio:write_labelstudio",
           "coco": "edge.datasets.coco:write_coco"}


def tool_function(table: dict, tool: str):
    """The reader or writer of `tool` (each tool's module imports this one, so they are named here)."""
    import importlib

    if tool not in table:
        raise DatasetError(f"unknown labelling tool {tool!r}; use one of {', '.join(TOOLS)}")
    mod, fn = table[tool].split(":")
    return getattr(importlib.import_module(mod), fn)


def import_labels(src, tool: str, out, media=None, split: str = "train") -> str:
    """`convert SRC --from TOOL --out OUT [--videos DIR]`: read the export, check it, write the dataset."""
    src, out = Path(src), Path(out)
    check_out_folder(out)  # before reading (and decoding) anything
    if not src.exists():
        raise DatasetError(f"{src}: no such file or folder; pass the {tool} export")
    folder = Path(media) if media else (src if src.is_dir() else src.parent)
    if not folder.is_dir():
        raise DatasetError(f"--videos {folder}: no such folder; pass the folder holding the videos or images")
    items = tool_function(READERS, tool)(src, MediaFinder(folder))
    return write_labels_dataset(items, out, split)
