"""Write any dataset as SPIRE COCO-keypoint JSON, so data moves between the toolboxes.

Output layout (what SPIRE's own loader reads): DST/images/<file>, DST/annotations/annotations.json
(`images` with id = file stem, `annotations` with one entry per image: flat `keypoints`
[x, y, 1, ...], plus SPIRE's per-target `bbox` / `area` lists when a mask is known), and
DST/img_idx/<split>.txt (image ids). Converting several splits into the same DST merges them
into one annotations.json. Masks are copied to DST/masks/NAME.png when the source has them, and
per-target SCR (synthetic data) is kept in an extra `scr` field.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np

from .core import mask_components
from .video import VIDEO_SUFFIXES

__all__ = ["write_spire_json"]


def _progress(it, total: int, desc: str):
    try:
        from tqdm import tqdm
    except ImportError:
        return it
    return tqdm(it, total=total, desc=desc, unit="img", leave=False)


def _write_image(sample, dst: Path) -> str:
    """Copy the source file when it is this image (bit depth kept), else encode the array as PNG.

    A video frame's path is its clip: copying that made one MP4 per frame (issue 25), so frames
    of videos are encoded.
    """
    src = Path(sample.path) if sample.path is not None else None
    if src is not None and src.is_file() and src.suffix.lower() not in VIDEO_SUFFIXES:
        name = f"{sample.name}{src.suffix.lower()}"
        if not (dst / name).exists() or not (dst / name).samefile(src):
            shutil.copy2(src, dst / name)
        return name
    name = f"{sample.name}.png"
    img = sample.frame
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(dst / name), img):
        raise OSError(f"{dst / name}: could not be written")
    return name


def write_spire_json(dataset, out_root, split: str | None = None, copy_masks: bool = True) -> Path:
    """Write `dataset` (anything yielding Samples) under `out_root` in the SPIRE JSON layout.

    `split` names DST/img_idx/<split>.txt (default: the dataset's own split). Existing
    annotations.json entries of other images are kept; entries of the same image ids are replaced.
    Returns the annotations.json path.
    """
    out = Path(out_root)
    split = split or str(getattr(dataset, "split", "all"))
    for sub in ("images", "annotations", "img_idx"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    ann_path = out / "annotations" / "annotations.json"
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "target"}]}
    if ann_path.is_file():
        coco = json.loads(ann_path.read_text(encoding="utf-8"))
    images = {str(im["id"]): im for im in coco.get("images", [])}
    anns = {str(a["image_id"]): a for a in coco.get("annotations", [])}
    ids: list[str] = []
    for i in _progress(range(len(dataset)), len(dataset), f"convert {split}"):
        s = dataset[i]
        if s.name in ids:
            continue  # the same frame listed twice (e.g. in two concatenated sets)
        ids.append(s.name)
        file_name = _write_image(s, out / "images")
        h, w = s.frame.shape[:2]
        pts = np.asarray(s.points, np.float64).reshape(-1, 2)
        boxes, areas = [], []
        if s.mask is not None:
            cents, bx, ar = mask_components(s.mask)
            if len(cents) == len(pts):  # boxes/areas only when they describe the same targets
                boxes = [[float(v) for v in b] for b in bx]
                areas = [float(a) for a in ar]
            if copy_masks:
                (out / "masks").mkdir(exist_ok=True)
                cv2.imwrite(str(out / "masks" / f"{s.name}.png"), s.mask)
        images[s.name] = {"file_name": file_name, "height": int(h), "width": int(w), "id": s.name}
        ann = {"id": 0, "image_id": s.name, "bbox": boxes, "area": areas, "category_id": 1,
               "num_keypoints": int(len(pts)),
               "keypoints": [v for x, y in pts.tolist() for v in (float(x), float(y), 1)]}
        if getattr(s, "scr", None) is not None:
            ann["scr"] = [float(v) for v in np.asarray(s.scr).reshape(-1)]
        anns[s.name] = ann
    coco["images"] = list(images.values())
    coco["annotations"] = [dict(a, id=k + 1) for k, a in enumerate(anns[str(im["id"])] for im in coco["images"]
                                                                    if str(im["id"]) in anns)]
    coco.setdefault("categories", [{"id": 1, "name": "target"}])
    ann_path.write_text(json.dumps(coco, indent=1), encoding="utf-8")
    (out / "img_idx" / f"{split}.txt").write_text("".join(f"{n}\n" for n in ids), encoding="utf-8")
    return ann_path
