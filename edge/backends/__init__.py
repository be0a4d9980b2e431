"""Backend adapters: one file per runtime, each importing its runtime lazily.

Which backend runs which sidecar `format`, from which module, installed by which pip extra, is
the target table's business (`edge.model.targets.TARGETS`); `BACKENDS` is that table keyed by backend
name. `load_backend` picks the row from the artifact's metadata.json when no backend is named, so
`--model weights/x_openvino_model` just works. Importing this package imports no runtime.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from edge.errors import SidecarError, SpireEdgeError
from edge.model.targets import Target, backends

from .base import Backend, missing_runtime


class _Backends(Mapping):
    """backend name -> its `edge.model.targets.Target` row (a live view: registered rows show up)."""

    def __getitem__(self, name: str) -> Target:
        return backends()[name]

    def __iter__(self):
        return iter(backends())

    def __len__(self) -> int:
        return len(backends())


BACKENDS: Mapping[str, Target] = _Backends()


def backend_for_format(fmt: str) -> str:
    """The backend name that runs a sidecar `format` (one-line error for an unknown one)."""
    by_format = {t.format: name for name, t in BACKENDS.items()}
    if fmt in by_format:
        return by_format[fmt]
    raise SidecarError(f"format {fmt!r} has no edge backend (known: {', '.join(by_format)}); "
                       "export the checkpoint to onnx, openvino, tflite or tensorrt first")


def get_backend_class(name: str) -> type[Backend]:
    """The Backend subclass for a backend name (imports its module, not its runtime)."""
    if name not in BACKENDS:
        raise SpireEdgeError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    row = BACKENDS[name]
    module, cls = row.backend_class.split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as e:  # the torch row's module needs torch; a board has none
        raise missing_runtime(row.runtime_module, row.extra, str(e)) from None


def load_backend(model_path: str | Path, backend: str | None = None, threads: int | None = None,
                 meta=None) -> Backend:
    """Read the artifact's sidecar, pick the backend and return it loaded.

    Args:
        model_path: an artifact folder or the model file inside it (next to metadata.json).
        backend: a `--backend` name (edge.model.targets: 'onnxruntime', 'openvino', 'tflite', 'tensorrt', 'torch');
            None: the one that runs the sidecar's format.
        threads: CPU threads for the runtime.
        meta: an already read ModelMeta (skips reading the sidecar again).
    Raises:
        SidecarError: missing / mismatching sidecar; BackendUnavailable: runtime not installed.
    """
    if meta is None:
        from edge.model.sidecar import read_sidecar

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


__all__ = ["BACKENDS", "Backend", "backend_for_format", "get_backend_class", "load_backend", "missing_runtime"]
