"""Calibration frames for INT8: real IR frames, preprocessed exactly as the runtime does.

Why: INT8 ranges are only as good as the frames that set them. They must be real infrared frames
from the training/validation split (never the test split), include frames that hold targets
(a few-pixel target is the activation peak that clipping would cut), and go through the very
function the runtime uses (`edge.inference.preprocess.preprocess`). Frames larger than the model input are
cut to an S×S crop at native scale — the runtime tiles such frames (edge.inference.predictor), so the
network never sees them shrunk. Without data, a seeded synthetic IR set stands in, with a
printed warning.

One re-iterable `CalibrationSource` yields float32 (1, C, S, S) arrays; thin adapters turn it into
what each tool wants: onnxruntime's `CalibrationDataReader` (`get_next`/`rewind`/`__len__`),
`nncf.Dataset`, and a torch batch iterator for pt2e (LiteRT, QAT).
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from edge.datasets import open_dataset
from edge.errors import DatasetError
from edge.inference.preprocess import PreprocessConfig, percentile_agc, preprocess
from edge.datasets.synthetic import SyntheticDataset

MIN_FRAMES = 8  # below this no range estimate is worth shipping: error
WARN_FRAMES = 100  # below this the ranges are noisy: warning
FORBIDDEN_SPLITS = ("test", "test_full")


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class CalibFrame:
    """One calibration frame: raw pixels (at most S×S) and whether it is a native-scale crop.

    Not an `edge.scoring.LabelledFrame`: it is a crop fed to a quantiser, never scored; it carries
    the `native` flag and only the count of targets it holds (calibration info), not their points.
    """

    name: str
    frame: np.ndarray
    native: bool  # True: an S×S (or smaller) cut of a larger frame -> padded, never scaled
    targets: int = 0


@dataclass
class CalibrationSource:
    """Re-iterable calibration set: yields float32 (1, C, S, S) network inputs.

    Attributes:
        frames: the selected frames (target-bearing first, then target-free).
        cfg: the model's PreprocessConfig (the runtime's; native crops use it with scale_up=False).
        source: dataset root, or 'synthetic'.
        split: the split the frames came from (None for synthetic).
        progress: show a tqdm bar while iterating.
    """

    frames: list[CalibFrame]
    cfg: PreprocessConfig
    source: str = "synthetic"
    split: str | None = None
    progress: bool = True
    desc: str = "calibration"
    _native_cfg: PreprocessConfig = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._native_cfg = dataclasses.replace(self.cfg, scale_up=False)

    def __len__(self) -> int:
        return len(self.frames)

    def array(self, i: int) -> np.ndarray:
        """Network input for frame i, float32 (1, C, S, S)."""
        f = self.frames[i]
        x, _ = preprocess(f.frame, self._native_cfg if f.native else self.cfg)
        return x[None]

    def __iter__(self) -> Iterator[np.ndarray]:
        idx = range(len(self.frames))
        if self.progress:
            from tqdm import tqdm

            idx = tqdm(idx, desc=self.desc, unit="frame", leave=False)
        for i in idx:
            yield self.array(i)

    def info(self) -> dict:
        """The sidecar's `calibration` entry."""
        return {"source": self.source, "frames": len(self.frames), "split": self.split,
                "target_frames": sum(1 for f in self.frames if f.targets > 0)}

    def with_progress(self, desc: str) -> "CalibrationSource":
        """Same frames, another progress label (one bar per tool pass)."""
        return dataclasses.replace(self, desc=desc)


# ---------------------------------------------------------------------------------- selection
def _crop(frame: np.ndarray, points: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """A native-scale S×S cut of a frame larger than S (around a random target when it has any)."""
    h, w = frame.shape[:2]
    if h <= size and w <= size:
        return frame, False
    if frame.dtype != np.uint8:  # the runtime applies one AGC to the whole frame before tiling
        frame = np.clip(np.rint(percentile_agc(frame)), 0, 255).astype(np.uint8)
    ch, cw = min(h, size), min(w, size)
    if len(points):
        cx, cy = points[rng.integers(len(points))]
        jx, jy = rng.uniform(-0.3, 0.3, 2) * (cw, ch)  # target anywhere in the central part
        x0, y0 = int(round(cx + jx - cw / 2)), int(round(cy + jy - ch / 2))
    else:
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    x0, y0 = min(max(x0, 0), w - cw), min(max(y0, 0), h - ch)
    return np.ascontiguousarray(frame[y0:y0 + ch, x0:x0 + cw]), True


def _check_count(n: int, where: str, min_frames: int) -> None:
    if n < min_frames:
        raise DatasetError(f"{where}: only {n} calibration frame(s), INT8 calibration needs at least "
                           f"{min_frames}; pass a larger --data split (or several frames with --frames >= {min_frames})")
    if n < WARN_FRAMES:
        _warn(f"{where}: calibrating on {n} frames (fewer than {WARN_FRAMES}); INT8 ranges may be noisy, "
              "use --frames 300 on a larger split")


def real_frames(data: str | Path, split: str, frames: int, size: int, seed: int = 0,
                progress: bool = True) -> list[CalibFrame]:
    """Pick `frames` frames from a dataset split: target-bearing ones first, then target-free."""
    ds = open_dataset(data, split=split)
    n_all = len(ds)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_all)
    with_t: list[CalibFrame] = []
    without: list[CalibFrame] = []
    it = order
    if progress:
        from tqdm import tqdm

        it = tqdm(order, desc=f"reading {Path(data).name}/{split}", unit="frame", leave=False)
    for i in it:
        if len(with_t) >= frames:
            break
        try:
            s = ds[int(i)]
        except Exception as e:  # a bad frame is reported and skipped, never fatal
            _warn(f"{Path(data)}: skipping calibration frame #{int(i)} ({e})")
            continue
        pts = np.asarray(s.points, np.float32).reshape(-1, 2)
        frame, native = _crop(s.frame, pts, size, rng)
        cf = CalibFrame(str(s.name), frame, native, int(len(pts)))
        (with_t if len(pts) else without).append(cf)
    return (with_t + without)[:frames]


def synthetic_frames(frames: int, size: int, seed: int = 0) -> list[CalibFrame]:
    """Seeded synthetic IR frames (edge.datasets.synthetic) at the model size."""
    ds = SyntheticDataset(frames, size, seed=seed)
    out = []
    for i in range(len(ds)):
        s = ds[i]
        out.append(CalibFrame(str(s.name), s.frame, False, int(len(s.points))))
    out.sort(key=lambda f: f.targets == 0)  # target-bearing first, as for real data
    return out


def _share(frames: int, n: int) -> list[int]:
    """`frames` split over `n` roots as evenly as counts allow (the first roots take the remainder)."""
    return [frames // n + (1 if i < frames % n else 0) for i in range(n)]


def calibration_source(data: str | Path | list | tuple | None = None, split: str = "train", frames: int = 300,
                       cfg: PreprocessConfig | None = None, seed: int = 0, min_frames: int = MIN_FRAMES,
                       progress: bool = True) -> CalibrationSource:
    """Build the calibration set for a model whose runtime preprocessing is `cfg`.

    Why several roots: INT8 ranges set on one kind of frame clip another's. A model that runs on
    single IR frames and on thermal drone video, calibrated on SIRST-V2 alone, lost 1.5 F1 points on
    the drone clips in INT8 (faint targets fell under the threshold); each root now gives an equal
    share of the frames.

    Args:
        data: dataset root (any edge.datasets layout), or a list of roots sharing the frames equally;
            None: synthetic frames with a warning.
        split: the split list to draw from ('train' or 'val'; the test split is refused).
        frames: how many frames to use (all of the split when it has fewer).
        cfg: the model's PreprocessConfig (from its sidecar).
        seed: frame order and crop positions.
        min_frames: fewer usable frames than this is an error.
    Raises:
        DatasetError: test split, unreadable data, or too few frames.
    """
    if cfg is None:
        raise ValueError("calibration_source needs the model's PreprocessConfig (cfg=...)")
    if frames < min_frames:
        raise DatasetError(f"--frames {frames}: INT8 calibration needs at least {min_frames} frames; "
                           "pass --frames 300")
    if data is None:
        _warn(f"no --data given: calibrating on {frames} synthetic IR frames; pass --data PATH "
              "(a training/validation split of real IR frames) for a model you ship")
        return CalibrationSource(synthetic_frames(frames, cfg.imgsz, seed), cfg, "synthetic", None, progress)
    roots = [data] if isinstance(data, (str, Path)) else list(data)
    if split.lower() in FORBIDDEN_SPLITS:
        raise DatasetError(f"{'+'.join(map(str, roots))}: calibrating on the '{split}' split would leak the test "
                           "set into the model; pass --split train (or val)")
    picked = [f for root, n in zip(roots, _share(frames, len(roots)))
              for f in real_frames(root, split, n, cfg.imgsz, seed, progress)]
    name = "+".join(str(r) for r in roots)
    _check_count(len(picked), f"{name} (split {split})", min_frames)
    if not any(f.targets for f in picked):
        _warn(f"{name} (split {split}): no calibration frame holds a target; INT8 may clip target peaks")
    return CalibrationSource(picked, cfg, name, split, progress)


# ------------------------------------------------------------------------------------ adapters
def ort_reader(source: CalibrationSource, input_name: str = "images"):
    """onnxruntime.quantization CalibrationDataReader over the source (re-windable)."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] | None = None

        def get_next(self) -> dict | None:
            if self._it is None:
                self._it = iter(source)
            x = next(self._it, None)
            return None if x is None else {input_name: x}

        def rewind(self) -> None:
            self._it = None

        def __len__(self) -> int:
            return len(source)

    return _Reader()


def nncf_dataset(source: CalibrationSource):
    """nncf.Dataset over the source (items are already model inputs)."""
    import nncf

    return nncf.Dataset(source)

