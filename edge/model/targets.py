"""The one table of deployment targets: every place that needs to know a target reads its row here.

A target is an artifact format plus the runtime that runs it. Its row says how the artifact is
named (folder and file suffix, the companion files a user may pass instead of the model file),
which `edge.backends` class runs it (imported only when a model is loaded), which Python module
means the runtime is installed and which pip extra installs it, at which precisions it is
exported and benchmarked, how `export` builds it, and whether this CPU machine can run it.
`edge.backends`, `edge.model.sidecar`, `edge.model.zoo`, `export.formats`, `quantize` and `benchmarks` derive
their lookups from `TARGETS`, so a new target is one row here plus its backend module (and an
exporter module, and an INT8 recipe in `quantize.recipes` when it has one).

The torch row runs a training checkpoint (`best.pt`): its backend lives in `spire.torch_backend`
(named here as data, so edge never imports spire or torch; it is imported only when a checkpoint
is run, and only where torch is installed).

stdlib only.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import SpireEdgeError

__all__ = ["Target", "TARGETS", "PRECISIONS", "get_target", "target_for_backend", "register_target", "backends"]

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Target:
    """One row of the target table.

    Args:
        format: the sidecar `format` and the `python -m export --target` name.
        backend: the `--backend` name of the runtime that runs it.
        backend_class: "module:Class" of its `edge.backends.Backend` (imported when a model loads).
        runtime_module: the Python module whose presence means the runtime is installed.
        extra: the pip extra that installs the runtime (`spire-edge[<extra>]`).
        folder_suffix: appended to the stem for the artifact folder (`hrpe_512_fp32_onnx/`).
        file_suffix: the model file's suffix inside the folder (`.xml` for OpenVINO IR).
        companions: suffixes of files a user may pass instead of the model file.
        precisions: the precisions it is exported at (empty: not an export target).
        bench_precisions: the precisions `python -m benchmarks.run` measures by default.
        exporter: "module:function" of its exporter in `export` (None: not exported).
        toolchain: the distributions whose versions an export of it prints.
        runs_here: whether a CPU development machine runs it (a TensorRT engine needs its GPU).
        engine_recipe: artifacts carry `build_engine.sh`, which builds the runnable engine on the device.
        aliases: other names users type for it (`--backend`, `edge.model.zoo.normalize_format`).
    """

    format: str
    backend: str
    backend_class: str
    runtime_module: str
    extra: str
    folder_suffix: str = ""
    file_suffix: str = ""
    companions: tuple[str, ...] = ()
    precisions: tuple[str, ...] = PRECISIONS
    bench_precisions: tuple[str, ...] = ("fp32", "int8")
    exporter: str | None = None
    toolchain: tuple[str, ...] = ()
    runs_here: bool = True
    engine_recipe: bool = False
    aliases: tuple[str, ...] = field(default_factory=tuple)

    # ---- artifact naming (python -m export, quantize) ---------------------------------------
    def stem(self, arch: str, imgsz: int, precision: str) -> str:
        """`<arch>_<imgsz>_<precision>`, e.g. `hrpe_lite_512_int8`."""
        return f"{arch}_{int(imgsz)}_{precision}"

    def folder(self, out: str | Path, arch: str, imgsz: int, precision: str) -> Path:
        """The artifact folder, e.g. `runs/export/hrpe_lite_512_int8_openvino_model`."""
        return Path(out) / f"{self.stem(arch, imgsz, precision)}{self.folder_suffix}"

    def model_file(self, arch: str, imgsz: int, precision: str) -> str:
        """The model file name inside the folder, e.g. `hrpe_lite_512_int8.xml`."""
        return f"{self.stem(arch, imgsz, precision)}{self.file_suffix}"

    @property
    def exportable(self) -> bool:
        return self.exporter is not None

    def next_step(self, folder: str | Path) -> str:
        """What to run after exporting `folder` (printed by export and quantize)."""
        folder = Path(folder)
        if self.engine_recipe:
            return (f"copy {folder} to the Jetson, run `bash {folder.name}/build_engine.sh` there, then "
                    f"`python -m edge.run --backend {self.backend} --model {folder.name}`")
        return f"python -m edge.run --model {folder}"


_ONNX_TOOLS = ("torch", "onnx", "onnxruntime")

TARGETS: dict[str, Target] = {t.format: t for t in (
    Target("torch", "torch", "spire.torch_backend:TorchBackend", "torch", "train", file_suffix=".pt",
           precisions=(), bench_precisions=("fp32",), aliases=("pt", "pytorch")),
    Target("onnx", "onnxruntime", "edge.backends.onnxruntime:OnnxRuntimeBackend", "onnxruntime", "onnx",
           "_onnx", ".onnx", exporter="export.onnx:export_onnx", toolchain=_ONNX_TOOLS, aliases=("ort",)),
    Target("openvino", "openvino", "edge.backends.openvino:OpenVINOBackend", "openvino", "openvino",
           "_openvino_model", ".xml", companions=(".xml", ".bin"), exporter="export.openvino:export_openvino",
           toolchain=("torch", "openvino"), aliases=("ov",)),
    Target("tflite", "tflite", "edge.backends.tflite:TFLiteBackend", "ai_edge_litert", "tflite",
           "_tflite", ".tflite", exporter="export.tflite:export_tflite",
           toolchain=("torch", "litert-torch", "ai-edge-litert"), aliases=("litert", "tflite-runtime")),
    # TensorRT: no fp32 benchmark row (on a Jetson FP16 is the floating-point baseline)
    Target("tensorrt", "tensorrt", "edge.backends.tensorrt:TensorRTBackend", "tensorrt", "tensorrt",
           "_tensorrt", ".onnx", companions=(".onnx", ".engine", ".plan", ".sh"), bench_precisions=("fp16", "int8"),
           exporter="export.tensorrt:export_tensorrt", toolchain=("torch", "onnx", "polygraphy"), runs_here=False,
           engine_recipe=True, aliases=("trt",)),
)}


def register_target(target: Target) -> Target:
    """Add (or replace) a row, e.g. a plugin's runtime or a test's fake backend; returns it."""
    TARGETS[target.format] = target
    return target


def backends() -> dict[str, Target]:
    """backend name -> row, in table order."""
    return {t.backend: t for t in TARGETS.values()}


def _names() -> dict[str, Target]:
    names: dict[str, Target] = {}
    for t in TARGETS.values():
        for n in (t.format, t.backend, *t.aliases):
            names.setdefault(n.lower(), t)
    return names


def get_target(name: str, kind: str = "target") -> Target:
    """The row for a format, backend or alias name (case-insensitive); one-line error with a suggestion."""
    key = str(name).strip().lower()
    names = _names()
    if key in names:
        return names[key]
    close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise SpireEdgeError(f"unknown {kind} {name!r}{hint}; choose one of {', '.join(TARGETS)}")


def target_for_backend(backend: str) -> Target:
    """The row whose runtime is `backend` (exact `--backend` name)."""
    rows = backends()
    if backend not in rows:
        raise SpireEdgeError(f"unknown backend {backend!r}; choose one of: {', '.join(rows)}")
    return rows[backend]
