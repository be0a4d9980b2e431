"""Label Studio JSON in (`convert --from labelstudio`) and out (`edge.run --labels-out labelstudio`).

Why Label Studio: the other labelling tool teams run themselves; its JSON export is a list of
tasks, each with `data` (the image or video it shows) and `annotations[].result` (or, for
pre-annotations, `predictions[].result`). Read as Label Studio stores regions (labelstud.io,
"Export annotations", tags KeyPointLabels, RectangleLabels, VideoRectangle):

- image results: `keypointlabels` / `keypoint` (x, y) and `rectanglelabels` / `rectangle` (x, y
  top-left, width, height, rotation in degrees about the top-left corner): all in percent of the
  image (`original_width` / `original_height`, else the image file's size), converted to pixels.
- video results: `videorectangle`, `value.sequence` of keyframes {frame (1-based), enabled, x, y,
  width, height}: between two keyframes the box is interpolated linearly; a keyframe with
  `enabled: false` is the region's last frame until its next keyframe; after an enabled last
  keyframe the region lasts to the end of the video, as the editor shows it.
- the first annotation that was not cancelled is read; a task with none falls back to its first
  prediction, so a pre-label file written here imports back.

Labeling configs the writer's pre-labels match (the `from_name` / `to_name` below):

    images  <Image name="image" value="$image"/>
            <KeyPointLabels name="kp" toName="image"><Label value="target"/></KeyPointLabels>
    videos  <Video name="video" value="$video"/><VideoRectangle name="box" toName="video"/>
            <Labels name="videoLabels" toName="video"><Label value="target"/></Labels>

`data.image` / `data.video` hold the file name: point them at where Label Studio serves the files
(e.g. `/data/local-files/?d=...`) before importing.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from edge.errors import DatasetError

from .labeltools import BOX_PX, Mark, MediaFinder, MediaLabels, PreLabels, interpolate, number
from .video import VIDEO_SUFFIXES

__all__ = ["read_labelstudio", "write_labelstudio"]

POINT_TYPES = ("keypointlabels", "keypoint")
RECT_TYPES = ("rectanglelabels", "rectangle")


def _tasks(src: Path) -> list[tuple[Path, dict]]:
    files = sorted(src.glob("*.json")) if src.is_dir() else [src]
    if not files or not files[0].is_file():
        raise DatasetError(f"{src}: no Label Studio JSON export there; pass the JSON file (Export -> JSON)")
    out = []
    for f in files:
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DatasetError(f"{f}: not readable JSON ({e}); pass a Label Studio JSON export") from None
        data = [data] if isinstance(data, dict) else data
        if not isinstance(data, list) or not all(isinstance(t, dict) and "data" in t for t in data):
            raise DatasetError(f"{f}: not a Label Studio JSON export (a list of tasks with 'data'); "
                               "export with 'JSON', not 'JSON-MIN' or CSV")
        out += [(f, t) for t in data]
    return out


def _results(task: dict) -> list[dict]:
    for key in ("annotations", "completions", "predictions"):
        for ann in task.get(key) or []:
            if isinstance(ann, dict) and not ann.get("was_cancelled"):
                return list(ann.get("result") or [])
    return []


def _media_name(task: dict, src: Path, where: str) -> tuple[str, str]:
    """(file name, 'video'|'image') of a task's data."""
    data = task["data"]
    for key, kind in (("video", "video"), ("image", "image"), ("img", "image")):
        if isinstance(data.get(key), str):
            return data[key], kind
    for v in data.values():
        if isinstance(v, str) and Path(v.split("?")[0]).suffix:
            return v, "video" if Path(v).suffix.lower() in VIDEO_SUFFIXES else "image"
    raise DatasetError(f"{src}: {where}: data names no image or video ({sorted(data)}); fix the task")


def _centre(v: dict, W: float, H: float, src: Path, where: str) -> tuple[float, float, float, float]:
    """(cx, cy, w, h) in pixels of a rectangle value in percent (rotation about the top-left corner)."""
    x, y, w, h = (number(v.get(k, 0), src, where, k) for k in ("x", "y", "width", "height"))
    x, y, w, h = x * W / 100, y * H / 100, w * W / 100, h * H / 100
    a = math.radians(number(v.get("rotation", 0) or 0, src, where, "rotation"))
    cx = x + (w / 2) * math.cos(a) - (h / 2) * math.sin(a)
    cy = y + (w / 2) * math.sin(a) + (h / 2) * math.cos(a)
    return cx, cy, w, h


def _label(v: dict) -> str:
    for k in ("keypointlabels", "rectanglelabels", "labels"):
        if v.get(k):
            return str(v[k][0])
    return "target"


def _image_marks(results: list[dict], W: int, H: int, src: Path, where: str) -> list[Mark]:
    out = []
    for i, r in enumerate(results):
        v, t, w_ = r.get("value") or {}, r.get("type"), f"{where} result {i} ({r.get('type')})"
        sw, sh = r.get("original_width") or W, r.get("original_height") or H
        if t in POINT_TYPES:
            x, y = number(v.get("x"), src, w_) * sw / 100, number(v.get("y"), src, w_) * sh / 100
            out.append(Mark(0, x * W / sw, y * H / sh, None, None, _label(v), w_))
        elif t in RECT_TYPES:
            cx, cy, bw, bh = _centre(v, sw, sh, src, w_)
            out.append(Mark(0, cx * W / sw, cy * H / sh, bw, bh, _label(v), w_))
    return out


def _sequence_marks(r: dict, n: int, W: int, H: int, src: Path, where: str) -> list[Mark]:
    """Every frame of one videorectangle region (see the module docstring for the rule)."""
    v = r.get("value") or {}
    seq = []
    for k in v.get("sequence") or []:
        w_ = f"{where} frame {k.get('frame')}"
        f = int(number(k.get("frame"), src, w_, "frame")) - 1  # Label Studio counts frames from 1
        seq.append((f, bool(k.get("enabled", True)), _centre(k, W, H, src, w_), w_))
    seq.sort(key=lambda s: s[0])
    out, label = [], _label(v)
    for i, (f, enabled, box, w_) in enumerate(seq):
        out.append(Mark(f, box[0], box[1], box[2], box[3], label, w_))
        if not enabled:
            continue
        nxt = seq[i + 1] if i + 1 < len(seq) else None
        for g in range(f + 1, nxt[0] if nxt else max(n, f + 1)):
            b = interpolate([box], [nxt[2]], (g - f) / (nxt[0] - f))[0] if nxt else box
            out.append(Mark(g, b[0], b[1], b[2], b[3], label, f"{where} frame {g + 1} (interpolated)"))
    return out


def read_labelstudio(src, finder: MediaFinder) -> list[MediaLabels]:
    """Every task of a Label Studio JSON export (a file or a folder of them) with its marks."""
    items = []
    for i, (f, task) in enumerate(_tasks(Path(src))):
        where = f"task {task.get('id', i)}"
        name, kind = _media_name(task, f, where)
        results = _results(task)
        if kind == "video" or any(r.get("type") == "videorectangle" for r in results):
            info = finder.video(name, f, where)
            m = MediaLabels(name, "video", f, info.path, info.width, info.height, info.frames)
            for j, r in enumerate(results):
                if r.get("type") == "videorectangle":
                    m.marks += _sequence_marks(r, info.frames, info.width, info.height, f, f"{where} result {j}")
        else:
            path, w, h = finder.image_size(name, f, where)
            m = MediaLabels(name, "image", f, path, w, h)
            m.marks = _image_marks(results, w, h, f, where)
        items.append(m)
    return items


def _pct(v: float, size: int) -> float:
    return round(100.0 * v / size, 6)


def _video_result(p: PreLabels) -> list[dict]:
    """One videorectangle per track (else per detection), ended with `enabled: false` where it is not seen."""
    groups: dict = {}
    for k, d in enumerate(p.detections):
        groups.setdefault(("t", d.track) if d.track is not None else ("d", k), []).append(d)
    out = []
    for n, dets in enumerate(sorted(groups.values(), key=lambda ds: min(d.frame for d in ds))):
        dets = sorted(dets, key=lambda d: d.frame)
        seq = []
        for i, d in enumerate(dets):
            nxt = dets[i + 1].frame if i + 1 < len(dets) else None
            seq.append({"frame": d.frame + 1, "enabled": nxt is not None and nxt - d.frame <= p.stride,
                        "x": _pct(d.x - BOX_PX / 2, p.width), "y": _pct(d.y - BOX_PX / 2, p.height),
                        "width": _pct(BOX_PX, p.width), "height": _pct(BOX_PX, p.height), "rotation": 0,
                        "time": round(d.frame / p.fps, 4)})
        out.append({"id": f"r{n}", "from_name": "box", "to_name": "video", "type": "videorectangle",
                    "origin": "prediction", "score": round(max(d.score for d in dets), 4),
                    "value": {"framesCount": p.frames, "duration": round(p.frames / p.fps, 4),
                              "sequence": seq, "labels": ["target"]}})
    return out


def write_labelstudio(items: list[PreLabels]) -> dict[str, str]:
    """{'tasks': JSON text}: one task per video or image, the detections as its prediction."""
    tasks = []
    for p in items:
        if p.kind == "video":
            result = _video_result(p)
        else:
            result = [{"id": f"r{k}", "from_name": "kp", "to_name": "image", "type": "keypointlabels",
                       "original_width": p.width, "original_height": p.height, "image_rotation": 0,
                       "score": round(d.score, 4),
                       "value": {"x": _pct(d.x, p.width), "y": _pct(d.y, p.height),
                                 "width": _pct(BOX_PX / 4, p.width), "keypointlabels": ["target"]}}
                      for k, d in enumerate(p.detections)]
        score = max((r["score"] for r in result), default=0.0)
        tasks.append({"data": {p.kind: p.name},
                      "predictions": [{"model_version": "spire-edge", "score": score, "result": result}]})
    return {"tasks": json.dumps(tasks, indent=1) + "\n"}
