"""Backend adapters: one file per runtime, each importing its runtime lazily.

`BACKENDS` is the single table that ties a command-line backend name to its module, the sidecar
`format` it runs and the pip extra that installs it; `load_backend` picks the row from the
artifact's metadata.json when no backend is named, so `--model weights/x_openvino_model` just works.
Importing this package imports no runtime.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from edge.errors import SidecarError, SpireEdgeError

from .base import Backend, missing_runtime


@dataclass(frozen=True)
class BackendInfo:
    """One row of the backend table."""

    module: str
    format: str
    extra: str
    cls: str


BACKENDS: dict[str, BackendInfo] = {
    "onnxruntime": BackendInfo("edge.backends.onnxruntime", "onnx", "onnx", "OnnxRuntimeBackend"),
    "openvino": BackendInfo("edge.backends.openvino", "openvino", "openvino", "OpenVINOBackend"),
    "tflite": BackendInfo("edge.backends.tflite", "tflite", "tflite", "TFLiteBackend"),
    "tensorrt": BackendInfo("edge.backends.tensorrt", "tensorrt", "tensorrt", "TensorRTBackend"),
}

FORMAT_TO_BACKEND = {info.format: name for name, info in BACKENDS.items()}


def backend_for_format(fmt: str) -> str:
    """The backend name that runs a sidecar `format` (one-line error for torch or unknown)."""
    if fmt in FORMAT_TO_BACKEND:
        return FORMAT_TO_BACKEND[fmt]
    raise SidecarError(f"format {fmt!r} has no edge backend (known: {', '.join(FORMAT_TO_BACKEND)}); "
                       "export the checkpoint to onnx, openvino, tflite or tensorrt first")


def get_backend_class(name: str) -> type[Backend]:
    """The Backend subclass for a backend name (imports its module, not its runtime)."""
    if name not in BACKENDS:
        raise SpireEdgeError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    info = BACKENDS[name]
    return getattr(importlib.import_module(info.module), info.cls)


def load_backend(model_path: str | Path, backend: str | None = None, threads: int | None = None,
                 meta=None) -> Backend:
    """Read the artifact's sidecar, pick the backend and return it loaded.

    Args:
        model_path: an artifact folder or the model file inside it (next to metadata.json).
        backend: 'onnxruntime' | 'openvino' | 'tflite' | 'tensorrt'; None: from the sidecar format.
        threads: CPU threads for the runtime.
        meta: an already read ModelMeta (skips reading the sidecar again).
    Raises:
        SidecarError: missing / mismatching sidecar; BackendUnavailable: runtime not installed.
    """
    if meta is None:
        from edge.sidecar import read_sidecar

        meta = read_sidecar(model_path)
    fmt = str(meta.format)
    name = backend or backend_for_format(fmt)
    if name not in BACKENDS:
        raise SpireEdgeError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    if BACKENDS[name].format != fmt:
        want = BACKENDS[name].format
        raise SidecarError(f"{model_path}: a format={fmt} artifact cannot run on --backend {name}; export one with "
                           f"`python -m export --target {want}` or use --backend {backend_for_format(fmt)}")
    return get_backend_class(name)(model_path, meta, threads=threads).load()


__all__ = ["BACKENDS", "Backend", "BackendInfo", "backend_for_format", "get_backend_class",
           "load_backend", "missing_runtime"]
