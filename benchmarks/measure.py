"""Measure one row: accuracy, end-to-end and infer-only latency, power — the same way for every row.

Every row goes through `edge.inference.predictor.Predictor` (read → preprocess → infer → decode with the
sidecar's preprocessing and codec), so rows differ only in the model and the runtime. The torch
rows use the same Predictor with a torch module in the backend slot (`spire.torch_backend`), so the
torch baseline pays the same preprocessing and decoding as everything else and the speed-ups
measure the model and runtime, not a different pipeline.

Timing: `warmup` predictions first; then end-to-end passes over the benchmark frames (metrics
from the first pass) until at least `min_runs` timed frames; then `repeats` infer-only calls on
one preprocessed input. Medians and 90th percentiles, in ms.

Frames (`FrameSet`s): by default the built-in real clip (edge.demo, IR_DRONE_154) at its sensor
resolution 320×256, scored against its labels, and synthetic frames at the model's input size,
for speed only (their accuracy stays None, printed n/a: generated frames are no accuracy test).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.rows import Row
from edge.inference.predictor import STAGES
from edge.scoring import LabelledFrame, score


@dataclass(frozen=True)
class TimingConfig:
    """How much to time: warm-up predictions, minimum timed end-to-end frames, infer-only repeats."""

    warmup: int = 3
    min_runs: int = 20
    repeats: int = 20


@dataclass(frozen=True)
class FrameSet:
    """Frames measured together: `label` names them in the table, `scored` says whether accuracy counts."""

    label: str
    frames: list
    scored: bool = True


def synthetic_frames(n: int, size: int, seed: int = 12345) -> list[LabelledFrame]:
    """`n` seeded synthetic `size`×`size` frames (one model input, no tiling).

    The seed differs from the PTQ calibration and fidelity seeds, so INT8 is never measured on
    its calibration frames.
    """
    from edge.datasets.synthetic import SyntheticDataset

    ds = SyntheticDataset(n, size, seed=seed)
    return [LabelledFrame.from_sample(ds[i], i) for i in range(len(ds))]


def frame_sets(data: str | None, split: str, n: int, size: int, seed: int = 12345) -> list[FrameSet]:
    """What a benchmark measures on: `data`'s frames (scored); with no `data` the built-in clip
    (scored, sensor resolution) plus synthetic `size`² frames (speed only); 'synthetic': those alone."""
    if data == "synthetic":
        return [FrameSet(f"synthetic {size}x{size}", synthetic_frames(n, size, seed), True)]
    frames = load_frames(data, split, n, size, seed)
    h, w = frames[0].hw
    if data is not None:
        return [FrameSet(f"{Path(data).name} ({split}) {w}x{h}", frames, True)]
    from edge.demo import DEMO_CLIP

    return [FrameSet(f"{DEMO_CLIP} {w}x{h}", frames, True),
            FrameSet(f"synthetic {size}x{size}, speed only", synthetic_frames(n, size, seed), False)]


def load_frames(data: str | None, split: str, n: int, size: int, seed: int = 12345) -> list[LabelledFrame]:
    """`n` labelled frames evenly spread over a dataset split (None: the built-in clip, every frame
    labelled; 'synthetic': seeded synthetic `size`×`size` frames).

    Image-dataset frames are passed as paths so that reading them is part of the end-to-end time;
    video frames as the decoded arrays (a frame of a video has no file of its own).
    """
    if data == "synthetic":
        return synthetic_frames(n, size, seed)
    from edge.datasets import open_dataset
    from edge.errors import DatasetError

    if data is None:
        from edge.demo import demo_root

        data, split = str(demo_root()), "all"
    frames: list[LabelledFrame] = []
    ds = open_dataset(data, split=split)
    if len(ds) == 0:
        raise DatasetError(f"{data}: split '{split}' has no frames; pass --split with a list that exists")
    idx = np.unique(np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(int))
    for i in idx:
        s = ds[int(i)]
        video = getattr(ds, "format", None) == "video"
        src = str(s.path) if getattr(s, "path", None) and not video else s.frame
        frames.append(LabelledFrame(src, str(s.name), s.points, index=int(i), hw=tuple(s.frame.shape[:2])))
    return frames


def torch_predictor(src, threads: int | None, mode: str = "auto"):
    """An edge Predictor running the torch module of `src` (an export.common.Source): spire's torch
    backend, the same one spire.evaluate and training-time validation run through."""
    from edge.codecs import build_codec
    from edge.inference.preprocess import PreprocessConfig
    from spire.torch_backend import torch_predictor as predictor

    return predictor(src.model, PreprocessConfig.from_dict(src.preprocess), build_codec(dict(src.codec)), mode=mode,
                     threads=threads, model_path=src.weights)


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def infer_input(predictor, frame: LabelledFrame) -> np.ndarray:
    """One preprocessed (1, C, S, S) input for the infer-only timing."""
    from edge.frames import read_frame
    from edge.inference.preprocess import preprocess

    x, _ = preprocess(read_frame(frame.frame, frame.name), predictor.cfg)
    return x[None]


def warm_up(predictor, frames: list[LabelledFrame], n: int) -> None:
    """`n` untimed predictions first (graph compilation, caches, lazy allocations stay out of the timing)."""
    for i in range(n):
        predictor.predict(frames[i % len(frames)].frame, frames[i % len(frames)].name)


def measure(row: Row, predictor, frames: list[LabelledFrame], timing: TimingConfig, power=None,
            progress: bool = True, scored: bool = True) -> Row:
    """Fill `row` with accuracy (when `scored`), latency and power from `predictor` on `frames`; returns it.

    Every timed pass is an `edge.scoring.score` pass (the metrics are the first pass's); its
    per-frame stage times are the latencies.
    """
    if not frames:
        raise ValueError("no benchmark frames")
    warm_up(predictor, frames, timing.warmup)
    passes = max(1, -(-timing.min_runs // len(frames)))
    if power is not None:
        power.start()
    t_start = time.perf_counter()
    runs = [score(predictor, frames, progress=progress, desc=f"{row.name} ({p + 1}/{passes})") for p in range(passes)]
    wall_s = time.perf_counter() - t_start
    per_stage = {k: [v for r in runs for v in r.stage_ms.get(k, [0.0] * r.frames)] for k in STAGES}
    totals = [sum(v) for v in zip(*per_stage.values())]
    watts = power.stop() if power is not None else None
    x = infer_input(predictor, frames[0])
    for _ in range(min(3, timing.repeats)):
        predictor.backend.infer(x)
    infer_ms = []
    for _ in range(timing.repeats):
        t0 = time.perf_counter()
        predictor.backend.infer(x)
        infer_ms.append((time.perf_counter() - t0) * 1000.0)

    if scored:  # speed-only frames leave accuracy None (n/a), never 0
        m = runs[0].compute()
        row.p, row.r, row.f1 = m["precision"], m["recall"], m["f1"]
        row.fa_per_pixel, row.fppi = m["fa_per_pixel"], m["fppi"]
    row.frames = len(frames)
    row.infer_ms_p50, row.infer_ms_p90 = _pct(infer_ms, 50), _pct(infer_ms, 90)
    row.latency_ms_p50, row.latency_ms_p90 = _pct(totals, 50), _pct(totals, 90)
    row.stage_ms = {k: float(np.median(v)) for k, v in per_stage.items()}
    total_sum = float(np.sum(totals))
    if total_sum > 0:
        row.decode_share = float(np.sum(per_stage["decode"])) / total_sum
        row.overhead_share = 1.0 - float(np.sum(per_stage["infer"])) / total_sum
    row.fps = 1000.0 / row.latency_ms_p50 if row.latency_ms_p50 else None
    if watts is not None:
        row.power_w = watts
        row.energy_mj_per_frame = watts * wall_s / max(len(totals), 1) * 1000.0
    if power is not None:
        row.power_source = power.note
    return row


def state_dict_mb(model) -> float:
    """Bytes of a torch module's parameters and buffers, in MB (the torch rows' model size)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 1e6
