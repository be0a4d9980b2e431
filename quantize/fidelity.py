"""Fidelity report: what INT8 changed, measured through the runtime's own inference path.

Why: an INT8 artifact is only worth shipping if it finds the same targets. Both the FP32 and
the INT8 artifact run through `edge.inference.predictor.Predictor` (same preprocessing, tiling and decoder
as on the device), each scored by `edge.scoring.score` on the same validation frames (never the
calibration or test frames, read as `LabelledFrame`s in a seeded order) — and the report
gives FP32 vs INT8 P / R / F1 / Fa (SPIRE convention), the share of frames whose decoded points
are the same, the mean shift of the points both found, and the latency of each on this CPU.
It is written as `fidelity.json` beside the artifact's metadata.json.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from edge.backends import load_backend
from edge.datasets import open_dataset
from edge.errors import DatasetError
from edge.io import atomic_write_json
from edge.metrics import PointMetrics, match_hungarian
from edge.metrics.constants import HIT_RADIUS_PX, IDENTICAL_TOL_PX, PAIR_GATE_PX, THR_GRID
from edge.metrics.operating import best_operating_point
from edge.inference.predictor import Predictor
from edge.scoring import LabelledFrame, score
from edge.model.sidecar import read_sidecar, write_sidecar
from edge.datasets.synthetic import SyntheticDataset



@dataclass
class ValSet:
    """Validation frames for the report, read lazily (full frames; the Predictor tiles them)."""

    source: str
    split: str | None
    names: list[str]
    _get: object

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[LabelledFrame]:
        for i in range(len(self.names)):
            yield self._get(i)


def val_set(val_data: str | Path | None, val_split: str = "val", frames: int = 50, size: int = 512,
            seed: int = 0) -> ValSet:
    """`frames` frames of a validation split (seeded order), or synthetic frames when no data is given."""
    if val_data is None:
        ds = SyntheticDataset(frames, size, seed=seed + 1000)  # other frames than the calibration ones

        def get(i):
            return LabelledFrame.from_sample(ds[i], i)

        return ValSet("synthetic", None, [f"synthetic_{i}" for i in range(len(ds))], get)

    ds = open_dataset(val_data, split=val_split)
    idx = np.random.default_rng(seed).permutation(len(ds))[:frames]

    def get(i):
        return LabelledFrame.read(ds, int(idx[i]))

    return ValSet(str(val_data), val_split, [str(ds.names[int(i)]) if hasattr(ds, "names") else str(i) for i in idx], get)


def default_val(data: str | Path | None, val_data: str | Path | None, val_split: str,
                split: str = "train") -> tuple[str | Path | None, str]:
    """--val-data, else the calibration root's validation list, else its calibration list (real,
    labelled frames of the user's own camera beat synthetic ones: a fine-tuned model's report read
    "F1 0.00 -> 0.00 on 50 synthetic frames"), else synthetic (None)."""
    if val_data is not None or data is None:
        return val_data, val_split
    for s in dict.fromkeys((val_split, split)):
        try:
            open_dataset(data, split=s)
        except DatasetError:
            continue
        if s != val_split:
            print(f"note: {data} has no '{val_split}' list; the fidelity report compares FP32 and INT8 on its "
                  f"'{s}' frames (pass --val-data ROOT --val-split val for held-out ones)", file=sys.stderr)
        return data, s
    print(f"warning: {data} has no '{val_split}' list; the fidelity report uses synthetic frames "
          "(pass --val-data ROOT --val-split val for real ones)", file=sys.stderr)
    return None, val_split


def pair_points(a: np.ndarray, b: np.ndarray, gate: float = PAIR_GATE_PX):
    """One-to-one pairing of two point sets (Hungarian, gated): (distances of pairs, n_a, n_b)."""
    m = match_hungarian(np.asarray(a, np.float64).reshape(-1, 2), np.asarray(b, np.float64).reshape(-1, 2), gate)
    return np.asarray(m.dist, np.float64), len(a), len(b)


def compare_points(fp32_xy: np.ndarray, int8_xy: np.ndarray, tol: float = IDENTICAL_TOL_PX) -> tuple[bool, np.ndarray]:
    """(identical?, shifts of paired points): identical = same count, all paired within `tol` px."""
    dist, na, nb = pair_points(fp32_xy, int8_xy)
    same = na == nb and len(dist) == na and bool(np.all(dist <= tol))
    return same, dist


def latency_ms(model_path: str | Path, runs: int = 30, threads: int | None = 2, warmup: int = 3) -> float:
    """Median backend infer time (ms) of one (1, C, S, S) input on this machine."""
    be = load_backend(model_path, threads=threads)
    shape = tuple(int(v) for v in be.input_shape)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for _ in range(warmup):
        be.infer(x)
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        be.infer(x)
        ts.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(ts))


def fidelity_report(fp32_model: str | Path, int8_model: str | Path, vals: ValSet, threads: int | None = 2,
                    bench_runs: int = 30, desc: str = "fidelity", labels: tuple[str, str] | None = None,
                    retune_thr: bool = True) -> dict:
    """Run both artifacts on the validation frames; returns the report dict (see module docstring).

    retune_thr: choose the INT8 model's decode threshold on these (validation, labelled) frames, as
    training chose FP32's (edge.metrics.operating): INT8 maps often peak lower than FP32's, and
    FP32's threshold would then drop true targets. The report's INT8 figures are at that threshold
    ('int8_thr'); the caller writes it into the INT8 sidecar (`set_decode_threshold`). A hit is
    within the SPIRE hit radius (`HIT_RADIUS_PX`), as everywhere else.
    """
    max_dist = HIT_RADIUS_PX
    p32 = Predictor(fp32_model, threads=threads)
    thr32 = p32.conf
    labelled = vals.split is not None  # synthetic frames: keep FP32's threshold
    retune = retune_thr and labelled
    p8 = Predictor(int8_model, threads=threads)
    low = min(THR_GRID[0], thr32) if retune else None  # decode low, pick the INT8 threshold afterwards
    m32, m8 = PointMetrics(max_dist=max_dist), PointMetrics(max_dist=max_dist)
    got32, got8 = [], []
    s32 = score(p32, vals, metrics=m32, on_frame=lambda fr, pts: got32.append((fr.name, pts)), desc=f"{desc} fp32")
    s8 = score(p8, vals, thr=low, metrics=m8, on_frame=lambda fr, pts: got8.append(pts), desc=f"{desc} int8")
    frames = [(name, a, b) for (name, a), b in zip(got32, got8)]  # the same frames, read in the same order
    t32, t8 = sum(s32.stage_ms.get("infer", ())), sum(s8.stage_ms.get("infer", ()))
    thr8 = best_operating_point(m8, thr32)["thr"] if retune else p8.conf
    identical, exact, shifts, changed = 0, 0, [], []
    for name, a, b in frames:
        b = b[b.scores >= thr8]
        same, dist = compare_points(a.xy, b.xy)
        identical += same
        exact += bool(len(a) == len(b) and (len(a) == 0 or np.array_equal(a.xy, b.xy)))
        shifts.extend(dist.tolist())
        if not same:
            changed.append(name)
    n = len(frames)
    r32, r8 = m32.compute(), m8.compute(thr8)
    rep = {
        "frames": n, "val_source": vals.source, "val_split": vals.split, "max_dist_px": max_dist,
        "fp32_model": (labels or (Path(fp32_model).name, ""))[0], "int8_model": (labels or ("", Path(int8_model).name))[1],
        "identical_tol_px": IDENTICAL_TOL_PX, "pair_gate_px": PAIR_GATE_PX,
        "identical_frames": identical / n if n else 0.0, "exact_frames": exact / n if n else 0.0,
        "mean_shift_px": float(np.mean(shifts)) if shifts else 0.0,
        "max_shift_px": float(np.max(shifts)) if shifts else 0.0,
        "changed_frames": changed[:20],
        "f1_drop_points": 100.0 * (r32["f1"] - r8["f1"]),
        "infer_ms_per_frame": {"fp32": t32 / max(n, 1), "int8": t8 / max(n, 1)},
        "fp32_thr": thr32, "int8_thr": thr8, "int8_thr_source": "validation" if retune else "fp32 sidecar",
    }
    for tag, r in (("fp32", r32), ("int8", r8)):
        for k in ("precision", "recall", "f1", "fa_per_pixel", "fppi", "tp", "fp", "fn", "targets"):
            rep[f"{tag}_{k}"] = r[k]
    if bench_runs > 0:
        a_ms, b_ms = latency_ms(fp32_model, bench_runs, threads), latency_ms(int8_model, bench_runs, threads)
        rep["latency_ms"] = {"fp32": a_ms, "int8": b_ms, "threads": threads, "runs": bench_runs}
        rep["speedup"] = a_ms / b_ms if b_ms > 0 else None
    return rep


def summary_line(rep: dict, what: str) -> str:
    """One printable line: F1 FP32 -> INT8, identical share, shift, speed-up."""
    s = (f"{what}: F1 {rep['fp32_f1']:.4f} -> {rep['int8_f1']:.4f} "
         f"(P {rep['int8_precision']:.3f}, R {rep['int8_recall']:.3f}, "
         f"Fa {rep['int8_fa_per_pixel']:.2e}/px) on {rep['frames']} {rep['val_source']} frames; "
         f"identical {100 * rep['identical_frames']:.0f}%, mean shift {rep['mean_shift_px']:.3f} px"
         + (f"; INT8 decodes at thr {rep['int8_thr']:.2f} (FP32 {rep['fp32_thr']:.2f})" if "int8_thr" in rep else ""))
    if rep.get("speedup"):
        lat = rep["latency_ms"]
        s += f"; {lat['fp32']:.1f} -> {lat['int8']:.1f} ms ({rep['speedup']:.2f}x, {lat['threads']} threads)"
    return s


def set_decode_threshold(folder: str | Path, thr: float) -> None:
    """Rewrite an artifact's sidecar with the decode threshold chosen for it on validation."""
    import dataclasses

    meta = read_sidecar(folder, verify=False)
    if float(meta.codec.get("thr", -1)) != float(thr):
        write_sidecar(folder, dataclasses.replace(meta, codec=dict(meta.codec, thr=float(thr))))


def publish_report(folder: str | Path, rep: dict, what: str) -> None:
    """Write the report beside an INT8 artifact, give its sidecar the report's threshold, print the summary."""
    write_report(folder, rep)
    set_decode_threshold(folder, rep["int8_thr"])
    print(summary_line(rep, what))


def write_report(folder: str | Path, rep: dict) -> Path:
    """Write `folder/fidelity.json` atomically."""
    return atomic_write_json(Path(folder) / "fidelity.json", rep)
