"""Find the files of each dataset layout and build a lazy `Dataset` from them.

Users arrive with data from whichever toolbox they used before, so the reader takes every common
IRSTD layout as it is on disk instead of asking for a conversion first:

- 'nuaa'       NUAA-SIRST / SIRST-V2: images/NAME.png, masks/NAME_pixels0.png, <split>.txt
- 'basicirstd' BasicIRSTD: images/NAME.png, masks/NAME.png, img_idx/<split>_<dataset>.txt
- 'spire-json' SPIRE: images/, annotations/annotations.json (COCO keypoints), img_idx/<split>.txt
- 'lesps'      LESPS: the BasicIRSTD layout plus masks_centroid/ or masks_coarse/ point masks
               (one 255 pixel, or a small blob, per target)
- 'video'      labelled IR clips: videos/NAME.mp4, labels/NAME.csv (frame,cx,cy,...), <split>.txt
               of clip names; `stride` keeps every k-th frame (see edge.datasets.video)

`split` is a list name, a path to a list file, or 'all' (every image). List lines are names
without extension (an extension is tolerated). Missing images, masks and duplicate lines are
reported and skipped; an unknown layout or a missing list raises a one-line `DatasetError`.
"""
from __future__ import annotations

import json
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from edge.errors import DatasetError

from .core import ConcatDataset, Dataset, DatasetWarning, Entry
from .video import is_video_layout, open_video_dataset

__all__ = ["FORMATS", "detect_format", "open_dataset", "open_datasets", "read_name_list"]

FORMATS = ("nuaa", "basicirstd", "spire-json", "lesps", "video")
IMAGE_EXT = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
LAYOUTS = ("expected one of: images/+masks/NAME_pixels0.png+<split>.txt (nuaa), "
           "images/+masks/+img_idx/<split>_<name>.txt (basicirstd), "
           "images/+annotations/annotations.json (spire-json), images/+masks_centroid/ or masks_coarse/ (lesps), "
           "videos/+labels/+<split>.txt (video)")


def _index(folder: Path) -> dict[str, Path]:
    """stem -> image file in `folder` (first of IMAGE_EXT order when a stem has several)."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    rank = {e: i for i, e in enumerate(IMAGE_EXT)}
    for p in sorted(folder.iterdir()):
        ext = p.suffix.lower()
        if ext in rank and (p.stem not in out or rank[ext] < rank[out[p.stem].suffix.lower()]):
            out[p.stem] = p
    return out


def detect_format(root) -> str:
    """The layout name of `root` (see FORMATS); raises DatasetError when none fits."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder; pass the folder that holds images/")
    if (root / "annotations" / "annotations.json").is_file():
        return "spire-json"
    if is_video_layout(root):
        return "video"
    if not (root / "images").is_dir():
        inner = sorted(p.name for p in root.iterdir() if (p / "images").is_dir())
        if inner:  # e.g. BasicIRSTD's datasets/ folder holding NUAA-SIRST/, IRSTD-1K/, ...
            raise DatasetError(f"{root}: holds several datasets ({', '.join(inner)}); pass one of them as the root")
        what = "is empty" if not any(root.iterdir()) else "has no images/ folder"
        raise DatasetError(f"{root}: {what}; {LAYOUTS}")
    if (root / "masks_centroid").is_dir() or (root / "masks_coarse").is_dir():
        return "lesps"
    masks = root / "masks"
    if masks.is_dir() and any(p.stem.endswith("_pixels0") for p in masks.iterdir()):
        return "nuaa"
    if (root / "img_idx").is_dir() or masks.is_dir():
        return "basicirstd"
    raise DatasetError(f"{root}: images/ but no masks/, img_idx/ or annotations/; {LAYOUTS}")


def read_name_list(path: Path) -> list[str]:
    """Names from a list file: one a line, blanks and '#' comments skipped, extensions dropped."""
    out = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        s = s.replace("\\", "/").split("/")[-1]
        out.append(s[: -len(Path(s).suffix)] if Path(s).suffix.lower() in IMAGE_EXT else s)
    return out


def _list_candidates(root: Path, fmt: str, split: str) -> list[Path]:
    if fmt == "nuaa":
        return [root / f"{split}.txt", root / "splits" / f"{split}.txt", root / "img_idx" / f"{split}.txt",
                *sorted(root.glob(f"idx_*/{split}.txt"))]
    if fmt == "spire-json":
        return [root / "img_idx" / f"{split}.txt", root / f"{split}.txt"]
    if fmt == "video":
        return [root / f"{split}.txt", root / "splits" / f"{split}.txt"]
    return [root / "img_idx" / f"{split}_{root.name}.txt", *sorted((root / "img_idx").glob(f"{split}_*.txt")),
            root / "img_idx" / f"{split}.txt", root / f"{split}_{root.name}.txt", root / f"{split}.txt"]


def _split_names(root: Path, fmt: str, split: str) -> list[str] | None:
    """Names of the split, or None for 'all'."""
    if split == "all":
        return None
    p = Path(split)
    if p.suffix == ".txt" and p.is_file():
        return read_name_list(p)
    for cand in _list_candidates(root, fmt, split):
        if cand.is_file():
            return read_name_list(cand)
    lists = sorted({c.stem for c in [*root.glob("*.txt"), *root.glob("img_idx/*.txt")]})
    raise DatasetError(f"{root}: no list for split {split!r} ({fmt} layout, looked for "
                       f"{_list_candidates(root, fmt, split)[0].relative_to(root)}); "
                       f"lists here: {', '.join(lists) or 'none'}; pass one of them or split='all'")


def _exclude_set(exclude) -> set[str]:
    if exclude is None:
        return set()
    if isinstance(exclude, (str, Path)) and Path(exclude).is_file():
        return set(read_name_list(Path(exclude)))
    if isinstance(exclude, (str, Path)):
        raise DatasetError(f"{exclude}: exclude list not found; pass a list file or a list of names")
    return {str(n) for n in exclude}


def _summarise(problems: list[str], root: Path, what: str, names: list[str], action: str = "skipped") -> None:
    if names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        problems.append(f"{root}: {len(names)} listed frame(s) {what}, {action}: {shown}")


def _mask_entries(root: Path, fmt: str, names, point_label: str, keep_unlabelled: bool, problems):
    images = _index(root / "images")
    masks = _index(root / "masks")
    pmasks: dict[str, Path] = {}
    if fmt == "lesps":
        order = ["masks_centroid", "masks_coarse"] if point_label == "centroid" else ["masks_coarse", "masks_centroid"]
        folder = next((root / o for o in order if (root / o).is_dir()), None)
        pmasks = _index(folder) if folder else {}
    if names is None:
        names = list(images)
    entries, no_image, no_label, seen = [], [], [], set()
    for n in names:
        if n in seen:
            continue
        seen.add(n)
        img = images.get(n)
        if img is None:
            no_image.append(n)
            continue
        mask = masks.get(f"{n}_pixels0") or masks.get(n)
        pmask = (pmasks.get(n) or pmasks.get(f"{n}_pixels0")) if fmt == "lesps" else None
        labelled = pmask is not None if fmt == "lesps" else mask is not None
        if not labelled:
            no_label.append(n)
            if not keep_unlabelled:
                continue
        entries.append(Entry(n, img, mask, None, pmask, labelled))
    _summarise(problems, root, "with no image in images/", no_image)
    label = "point mask" if fmt == "lesps" else "mask"
    _summarise(problems, root, f"with no {label}", no_label, "kept unlabelled" if keep_unlabelled else "skipped")
    return entries


def _json_entries(root: Path, names, problems):
    path = root / "annotations" / "annotations.json"
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
        imgs = coco["images"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{path}: not a COCO keypoint file ({type(e).__name__}: {e}); "
                           "re-create it with `python -m edge.datasets convert`") from None
    kps = defaultdict(list)
    for a in coco.get("annotations", []):
        try:
            k = np.asarray(a.get("keypoints", []), dtype=np.float64).reshape(-1, 3)
        except (TypeError, ValueError):
            k = np.full((1, 3), np.nan)
        if not np.isfinite(k).all():  # a NaN / inf / non-number keypoint is refused, never scored as a target
            raise DatasetError(f"{path}: annotation id {a.get('id')!r} (image {a.get('image_id')!r}) has keypoints "
                               f"{a.get('keypoints')!r}; every x, y, v must be a finite number: fix or delete it")
        kps[str(a.get("image_id"))].append(k[k[:, 2] > 0, :2])
    images = _index(root / "images")
    masks = _index(root / "masks")
    by_key: dict[str, dict] = {}
    for im in imgs:
        by_key.setdefault(str(im["id"]), im)
        by_key.setdefault(Path(im["file_name"]).stem, im)
    wanted = [str(im["id"]) for im in imgs] if names is None else names
    entries, missing, seen = [], [], set()
    for key in wanted:
        im = by_key.get(key)
        if im is None or str(im["id"]) in seen:
            if im is None:
                missing.append(key)
            continue
        seen.add(str(im["id"]))
        stem = Path(im["file_name"]).stem
        file = root / "images" / im["file_name"]
        file = file if file.is_file() else images.get(stem)
        if file is None:
            missing.append(key)
            continue
        pts = kps.get(str(im["id"]), [])
        pts = np.concatenate(pts) if pts else np.zeros((0, 2))
        entries.append(Entry(stem, file, masks.get(f"{stem}_pixels0") or masks.get(stem), pts.astype(np.float32)))
    _summarise(problems, root, "not in annotations.json or with no image file", missing)
    return entries


def open_dataset(root, format: str = "auto", split: str = "train", exclude=None, centroid: str = "geometric",
                 point_label: str = "centroid", keep_unlabelled: bool = False, stride: int = 1) -> Dataset:
    """Open a labelled dataset folder lazily.

    Args:
        root: the dataset folder (the one that holds images/).
        format: 'auto' (detect_format) or one of FORMATS.
        split: a list name ('train', 'val', 'test', ...), a path to a list file, or 'all'.
        exclude: names (iterable) or a list file whose names are dropped, e.g. the NUAA-SIRST
            frames that are also in sirst-v2/val.txt.
        centroid: 'geometric' (default) or 'intensity' point from each mask component.
        point_label: LESPS only: 'centroid' (masks_centroid/) or 'coarse' (masks_coarse/).
        keep_unlabelled: keep frames whose mask is missing (labelled=False, no points) instead of
            skipping them.
        stride: video layout only: keep every `stride`-th frame of each clip (1: all).
    """
    root = Path(root)
    fmt = detect_format(root) if format == "auto" else format
    if fmt not in FORMATS:
        raise DatasetError(f"{root}: unknown dataset format {format!r}; use auto or one of {', '.join(FORMATS)}")
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder; pass the folder that holds images/")
    names = _split_names(root, fmt, str(split))
    problems: list[str] = []
    if fmt == "video":
        ds = open_video_dataset(root, names, stride, problems, str(split), centroid)
        drop = _exclude_set(exclude)
        if drop:
            ds.entries = [e for e in ds.entries if e.name not in drop and e.clip not in drop]
            printed = ds.printed
            ds.__post_init__()
            ds.printed = printed
        for p in problems:
            if p not in ds.printed:
                warnings.warn(p, DatasetWarning, stacklevel=2)
        return ds
    if fmt == "spire-json":
        entries = _json_entries(root, names, problems)
    else:
        if not (root / "images").is_dir():
            raise DatasetError(f"{root}: no images/ folder for the {fmt} layout; {LAYOUTS}")
        entries = _mask_entries(root, fmt, names, point_label, keep_unlabelled, problems)
    drop = _exclude_set(exclude)
    if drop:
        entries = [e for e in entries if e.name not in drop]
    for p in problems:
        warnings.warn(p, DatasetWarning, stacklevel=2)
    return Dataset(root, fmt, str(split), entries, centroid, problems)


def open_datasets(specs, format: str = "auto", exclude=None, **kw) -> ConcatDataset:
    """Several datasets as one: `specs` items are Dataset objects, roots, or (root, split) pairs."""
    parts = []
    for s in specs:
        if hasattr(s, "__getitem__") and hasattr(s, "names"):
            parts.append(s)
        elif isinstance(s, (tuple, list)):
            parts.append(open_dataset(s[0], format, s[1], exclude=exclude, **kw))
        else:
            parts.append(open_dataset(s, format, exclude=exclude, **kw))
    return ConcatDataset(parts)
