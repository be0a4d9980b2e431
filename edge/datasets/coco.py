"""COCO keypoints in (`convert --from coco`) and out (`edge.run --labels-out coco`).

Why COCO: every tool (CVAT, Label Studio, Roboflow, FiftyOne) imports and exports it, so it is the
fallback when a team's tool is neither of the other two. Read as the COCO format defines it
(cocodataset.org, "Data format": `images` {id, file_name, width, height}, `annotations`
{image_id, keypoints [x, y, v, ...], bbox [x, y, w, h]}): each keypoint with v > 0 is a target
(SPIRE's own annotations.json stores every target of an image as one annotation's keypoints);
an annotation without labelled keypoints gives its bbox centre.

Video frames: an image entry with `video` (file name) and `frame_index` (0-based) — what the
writer below emits — or COCO-VID style `video_id` + `frame_id` with a top-level `videos` list
({id, name or file_name}) is frame `frame_index` of that video; any other image entry is an image
file found by `file_name` in --videos DIR. The writer adds `score` and, with --track, `track_id`
to each annotation (fields COCO readers ignore), one category `target` with one keypoint `centre`.
"""
from __future__ import annotations

import json
from pathlib import Path

from edge.errors import DatasetError

from .labeltools import BOX_PX, Mark, MediaFinder, MediaLabels, PreLabels, number

__all__ = ["read_coco", "write_coco"]


def _load(src: Path) -> tuple[Path, dict]:
    if src.is_dir():
        files = sorted(src.glob("*.json"))
        if len(files) != 1:
            raise DatasetError(f"{src}: holds {len(files)} .json files; pass the COCO annotation file itself")
        src = files[0]
    try:
        coco = json.loads(src.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{src}: not readable JSON ({e}); pass a COCO annotation file") from None
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise DatasetError(f"{src}: not a COCO annotation file (no 'images' list)")
    return src, coco


def _points(a: dict, src: Path, where: str) -> tuple[list[tuple], float | None, float | None]:
    kp = a.get("keypoints") or []
    if len(kp) % 3:
        raise DatasetError(f"{src}: {where}: keypoints has {len(kp)} numbers, not x,y,v triplets; fix the entry")
    pts = [(number(kp[i], src, where), number(kp[i + 1], src, where)) for i in range(0, len(kp), 3)
           if number(kp[i + 2], src, where, "visibility") > 0]
    bbox = a.get("bbox") or []
    box = [number(v, src, where, "bbox") for v in bbox] if len(bbox) == 4 else None
    if pts:
        return pts, (box[2] if box else None), (box[3] if box else None)
    if box:
        return [(box[0] + box[2] / 2, box[1] + box[3] / 2)], box[2], box[3]
    return [], None, None


def _video_of(im: dict, videos: dict) -> tuple[str | None, int]:
    if im.get("video") is not None:
        return str(im["video"]), int(im.get("frame_index", im.get("frame_id", 0)))
    if im.get("video_id") is not None and im["video_id"] in videos:
        v = videos[im["video_id"]]
        return str(v.get("file_name") or v.get("name")), int(im.get("frame_id", im.get("frame_index", 0)))
    return None, 0


def read_coco(src, finder: MediaFinder) -> list[MediaLabels]:
    """Every video or image of a COCO file, with one mark per labelled keypoint (or bbox centre)."""
    src, coco = _load(Path(src))
    videos = {v.get("id"): v for v in coco.get("videos") or [] if isinstance(v, dict)}
    cats = {c.get("id"): str(c.get("name", "target")) for c in coco.get("categories") or [] if isinstance(c, dict)}
    by_image: dict = {}
    for i, a in enumerate(coco.get("annotations") or []):
        by_image.setdefault(a.get("image_id"), []).append((i, a))
    items: dict[str, MediaLabels] = {}
    for im in coco["images"]:
        where = f"image id={im.get('id')!r} file_name={im.get('file_name')!r}"
        video, frame = _video_of(im, videos)
        if video is not None:
            key = video
            if key not in items:
                info = finder.video(video, src, where)
                items[key] = MediaLabels(video, "video", src, info.path, info.width, info.height, info.frames)
        else:
            key = str(im.get("file_name"))
            path, w, h = finder.image_size(key, src, where)
            items[key] = MediaLabels(key, "image", src, path, w, h)
        for i, a in by_image.get(im.get("id"), []):
            w_ = f"{where} annotation id={a.get('id', i)!r}"
            pts, bw, bh = _points(a, src, w_)
            items[key].marks += [Mark(frame, x, y, bw, bh, cats.get(a.get("category_id"), "target"), w_)
                                 for x, y in pts]
    return list(items.values())


def write_coco(items: list[PreLabels]) -> dict[str, str]:
    """{'coco': JSON text}: one image entry per processed frame, one annotation per detection."""
    images, anns = [], []
    for p in items:
        frames = sorted({d.frame for d in p.detections} | set(p.seen))
        by_frame: dict = {}
        for d in p.detections:
            by_frame.setdefault(d.frame, []).append(d)
        for f in frames if p.kind == "video" else [0]:
            im = {"id": len(images) + 1, "width": p.width, "height": p.height}
            if p.kind == "video":
                im.update(file_name=f"frame_{f:06d}.png", video=p.name, frame_index=f)
            else:
                im["file_name"] = p.name
            images.append(im)
            for d in by_frame.get(f, []):
                a = {"id": len(anns) + 1, "image_id": im["id"], "category_id": 1, "iscrowd": 0,
                     "keypoints": [float(d.x), float(d.y), 2], "num_keypoints": 1,
                     "bbox": [round(d.x - BOX_PX / 2, 3), round(d.y - BOX_PX / 2, 3), BOX_PX, BOX_PX],
                     "area": BOX_PX * BOX_PX, "score": round(d.score, 4)}
                if d.track is not None:
                    a["track_id"] = int(d.track)
                anns.append(a)
    coco = {"info": {"description": "spire-edge pre-labels (edge.run --labels-out coco)"},
            "images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "target", "supercategory": "target", "keypoints": ["centre"],
                            "skeleton": []}]}
    return {"coco": json.dumps(coco, indent=1) + "\n"}
