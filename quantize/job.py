"""An INT8 request as one object: what `quantize.ptq` and `quantize.qat` are asked to do.

Why: the same dozen settings (model, calibration and validation data, output, FP32 scope,
fidelity report, gate) travel from the command line through PTQ or QAT to every backend's
artifact. Passed one by one they were 10-21 parameters per function with their defaults written
in the parser and again in each signature; here they are written once. `Int8Job` is built once
(`Int8Job.from_args` from the command line, or directly from Python), the parsers take their
defaults from its fields (`add_job_options`), and `Int8Run` is what every backend of one run
shares once the model and the frames are loaded.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from quantize.calibration import MIN_FRAMES
from quantize.sanity import DEFAULT_MAX_DROP


@dataclass(frozen=True)
class Int8Job:
    """One INT8 request (defaults: `python -m quantize.ptq`'s).

    weights: FP32 checkpoint, a ladder name or None (the shipped model).
    backend: 'onnxruntime' | 'openvino' | 'tflite' | 'tensorrt' | 'all', or a comma list.
    data, split, frames: calibration root(s) and split (None: synthetic frames, with a warning);
        QAT trains on `data` (one or more roots).
    val_data, val_split, val_frames: the fidelity report's frames (default: `data` when it has
        `val_split`, else synthetic).
    imgsz: input size (None: the size the checkpoint is deployed at).
    ignored_scope: module paths / node names kept FP32 besides the head; None: the
        architecture's recipe per backend, (): none.
    calibrate_method: onnxruntime/TensorRT statistic; None: the recipe's, else MinMax.
    threads, bench_runs, fidelity: the fidelity report's CPU threads and latency runs, or none.
    max_drop: the gate, INT8 F1 points below FP32 that fail the run; None: report only.
    min_frames: fewest calibration frames accepted (the benchmarks' --quick runs pass fewer).
    """

    weights: str | None = None
    backend: str = "all"
    data: str | tuple[str, ...] | None = None
    split: str = "train"
    frames: int = 300
    val_data: str | None = None
    val_split: str = "val"
    val_frames: int = 50
    imgsz: int | None = None
    out: str = "runs/quantize"
    ignored_scope: tuple[str, ...] | None = None
    calibrate_method: str | None = None
    threads: int | None = 2
    bench_runs: int = 30
    fidelity: bool = True
    max_drop: float | None = DEFAULT_MAX_DROP
    seed: int = 0
    min_frames: int = MIN_FRAMES

    @classmethod
    def from_args(cls, a: argparse.Namespace, defaults: Int8Job | None = None) -> Int8Job:
        """The job a parsed command line asks for (`--no-fidelity`, `--allow-drop` become fields)."""
        base = defaults or cls()
        kw = {f.name: getattr(a, f.name) for f in dataclasses.fields(cls) if hasattr(a, f.name)}
        if kw.get("ignored_scope") is not None:
            kw["ignored_scope"] = tuple(kw["ignored_scope"])
        if isinstance(kw.get("data"), list):
            kw["data"] = tuple(str(d) for d in kw["data"])
        kw["fidelity"] = not getattr(a, "no_fidelity", False)
        kw["max_drop"] = None if getattr(a, "allow_drop", False) else getattr(a, "max_drop", base.max_drop)
        return dataclasses.replace(base, **kw)

    @property
    def roots(self) -> list[str]:
        """`data` as a list of roots (QAT trains on several; PTQ calibrates on an equal share of each)."""
        if self.data is None:
            return []
        return [str(self.data)] if isinstance(self.data, (str, Path)) else [str(d) for d in self.data]


def add_job_options(p: argparse.ArgumentParser, job: Int8Job, weights_required: bool = False,
                    calibration: bool = True) -> None:
    """The flags `quantize.ptq` and `quantize.qat` share, their defaults read from `job`."""
    p.add_argument("--weights", required=weights_required, default=job.weights,
                   help="FP32 checkpoint (.pt or its folder); default: the shipped model")
    p.add_argument("--imgsz", type=int, default=job.imgsz,
                   help="input size S (multiple of 32); default: the checkpoint's")
    if calibration:
        p.add_argument("--frames", type=int, default=job.frames, help="calibration frames (>= 100 recommended)")
    p.add_argument("--split", default=job.split, help="split of --data to calibrate/train on (never 'test')")
    p.add_argument("--val-data", default=job.val_data,
                   help="validation root for the fidelity report; default: --data when it has the --val-split list")
    p.add_argument("--val-split", default=job.val_split, help=f"validation split name (default: {job.val_split})")
    p.add_argument("--val-frames", type=int, default=job.val_frames,
                   help=f"frames for the fidelity report (default {job.val_frames})")
    p.add_argument("--ignored-scope", nargs="*", default=job.ignored_scope,
                   help="module paths or node names kept in FP32 besides the head (e.g. stage4.0); "
                        "default: the architecture's INT8 recipe (spire.models ModelCfg.int8); alone: none")
    p.add_argument("--threads", type=int, default=job.threads, help="CPU threads for the fidelity/latency runs")
    p.add_argument("--bench-runs", type=int, default=job.bench_runs,
                   help="latency runs per model in the report (0: skip)")
    p.add_argument("--no-fidelity", action="store_true", help="skip the fidelity report")
    p.add_argument("--max-drop", type=float, default=job.max_drop,
                   help=f"fail (exit 2) when INT8 F1 falls more than this many points below FP32 "
                        f"(default {job.max_drop:g}; the artifact and its fidelity.json stay)")
    p.add_argument("--allow-drop", action="store_true", help="keep going whatever the F1 drop (report only)")
    p.add_argument("--seed", type=int, default=job.seed)
    p.add_argument("--out", default=job.out, help=f"output root (default {job.out})")


@dataclass(frozen=True)
class QatOptions:
    """QAT's own settings besides its `Int8Job` (defaults: `python -m quantize.qat`'s).

    epochs: fine-tuning epochs (required); batch, lr: batch size and peak learning rate (cosine
    decay); steps: batches per epoch at most (0: a full epoch); max_val_frames: validation frames
    per epoch at most (0: all); quiet: no progress bars.
    """

    epochs: int
    batch: int = 8
    lr: float = 1e-4
    steps: int = 0
    max_val_frames: int = 0
    quiet: bool = False

    @classmethod
    def from_args(cls, a: argparse.Namespace) -> QatOptions:
        return cls(**{f.name: getattr(a, f.name) for f in dataclasses.fields(cls)})

    @classmethod
    def add_options(cls, p: argparse.ArgumentParser) -> None:
        """QAT's flags, their defaults read from the fields."""
        d = {f.name: f.default for f in dataclasses.fields(cls)}
        p.add_argument("--epochs", type=int, required=True, help="fine-tuning epochs")
        p.add_argument("--batch", type=int, default=d["batch"])
        p.add_argument("--lr", type=float, default=d["lr"],
                       help=f"peak learning rate (cosine decay; default {d['lr']:g})")
        p.add_argument("--steps", type=int, default=d["steps"], help="cap batches per epoch (0: a full epoch)")
        p.add_argument("--max-val-frames", type=int, default=d["max_val_frames"],
                       help="cap validation frames per epoch (0: all)")
        p.add_argument("--quiet", action="store_true")


@dataclass(frozen=True)
class Int8Run:
    """What every backend of one INT8 run shares once loaded: the job, the FP32 model (`src`, an
    `export.common.Source`), the calibration record for the sidecar, the validation frames (None:
    no fidelity report), the FP32 ONNX the quantizers start from, and the scratch folder."""

    job: Int8Job
    src: object
    calib: dict
    vals: object = None
    onnx32: Path | None = None
    work: Path | None = None
