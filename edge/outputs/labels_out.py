"""`edge.run --labels-out cvat|labelstudio|coco`: the run's points as pre-labels a labelling tool imports.

Why: single-point labels exist so people label fast; faster still is correcting what the model
proposes. `LabelsOut` wraps the run's `edge.outputs.RunWriter` (every call passes through), notes
each processed frame's points (with --track the tracks' ids) and, when the run closes, writes
`OUT/labels_cvat.xml`, `OUT/labels_labelstudio.json` or `OUT/labels_coco.json` through the tool's
writer in edge.datasets (cvat, labelstudio, coco), the same modules that read the tool's exports
back (`python -m edge.datasets convert OUT/labels_cvat.xml --from cvat --videos DIR --out DS`).
Several CVAT tasks (one per video of a clip folder) go to `OUT/labels_cvat/NAME.xml`.

Frames are tied to their files by name: a video frame is `CLIP#NNNNNN` (frame NNNNNN of the clip's
video), an image frame its file. Live sources (cameras, streams) and synthetic frames have no file
a tool could show, so they are refused with one line.
"""
from __future__ import annotations

from pathlib import Path

from edge.datasets.labeltools import WRITERS, Detection, PreLabels, tool_function
from edge.datasets.video import VIDEO_SUFFIXES, clip_frame_count, split_clip_name
from edge.errors import DatasetError
from edge.io import atomic_write

__all__ = ["LabelsOut", "SUFFIX"]

SUFFIX = {"cvat": ".xml", "labelstudio": ".json", "coco": ".json"}


def _source_files(source) -> dict[str, Path]:
    """name or clip -> file, from what the source knows (dataset entries, a video file)."""
    out: dict[str, Path] = {}
    ds = getattr(source, "dataset", None)
    for e in getattr(ds, "entries", None) or []:
        out[e.clip or e.name] = Path(e.image)
    spec = Path(str(getattr(source, "spec", "")))
    if spec.is_file():
        out.setdefault(spec.stem, spec)
        out.setdefault(spec.name, spec)
    return out


class LabelsOut:
    """A RunWriter that also collects the points for `tool`'s pre-label file (written on close)."""

    def __init__(self, writer, tool: str, source, stride: int = 1):
        tool_function(WRITERS, tool)  # an unknown tool fails before the run
        if writer.dir is None:
            raise DatasetError(f"--labels-out {tool} needs --save OUT: the label file is written into OUT")
        if getattr(source, "kind", "") in ("camera", "stream", "synthetic"):
            raise DatasetError(f"--labels-out {tool}: a {source.kind} source has no file a labelling tool could "
                               "show; record a video and pass it (or a folder of images) as --source")
        self._writer, self.tool, self.stride = writer, tool, max(1, int(stride or 1))
        self._files = _source_files(source)
        self._root = Path(str(source.spec)) if Path(str(source.spec)).is_dir() else None
        self._media: dict[Path, PreLabels] = {}
        self.written: list[Path] = []

    def __getattr__(self, name):  # everything else is the RunWriter's
        return getattr(self._writer, name)

    def _file(self, key: str, video: bool) -> Path:
        if key in self._files:
            return self._files[key]
        if self._root is not None:
            cands = [self._root / key] if not video else \
                [p for p in sorted(self._root.rglob(f"{key}.*")) if p.suffix.lower() in VIDEO_SUFFIXES]
            if cands and cands[0].is_file():
                self._files[key] = cands[0]
                return cands[0]
        raise DatasetError(f"--labels-out {self.tool}: cannot tell which file frame {key!r} comes from; "
                           "pass a video file or a folder of videos or images as --source")

    def frame(self, frame_id: int, name: str, pts, timings: dict, image=None, gt=None, extra=None) -> None:
        self._writer.frame(frame_id, name, pts, timings, image, gt, extra=extra)
        try:
            clip, idx = split_clip_name(name)
            path, kind = self._file(clip, True), "video"
        except ValueError:
            path, idx, kind = self._file(name, False), 0, "image"
        p = self._media.get(path)
        if p is None:
            h, w = image.shape[:2] if image is not None else (0, 0)
            p = self._media[path] = PreLabels(path.name, kind, int(w), int(h), stride=self.stride)
        p.seen.append(idx)
        for d in pts.to_list():
            tid = d.get("id")
            p.detections.append(Detection(idx, float(d["x"]), float(d["y"]), float(d["score"]),
                                          None if tid is None else int(tid)))

    def _finish_videos(self) -> None:
        import cv2

        for path, p in self._media.items():
            if p.kind == "video":
                p.frames = max(clip_frame_count(path), max(p.seen, default=0) + 1)
                cap = cv2.VideoCapture(str(path))
                fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0
                cap.release()
                p.fps = float(fps) if fps and 0 < fps < 1000 else 30.0

    def close(self) -> None:
        """Close the run's files, then write the pre-label file(s)."""
        self._writer.close()
        if not self._media:
            return
        self._finish_videos()
        texts = tool_function(WRITERS, self.tool)(list(self._media.values()))
        base = self._writer.dir / f"labels_{self.tool}"
        if len(texts) == 1:
            self.written = [atomic_write(base.with_suffix(SUFFIX[self.tool]), next(iter(texts.values())))]
        else:
            self.written = [atomic_write(base / f"{k}{SUFFIX[self.tool]}", t) for k, t in texts.items()]

    def files(self) -> list[str]:
        names = self._writer.files()
        one = f"labels_{self.tool}{SUFFIX[self.tool]}"
        return names + ([one] if len(self.written) <= 1 else [f"labels_{self.tool}/"])
