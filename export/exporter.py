"""Dispatch one export request to its exporter (fp32/fp16) or to quantize.ptq (int8).

Why a separate module: the CLI, the benchmarks and the tests all call `export_model(cfg)` with a
typed `ExportConfig`; the format table decides which exporter runs, so no caller repeats the
format/precision rules or the int8 hand-off.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import SpireEdgeError
from export.common import ExportError, load_source, round_imgsz
from export.formats import Format, check_precision, get_format

DEFAULT_OUT = Path("runs/export")


@dataclass(frozen=True)
class ExportConfig:
    """One export request (the `python -m export` flags).

    Args:
        target: onnx | openvino | tflite | tensorrt.
        weights: checkpoint; None: the shipped model (`edge.zoo.default_checkpoint()`).
        precision: fp32 | fp16 | int8 (int8 goes through quantize.ptq with data/split/frames).
        imgsz: static input size, rounded up to a multiple of 32; None: the checkpoint's.
        out: parent folder of the artifact folder.
        opset: ONNX opset (None: 18, or 17 for TensorRT).
        lint: run polygraphy's lint on TensorRT ONNX files.
    """

    target: str
    weights: Path | None = None
    precision: str = "fp32"
    imgsz: int | None = None
    out: Path = DEFAULT_OUT
    data: str | None = None
    split: str = "train"
    frames: int | None = None
    ignored_scope: tuple[str, ...] = field(default_factory=tuple)
    opset: int | None = None
    lint: bool = True


def export_model(cfg: ExportConfig) -> Path:
    """Run the export; returns the artifact folder (model file(s) + metadata.json)."""
    fmt = get_format(cfg.target)
    precision = check_precision(fmt, cfg.precision)
    if cfg.opset is not None and not 13 <= cfg.opset <= 21:
        raise ExportError(f"--opset {cfg.opset}: choose 13..21 (17 or 18 recommended)")
    imgsz = round_imgsz(cfg.imgsz) if cfg.imgsz else None
    if precision == "int8":
        return _export_int8(cfg, fmt, imgsz)
    src = load_source(cfg.weights, imgsz)
    kw = {"opset": cfg.opset} if cfg.opset else {}
    return fmt.exporter_fn()(src, Path(cfg.out), precision=precision, lint=cfg.lint, **kw)


def _export_int8(cfg: ExportConfig, fmt: Format, imgsz: int | None) -> Path:
    """INT8 is post-training quantization: quantize.ptq writes the artifact and its fidelity report."""
    try:
        from quantize.ptq import run_ptq
    except ImportError as e:
        raise ExportError(f"int8 export needs quantize.ptq ({e}); install spire-edge with its quantize package") from None
    from edge.sidecar import read_sidecar
    from edge.zoo import default_checkpoint
    kw = {"weights": cfg.weights or default_checkpoint(), "backend": fmt.ptq_backend, "data": cfg.data,
          "split": cfg.split, "imgsz": imgsz, "out": Path(cfg.out)}
    if cfg.frames:
        kw["frames"] = int(cfg.frames)
    if cfg.ignored_scope:
        kw["ignored_scope"] = tuple(cfg.ignored_scope)
    result = run_ptq(**kw)
    paths = [Path(p) for p in (result if isinstance(result, (list, tuple)) else [result])]
    folders = [p if p.is_dir() else p.parent for p in paths]
    hits = []
    for f in folders:
        try:
            if read_sidecar(f, verify=False).format == fmt.name:
                hits.append(f)
        except SpireEdgeError:
            continue
    if not hits:
        raise ExportError(f"quantize.ptq wrote no {fmt.name} artifact (got {[str(f) for f in folders]}); "
                          f"run `python -m quantize.ptq --backend {fmt.ptq_backend}` to see why")
    folder = hits[0]
    if fmt.name == "tensorrt":
        from export.tensorrt import finish_int8_folder
        finish_int8_folder(folder, lint=cfg.lint)
    return folder


def next_command(folder: Path, fmt_name: str) -> str:
    """What to run after an export (printed by the CLI)."""
    if fmt_name == "tensorrt":
        return (f"copy {folder} to the Jetson, run `bash {folder.name}/build_engine.sh` there, then "
                f"`python -m edge.run --backend tensorrt --model {folder.name}`")
    return f"python -m edge.run --model {folder}"
