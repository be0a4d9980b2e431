"""The export formats as one table: the CLI, artifact naming and dispatch all read it.

Why: Ultralytics-style — one frozen row per target instead of flags and magic indices, so adding
a target is one row plus one exporter module, and a typo on the command line gets a
`difflib` suggestion instead of a stack trace.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edge.errors import SpireEdgeError

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Format:
    """One export target.

    Args:
        name: `--target` value and the sidecar `format`.
        folder_suffix: appended to the stem for the artifact folder (`hrpe_512_fp32_onnx/`).
        file_suffix: the model file's suffix inside the folder (`.xml` for OpenVINO IR).
        precisions: precisions this target can be exported at.
        runtime: the `edge` backend that runs it (`--backend` of `python -m edge.run`).
        extra: pip extra that installs the toolchain / runtime (`spire-edge[<extra>]`).
        exporter: "module:function" of the exporter (imported only when used).
        ptq_backend: the `quantize.ptq.run_ptq(backend=...)` name for int8.
        runs_here: True when this machine can load the artifact back (TensorRT needs a GPU).
    """

    name: str
    folder_suffix: str
    file_suffix: str
    precisions: tuple[str, ...]
    runtime: str
    extra: str
    exporter: str
    ptq_backend: str
    runs_here: bool = True

    def stem(self, arch: str, imgsz: int, precision: str) -> str:
        """`<arch>_<imgsz>_<precision>`, e.g. `hrpe_lite_512_int8`."""
        return f"{arch}_{int(imgsz)}_{precision}"

    def folder(self, out: str | Path, arch: str, imgsz: int, precision: str) -> Path:
        """The artifact folder, e.g. `runs/export/hrpe_lite_512_int8_openvino_model`."""
        return Path(out) / f"{self.stem(arch, imgsz, precision)}{self.folder_suffix}"

    def model_file(self, arch: str, imgsz: int, precision: str) -> str:
        """The model file name inside the folder, e.g. `hrpe_lite_512_int8.xml`."""
        return f"{self.stem(arch, imgsz, precision)}{self.file_suffix}"

    def exporter_fn(self) -> Callable:
        mod, fn = self.exporter.split(":")
        return getattr(importlib.import_module(mod), fn)


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("onnx", "_onnx", ".onnx", PRECISIONS, "onnxruntime", "onnx",
           "export.onnx:export_onnx", "onnxruntime"),
    Format("openvino", "_openvino_model", ".xml", PRECISIONS, "openvino", "openvino",
           "export.openvino:export_openvino", "openvino"),
    Format("tflite", "_tflite", ".tflite", PRECISIONS, "tflite", "tflite",
           "export.tflite:export_tflite", "tflite"),
    Format("tensorrt", "_tensorrt", ".onnx", PRECISIONS, "tensorrt", "tensorrt",
           "export.tensorrt:export_tensorrt", "tensorrt", runs_here=False),
)}


def _choice(kind: str, value: str, options) -> str:
    close = difflib.get_close_matches(value, list(options), n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {kind} {value!r}{hint}; choose one of {', '.join(options)}"


def get_format(name: str) -> Format:
    """The table row for a target name; one-line error with a suggestion for typos."""
    key = name.strip().lower()
    if key not in FORMATS:
        raise SpireEdgeError(_choice("--target", name, FORMATS))
    return FORMATS[key]


def check_precision(fmt: Format, precision: str) -> str:
    """Validate a precision for a target (one-line error with a suggestion)."""
    p = precision.strip().lower()
    if p not in fmt.precisions:
        raise SpireEdgeError(_choice(f"--precision for {fmt.name}", precision, fmt.precisions))
    return p
