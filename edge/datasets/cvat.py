"""CVAT 1.1 XML in (`convert --from cvat`) and out (`edge.run --labels-out cvat`).

Why CVAT: it is the open labelling tool most IR teams run themselves, and its video mode makes a
point-per-frame label cheap: click the target on a few keyframes, CVAT interpolates between them.
Read as CVAT defines it (docs.cvat.ai, "XML annotation format", version 1.1):

- video tasks ("CVAT for video"): `<track>`s of shapes with `frame`, `keyframe`, `outside`. Between
  two shapes of a track the position is interpolated linearly (an export lists every frame, a
  hand-written file may list keyframes only); `outside="1"` ends the track until its next shape;
  after its last shape a track lasts to the end of the video, as in CVAT. The video is the one
  `<meta><task><source>` names (else the task name), found in --videos DIR.
- image tasks ("CVAT for images"): `<image name width height>` holding shapes; an `<image>` of a
  video task (a video exported "for images") is frame `id` of that video.
- shapes: `<points points="x,y;x,y">` (each point a target) and `<box xtl ytl xbr ybr>` (its
  centre); other shapes (polygons, masks, tags) are not point labels and are skipped.

SRC is one XML (or CVAT's zip holding annotations.xml) or a folder of them (one task each, as
CVAT exports a task). The writer emits a
video task's `<track>`s (with --track one per track, else CVAT's single-frame tracks: the shape,
then `outside` on the next frame) or an image task's `<image>`s, `source="auto"`, label `target`.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import quoteattr

from edge.errors import DatasetError

from .labeltools import Mark, MediaFinder, MediaLabels, PreLabels, interpolate, number
from .video import VIDEO_SUFFIXES

__all__ = ["read_cvat", "write_cvat"]


def _xml_files(src: Path) -> list[Path]:
    if src.is_dir():
        files = sorted([*src.glob("*.xml"), *src.glob("*.zip")])
        if not files:
            raise DatasetError(f"{src}: holds no .xml file; pass a CVAT 1.1 XML export or a folder of them")
        return files
    if not src.is_file():
        raise DatasetError(f"{src}: no such file or folder; pass a CVAT 1.1 XML export (annotations.xml)")
    return [src]


def _shape_points(el: ET.Element, src: Path, where: str) -> tuple[list[tuple], float | None, float | None]:
    """[(x, y), ...] of a <points> or the centre of a <box>, plus the box size (None for points)."""
    if el.tag == "box":
        x0, y0, x1, y1 = (number(el.get(a), src, where, a) for a in ("xtl", "ytl", "xbr", "ybr"))
        return [((x0 + x1) / 2, (y0 + y1) / 2)], abs(x1 - x0), abs(y1 - y0)
    out = []
    for pair in (el.get("points") or "").split(";"):
        if pair.strip():
            xy = pair.split(",")
            if len(xy) != 2:
                raise DatasetError(f"{src}: {where}: points={el.get('points')!r} is not 'x,y;x,y'; fix the entry")
            out.append((number(xy[0], src, where), number(xy[1], src, where)))
    return out, None, None


SHAPES = ("points", "box")


def _marks(pts, w, h, frame: int, label: str, where: str) -> list[Mark]:
    return [Mark(frame, x, y, w, h, label, where) for x, y in pts]


def _track_marks(track: ET.Element, n_frames: int, src: Path) -> list[Mark]:
    """Every frame of one track: its shapes, linear interpolation between them, `outside` gaps, the tail."""
    label, tid = track.get("label") or "target", track.get("id", "?")
    shapes = []
    for el in track:
        if el.tag in SHAPES:
            where = f"track {tid} <{el.tag} frame={el.get('frame')!r}>"
            f = number(el.get("frame"), src, where, "frame")
            pts, w, h = _shape_points(el, src, where)
            box = (w, h) if w is not None else None
            shapes.append((int(f), el.get("outside") == "1", pts, box, where))
    shapes.sort(key=lambda s: s[0])
    out: list[Mark] = []
    for i, (f, outside, pts, box, where) in enumerate(shapes):
        if outside:
            continue
        nxt = shapes[i + 1] if i + 1 < len(shapes) else None
        end = nxt[0] if nxt else max(n_frames, f + 1)  # a last shape lasts to the video's end
        w, h = box if box else (None, None)
        out += _marks(pts, w, h, f, label, where)
        for g in range(f + 1, end):
            if nxt is not None and not nxt[1]:  # between two shapes: CVAT's linear interpolation
                t = (g - f) / (nxt[0] - f)
                p = interpolate(pts, nxt[2], t)
                bw, bh = (interpolate([box], [nxt[3]], t)[0] if box and nxt[3] else (w, h))
            else:
                p, bw, bh = pts, w, h
            out += _marks(p, bw, bh, g, label, f"track {tid} frame {g} (interpolated)")
    return out


def _task_media(root: ET.Element, xml: Path, finder: MediaFinder) -> tuple[str | None, object]:
    """(video name, VideoInfo) of a video task, (None, None) for an image task."""
    task = root.find("meta/task")
    source = (task.findtext("source") or "").strip() if task is not None else ""
    mode = (task.findtext("mode") or "").strip() if task is not None else ""
    has_tracks = root.find("track") is not None
    if not source and (has_tracks or mode == "interpolation"):
        name = (task.findtext("name") or "").strip() if task is not None else ""
        cands = [p for p in finder.folder.glob(f"{name}.*") if p.suffix.lower() in VIDEO_SUFFIXES] if name else []
        if not cands:
            raise DatasetError(f"{xml}: a video task without <meta><task><source>; add the video's file name there "
                               "(CVAT exports write it) or name the task after the video")
        source = cands[0].name
    if source and Path(source).suffix.lower() in VIDEO_SUFFIXES:
        return source, finder.video(source, xml, "<meta><task><source>")
    if has_tracks:
        raise DatasetError(f"{xml}: <track>s need a video task, but <source> is {source!r}; export the task "
                           "'CVAT for video 1.1'")
    return None, None


def _read_one(xml: Path, finder: MediaFinder) -> list[MediaLabels]:
    try:
        if xml.suffix.lower() == ".zip":  # CVAT's download: annotations.xml (+ images/) zipped
            import zipfile

            with zipfile.ZipFile(xml) as z:
                root = ET.fromstring(z.read("annotations.xml"))
        else:
            root = ET.parse(xml).getroot()
    except (ET.ParseError, OSError, KeyError, ValueError) as e:
        raise DatasetError(f"{xml}: not readable XML ({e}); pass a CVAT 1.1 XML export") from None
    if root.tag != "annotations":
        raise DatasetError(f"{xml}: the root element is <{root.tag}>, not <annotations>; pass a CVAT 1.1 XML export")
    name, info = _task_media(root, xml, finder)
    if info is not None:
        m = MediaLabels(name, "video", xml, info.path, info.width, info.height, info.frames)
        for tr in root.iter("track"):
            m.marks += _track_marks(tr, info.frames, xml)
        for im in root.iter("image"):  # a video task exported 'for images': image id = frame index
            f = int(number(im.get("id"), xml, f"<image name={im.get('name')!r}>", "id"))
            m.marks += _image_marks(im, f, xml)
        return [m]
    items = []
    for im in root.iter("image"):
        where = f"<image id={im.get('id')!r} name={im.get('name')!r}>"
        path, w, h = finder.image_size(im.get("name") or "", xml, where)
        m = MediaLabels(im.get("name") or path.name, "image", xml, path, w, h)
        m.marks = _image_marks(im, 0, xml)
        items.append(m)
    return items


def _image_marks(im: ET.Element, frame: int, xml: Path) -> list[Mark]:
    out = []
    for el in im:
        if el.tag in SHAPES:
            where = f"<image name={im.get('name')!r}> <{el.tag} label={el.get('label')!r}>"
            pts, w, h = _shape_points(el, xml, where)
            out += _marks(pts, w, h, frame, el.get("label") or "target", where)
    return out


def read_cvat(src, finder: MediaFinder) -> list[MediaLabels]:
    """Every video or image of a CVAT 1.1 XML export (or a folder of them), its marks checked later."""
    return [m for xml in _xml_files(Path(src)) for m in _read_one(xml, finder)]


def _pts(x: float, y: float) -> str:
    return quoteattr(f"{x:.2f},{y:.2f}")


def _meta(name: str, mode: str, size: int, source: str | None, width: int, height: int) -> list[str]:
    src = f"<source>{source}</source>" if source else ""
    orig = f"<original_size><width>{width}</width><height>{height}</height></original_size>" if source else ""
    return ['<?xml version="1.0" encoding="utf-8"?>', "<annotations>", "  <version>1.1</version>",
            f"  <meta><task><id>0</id><name>{name}</name><size>{size}</size><mode>{mode}</mode>{src}{orig}"
            "<labels><label><name>target</name><type>points</type></label></labels></task></meta>"]


def _video_tracks(p: PreLabels) -> list[str]:
    """<track>s: one per tracker id, else one single-frame track per detection (CVAT's own rule).

    A track reported on consecutive (or, with --frame-stride k, every k-th) frames is left to CVAT's
    interpolation; where it was not reported (before a gap, after its end) an `outside` shape ends it.
    """
    groups: dict = {}
    for k, d in enumerate(p.detections):
        groups.setdefault(("t", d.track) if d.track is not None else ("d", k), []).append(d)
    out = []
    for tid, dets in enumerate(sorted(groups.values(), key=lambda ds: (min(d.frame for d in ds), ds[0].x))):
        dets = sorted(dets, key=lambda d: d.frame)
        out.append(f'  <track id="{tid}" label="target" source="auto">')
        for i, d in enumerate(dets):
            out.append(f'    <points frame="{d.frame}" keyframe="1" outside="0" occluded="0" points={_pts(d.x, d.y)} '
                       f'z_order="0"></points>')
            nxt = dets[i + 1].frame if i + 1 < len(dets) else None
            if (nxt is None or nxt - d.frame > p.stride) and d.frame + 1 < p.frames:
                out.append(f'    <points frame="{d.frame + 1}" keyframe="1" outside="1" occluded="0" '
                           f'points={_pts(d.x, d.y)} z_order="0"></points>')
        out.append("  </track>")
    return out


def write_cvat(items: list[PreLabels]) -> dict[str, str]:
    """{file name: XML text}: one video task per video, or one image task holding every image."""
    videos = [p for p in items if p.kind == "video"]
    images = [p for p in items if p.kind == "image"]
    files = {}
    for p in videos:
        lines = _meta(Path(p.name).stem, "interpolation", p.frames, p.name, p.width, p.height)
        files[Path(p.name).stem] = "\n".join(lines + _video_tracks(p) + ["</annotations>", ""])
    if images:
        lines = _meta("spire-edge pre-labels", "annotation", len(images), None, 0, 0)
        for i, p in enumerate(images):
            lines.append(f'  <image id="{i}" name={quoteattr(p.name)} width="{p.width}" height="{p.height}">')
            for d in p.detections:
                lines.append(f'    <points label="target" source="auto" occluded="0" points={_pts(d.x, d.y)} '
                             f'z_order="0"></points>')
            lines.append("  </image>")
        files["images"] = "\n".join(lines + ["</annotations>", ""])
    return files

