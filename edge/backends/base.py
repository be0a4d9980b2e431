"""The one interface every runtime adapter implements, so the predictor never knows which runtime runs.

A backend owns a model artifact (resolved through its sidecar), imports its runtime only inside
`load()` (a board image carries one runtime, not four), and turns a preprocessed float32 NCHW
batch of one into the raw stride-4 heatmap. Quantisation scales, layouts and dtypes are the
backend's business: callers always pass float32 (1, C, S, S) and get float32 (1, 1, S/4, S/4).
"""
from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import BackendUnavailable, SidecarError, SpireEdgeError

EXPORT_HINT = "re-export it with `python -m export --weights CHECKPOINT --target {fmt}` (writes model + metadata.json)"


def missing_runtime(runtime: str, extra: str, detail: str = "") -> BackendUnavailable:
    """The one-line error for a runtime that is not importable, naming the pip extra."""
    tail = f" ({detail})" if detail else ""
    return BackendUnavailable(f"{runtime} is not installed: pip install 'spire-edge[{extra}]'{tail}")


class Backend(abc.ABC):
    """A loaded model behind one small interface: `load()`, `input_shape`, `infer(x)`.

    Args:
        model_path: the artifact folder (or the model file inside it) next to its metadata.json.
        meta: the artifact's ModelMeta (from edge.model.sidecar.read_sidecar).
        threads: CPU threads for the runtime (None: the runtime's default).
    """

    #: runtime name as used on the command line (`--backend`); its row in edge.model.targets says the rest
    name: str = ""
    #: the runtime can run the model at another input H×W (native-resolution frames, see edge.inference.predictor)
    dynamic_input: bool = False

    @property
    def target(self):
        """This backend's row of the target table (`edge.model.targets`)."""
        from edge.model.targets import target_for_backend

        return target_for_backend(self.name)

    @property
    def format(self) -> str:
        """The sidecar `format` this backend runs."""
        return self.target.format

    @property
    def extra(self) -> str:
        """The pip extra that installs the runtime."""
        return self.target.extra

    def __init__(self, model_path: str | Path, meta: Any, threads: int | None = None):
        self.model_path = Path(model_path)
        self.meta = meta
        self.threads = int(threads) if threads else None
        self.folder = self.model_path if self.model_path.is_dir() else self.model_path.parent
        self._loaded = False

    # ----------------------------------------------------------------- shapes
    #: the square input the Predictor tiles and letterboxes to, when a dynamic backend is set to one
    _square: tuple | None = None

    def set_input_size(self, imgsz: int) -> None:
        """The square input the Predictor tiles and letterboxes to (dynamic backends: any size runs)."""
        shape = self.sidecar_shape
        self._square = (shape[0], shape[1], int(imgsz), int(imgsz))

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(1, C, S, S): the sidecar's, or the size `set_input_size` chose (the layout callers feed, NCHW)."""
        return self._square or self.sidecar_shape

    @property
    def sidecar_shape(self) -> tuple[int, int, int, int]:
        """(1, C, S, S) as the sidecar records it."""
        shape = tuple(int(v) for v in self.meta.input["shape"])
        if len(shape) != 4:
            raise SidecarError(f"{self.folder / 'metadata.json'}: input.shape {list(shape)} is not [1,C,S,S]; "
                               + EXPORT_HINT.format(fmt=self.format))
        return shape  # type: ignore[return-value]

    @property
    def input_spec(self) -> dict:
        """name / shape / dtype of the model input (the sidecar's `input` block)."""
        return {"name": self.meta.input.get("name", "input"), "shape": list(self.input_shape),
                "dtype": "float32", "layout": "NCHW"}

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        _, _, s, _ = self.input_shape
        stride = int((getattr(self.meta, "output", None) or {}).get("stride", 4))
        return (1, 1, s // stride, s // stride)

    # ------------------------------------------------------------------ files
    def model_file(self) -> Path:
        """The file (or IR .xml) the runtime opens, checked to exist."""
        name = getattr(self.meta, "model_file", None)
        if not name:
            raise SidecarError(f"{self.folder / 'metadata.json'}: no model_file recorded; "
                               + EXPORT_HINT.format(fmt=self.format))
        path = self.folder / name
        if not path.is_file():
            raise SidecarError(f"{path}: model file named in metadata.json is missing; "
                               + EXPORT_HINT.format(fmt=self.format))
        return path

    # ---------------------------------------------------------------- running
    def load(self) -> "Backend":
        """Import the runtime and build the session; idempotent. Returns self."""
        if not self._loaded:
            try:
                self._load()
            except SpireEdgeError:
                raise
            except Exception as e:  # the runtime choked on a file the sidecar could not vouch for: one line
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
                raise SidecarError(f"{self.model_path}: {self.name} cannot load this model ({type(e).__name__}: "
                                   f"{first}); copy the whole artifact folder again or "
                                   + EXPORT_HINT.format(fmt=self.format)) from e
            self._loaded = True
        return self

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Run one preprocessed batch: float32 (1, C, S, S) -> float32 (1, 1, S/4, S/4)."""
        if not self._loaded:
            self.load()
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        out_shape = self.output_shape
        if tuple(x.shape) != self.input_shape:
            if not (self.dynamic_input and tuple(x.shape[:2]) == tuple(self.input_shape[:2])):
                raise ValueError(f"{self.name}: input shape {tuple(x.shape)} != model input {self.input_shape}")
            stride = int((getattr(self.meta, "output", None) or {}).get("stride", 4))
            out_shape = (1, 1, x.shape[2] // stride, x.shape[3] // stride)
        y = np.asarray(self._infer(np.ascontiguousarray(x)), dtype=np.float32)
        return y.reshape(out_shape) if y.size == int(np.prod(out_shape)) else y

    @abc.abstractmethod
    def _load(self) -> None:
        """Import the runtime (raising `missing_runtime(...)` when absent) and build the session."""

    @abc.abstractmethod
    def _infer(self, x: np.ndarray) -> np.ndarray:
        """Runtime-specific forward pass on a contiguous float32 NCHW array."""

    def check_input(self, shape: list | tuple, where: str = "") -> None:
        """Refuse a model whose real input shape differs from its sidecar's (a stale metadata.json)."""
        real = [int(v) if isinstance(v, (int, np.integer)) and int(v) > 0 else None for v in shape]
        want = list(self.sidecar_shape)  # the file must match its own sidecar
        if len(real) != 4:
            raise SidecarError(f"{self.folder / 'metadata.json'}: model input has shape {list(shape)}, "
                               f"sidecar says {want}; " + EXPORT_HINT.format(fmt=self.format))
        nchw = [d for d in real]
        nhwc = [real[0], real[3], real[1], real[2]]
        ok = any(all(a is None or a == b for a, b in zip(cand, want)) for cand in (nchw, nhwc))
        if not ok:
            raise SidecarError(f"{self.folder / 'metadata.json'}: model{where} input is {list(shape)} "
                               f"but the sidecar says {want}; " + EXPORT_HINT.format(fmt=self.format))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_path}, threads={self.threads})"
