"""Labelled clips and cached per-frame detections for `benchmarks.track`.

Why a cache: the detector costs ~10 ms a frame and the tracker ~0.1 ms, so tuning the tracker on
12,000 validation frames must not re-run inference. Each clip's detections (every peak above a
low threshold, so the plain detector's points at its own threshold are a filter of them, exactly:
peaks are found before the threshold and top-K keeps the best), labels and frame-to-frame
registration shifts are stored once: detections in `CACHE/<model sha>_c<conf>_s<stride>/<clip>.npz`,
shifts (model-independent) in `CACHE/shift_<method>_x<scale>_s<stride>/<clip>.npz`. A new model
(another sha256) or another stride gets a new folder, so rerunning after the detector is
replaced simply recomputes.

Clips are read through `edge.datasets.open_dataset` (the 'video' layout: videos/, labels/,
<split>.txt; samples named CLIP#NNNNNN); a tree without that reader falls back to reading the
videos with cv2.VideoCapture and the label CSVs directly.
"""
from __future__ import annotations

import csv
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

__all__ = ["ClipData", "iter_clip_frames", "clip_names", "load_or_detect", "model_key"]


@dataclass(frozen=True)
class ClipSet:
    """Which clips of a labelled video root, read how: the key of both caches (detections, shifts)."""

    root: Path
    split: str
    stride: int
    names: list


@dataclass
class ClipData:
    """One clip: frame indices (F,), per-frame labels, detections (xy, scores) above `conf_low`,
    registration shift (F, 2) from the previous kept frame and its response (F,), frame size.
    A cache of a whole clip's detections for tracker tuning, not a frame to score
    (`edge.scoring.LabelledFrame` is that)."""

    name: str
    frames: np.ndarray
    gt: list
    det_xy: list
    det_scores: list
    shift: np.ndarray
    response: np.ndarray
    hw: tuple
    infer_ms: float = 0.0
    ego_ms: float = 0.0

    def detections(self, conf: float) -> list[np.ndarray]:
        """Per frame (N, 3) x, y, score of the detections with score > conf (the decoder's rule)."""
        out = []
        for xy, s in zip(self.det_xy, self.det_scores):
            k = s > conf
            out.append(np.concatenate([xy[k], s[k, None]], 1))
        return out


def clip_names(root: Path, split: str) -> list[str]:
    """Clip names of a split list (`ROOT/<split>.txt`), or every video when split is 'all'."""
    if split == "all":
        return sorted(p.stem for p in (root / "videos").iterdir() if p.is_file())
    path = root / f"{split}.txt" if not Path(split).is_file() else Path(split)
    return [s.strip() for s in path.read_text().splitlines() if s.strip() and not s.startswith("#")]


def _read_labels(path: Path) -> dict[int, np.ndarray]:
    out: dict[int, list] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out.setdefault(int(row["frame"]), []).append((float(row["cx"]), float(row["cy"])))
    return {k: np.asarray(v, np.float32).reshape(-1, 2) for k, v in out.items()}


def _fallback_frames(root: Path, clip: str, stride: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(index, gray frame, points) of one clip with cv2 + the label CSV (no edge.datasets video reader)."""
    import cv2

    labels = _read_labels(root / "labels" / f"{clip}.csv")
    vids = [p for p in (root / "videos").glob(f"{clip}.*")]
    cap = cv2.VideoCapture(str(vids[0])) if vids else None
    i = 0
    try:
        while cap is not None:
            ok, fr = cap.read()
            if not ok:
                return
            if i % stride == 0:
                g = cv2.cvtColor(fr, cv2.COLOR_BGR2GRAY) if fr.ndim == 3 else fr
                yield i, g, labels.get(i, np.zeros((0, 2), np.float32))
            i += 1
    finally:
        if cap is not None:
            cap.release()


def iter_clip_frames(root: Path, split: str, stride: int, clips: list[str] | None = None):
    """(clip, iterator of (frame index, frame, points)) for every clip of the split, in order."""
    root = Path(root)
    names = clips if clips is not None else clip_names(root, split)
    try:
        from edge.datasets import open_dataset
        from edge.datasets.video import split_clip_name
    except ImportError:
        for c in names:
            yield c, _fallback_frames(root, c, stride)
        return
    ds = open_dataset(root, split=split, stride=stride)
    by_clip: dict[str, list[int]] = {}
    for i in range(len(ds)):
        by_clip.setdefault(ds.clip_of(i), []).append(i)
    for c in names:
        idx = by_clip.get(c, [])

        def frames(idx=idx):
            for i in idx:
                s = ds[i]
                yield split_clip_name(s.name)[1], s.frame, s.points

        yield c, frames()


def model_key(pred) -> str:
    """First 12 hex digits of the model file's sha256 (from its sidecar, else hashed here)."""
    sha = getattr(pred.meta, "model_sha256", None) if pred.meta is not None else None
    if not sha:
        p = Path(pred.model_path)
        f = p / pred.meta.model_file if p.is_dir() and pred.meta is not None else p
        sha = hashlib.sha256(f.read_bytes()).hexdigest()
    return str(sha)[:12]


def _pack(arrs: list[np.ndarray], cols: int) -> tuple[np.ndarray, np.ndarray]:
    n = np.array([len(a) for a in arrs], np.int64)
    flat = np.concatenate([np.asarray(a, np.float32).reshape(-1, cols) for a in arrs]) if arrs else np.zeros((0, cols))
    return flat.astype(np.float32), n


def _unpack(flat: np.ndarray, n: np.ndarray) -> list[np.ndarray]:
    return np.split(flat, np.cumsum(n)[:-1]) if len(n) else []


def _detect_clip(pred, frames_iter) -> dict:
    idx, gts, dets, hw, t_inf = [], [], [], (0, 0), 0.0
    for k, frame, pts in frames_iter:
        t = time.perf_counter()
        p, _ = pred.predict(frame)
        t_inf += time.perf_counter() - t
        idx.append(k)
        gts.append(np.asarray(pts, np.float32).reshape(-1, 2))
        dets.append(np.concatenate([p.xy, p.scores[:, None]], 1))
        hw = frame.shape[:2]
    g_flat, g_n = _pack(gts, 2)
    d_flat, d_n = _pack(dets, 3)
    return {"frames": np.asarray(idx, np.int64), "gt": g_flat, "gt_n": g_n, "det": d_flat, "det_n": d_n,
            "hw": np.asarray(hw, np.int64), "infer_ms": np.float64(t_inf * 1000 / max(len(idx), 1))}


def _register_clip(frames_iter, method: str, scale: float) -> dict:
    """Shift and response of every kept frame from the previous one, as the tracker computes them
    (`registration_image` + `estimate_shift`, no response cut: the config applies its own)."""
    import cv2

    from edge.tracking.ego_motion import estimate_shift, registration_image

    shifts, resp, prev, window, t_all = [], [], None, None, 0.0
    for _, frame, _ in frames_iter:
        t = time.perf_counter()
        g = registration_image(frame, scale)
        if prev is None or prev.shape != g.shape:
            window = cv2.createHanningWindow((g.shape[1], g.shape[0]), cv2.CV_32F)
            sh, r = np.zeros(2), 0.0
        else:
            sh, r = estimate_shift(prev, g, method, -np.inf, window)
            sh = sh / scale
        t_all += time.perf_counter() - t
        prev = g
        shifts.append(sh)
        resp.append(r)
    return {"shift": np.asarray(shifts, np.float64).reshape(-1, 2), "response": np.asarray(resp, np.float64),
            "ego_ms": np.float64(t_all * 1000 / max(len(shifts), 1))}


def _fill(folder: Path, clips: ClipSet, make, what: str, log) -> None:
    todo = [c for c in clips.names if not (folder / f"{c}.npz").is_file()]
    if not todo:
        return
    folder.mkdir(parents=True, exist_ok=True)
    log(f"{what}: {len(todo)} of {len(clips.names)} clips (cache {folder})")
    for c, frames in iter_clip_frames(clips.root, clips.split, clips.stride, todo):
        t = time.perf_counter()
        d = make(frames)
        tmp = folder / f".{c}.tmp.npz"
        np.savez_compressed(tmp, **d)
        tmp.replace(folder / f"{c}.npz")
        log(f"  {c}: {time.perf_counter() - t:.1f} s")


def load_or_detect(pred, clips: ClipSet, cache: Path, conf_low: float,
                   ego: tuple[str, float] | None = ("phase", 1.0), log=print) -> list[ClipData]:
    """Every clip's `ClipData`, from the cache when it holds it, else by running `pred` once
    (detections) or the registration once (shifts; `ego` = (method, scale), None: none)."""
    det_dir = Path(cache) / f"{model_key(pred)}_c{conf_low:g}_s{clips.stride}"
    _fill(det_dir, clips, lambda fr: _detect_clip(pred, fr), f"detecting with {pred.model_path}", log)
    reg_dir = None
    if ego is not None:
        reg_dir = Path(cache) / f"shift_{ego[0]}_x{ego[1]:g}_s{clips.stride}"
        _fill(reg_dir, clips, lambda fr: _register_clip(fr, *ego), f"registering ({ego[0]})", log)
    out = []
    for c in clips.names:
        z = np.load(det_dir / f"{c}.npz")
        det = _unpack(z["det"], z["det_n"])
        n = len(z["frames"])
        r = np.load(reg_dir / f"{c}.npz") if reg_dir else {"shift": np.zeros((n, 2)), "response": np.zeros(n),
                                                             "ego_ms": 0.0}
        out.append(ClipData(c, z["frames"], _unpack(z["gt"], z["gt_n"]), [d[:, :2] for d in det],
                            [d[:, 2] for d in det], r["shift"], r["response"], tuple(int(v) for v in z["hw"]),
                            float(z["infer_ms"]), float(r["ego_ms"])))
    return out
