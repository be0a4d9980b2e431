"""One INT8 artifact per backend, and the FP32 reference it is judged against.

Why a table: `python -m quantize.ptq --backend all`, `python -m export --precision int8` and QAT
all produce the same four artifacts (same folder names, sidecars and checks as `export`), so the
per-backend differences — which quantizer, which file, which FP32 twin for the fidelity report,
which runtime packages — live in one place: `BACKENDS`.

Layout (docs/ARCHITECTURE.md): `<out>/<arch>_<S>_int8_onnx/`, `..._int8_openvino_model/`,
`..._int8_tflite/`, `..._int8_tensorrt/` — each with its model, `metadata.json` (precision int8,
calibration {source, frames, split}) and `fidelity.json`.
"""
from __future__ import annotations

import importlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from edge.errors import BackendUnavailable, SpireEdgeError
from edge.sidecar import file_sha256, read_sidecar, write_sidecar
from export.common import make_meta
from export.formats import FORMATS
from export.onnx import build_onnx
from export.openvino import onnx_to_ir
from export.tensorrt import finish_int8_folder
from export.tflite import io_names, torch_to_tflite


@dataclass(frozen=True)
class BackendSpec:
    """How one backend's INT8 artifact is made.

    format: export format (artifact folder naming and sidecar `format`).
    needs: (python module, pip extra) pairs the quantizer needs, checked before any work.
    quantizer: the tool, for messages and the sidecar.
    """

    format: str
    needs: tuple[tuple[str, str], ...]
    quantizer: str


BACKENDS: dict[str, BackendSpec] = {
    "onnxruntime": BackendSpec("onnx", (("onnx", "onnx"), ("onnxruntime", "onnx"), ("onnxscript", "onnx")),
                               "onnxruntime.quantization QDQ (u8 activations, s8 per-channel weights)"),
    "openvino": BackendSpec("openvino", (("onnx", "onnx"), ("onnxscript", "onnx"), ("openvino", "openvino"),
                                         ("nncf", "openvino")), "NNCF post-training quantization"),
    "tflite": BackendSpec("tflite", (("litert_torch", "tflite"), ("ai_edge_litert", "tflite"), ("torchao", "tflite")),
                          "litert-torch pt2e full-integer"),
    "tensorrt": BackendSpec("tensorrt", (("onnx", "onnx"), ("onnxruntime", "onnx"), ("onnxscript", "onnx"),
                                         ("polygraphy", "tensorrt")),
                            "onnxruntime.quantization QDQ, signed symmetric (TensorRT explicit quantization)"),
}


def resolve_backends(backend: str | list[str] | tuple[str, ...]) -> list[str]:
    """'all', one name, or a comma list -> validated backend names (one-line error otherwise)."""
    import difflib

    names = [backend] if isinstance(backend, str) else list(backend)
    names = [n.strip().lower() for part in names for n in str(part).split(",") if n.strip()]
    if names == ["all"]:
        return list(BACKENDS)
    for n in names:
        if n not in BACKENDS:
            close = difflib.get_close_matches(n, list(BACKENDS) + ["all"], n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpireEdgeError(f"unknown --backend {n!r}{hint}; choose one of {', '.join(BACKENDS)} or all")
    return names or list(BACKENDS)


def check_runtime(backend: str) -> None:
    """Import what the backend's quantizer needs; a missing one names the pip extra."""
    for module, extra in BACKENDS[backend].needs:
        try:
            importlib.import_module(module)
        except ImportError:
            raise BackendUnavailable(f"INT8 for {backend} needs {module}, which is not installed: "
                                     f"pip install 'spire-edge[{extra}]'") from None


def folder_for(out: str | Path, src, backend: str, precision: str = "int8") -> Path:
    return FORMATS[BACKENDS[backend].format].folder(out, src.arch, src.imgsz, precision)


def file_for(src, backend: str, precision: str = "int8") -> str:
    return FORMATS[BACKENDS[backend].format].model_file(src.arch, src.imgsz, precision)


def fp32_onnx(src, folder: Path) -> Path:
    """The FP32 ONNX every ONNX-based quantizer starts from (export's own exporter, golden-checked)."""
    path, _ = build_onnx(src, Path(folder), "fp32.onnx", "fp32")
    return path


def build_int8(backend: str, src, onnx32: Path | None, source, folder: Path, ignored_scope: tuple[str, ...] = (),
               calibrate_method: str = "MinMax") -> tuple[str, dict]:
    """Quantize into `folder`; returns (model file name, sidecar extra)."""
    from quantize import calibration as cal

    name = file_for(src, backend)
    path = Path(folder) / name
    extra: dict = {"quantizer": BACKENDS[backend].quantizer, "ignored_scope": list(ignored_scope),
                   "fp32_head": True}
    if backend == "onnxruntime":
        from quantize.onnx_int8 import OrtInt8Config, qdq_counts, quantize_onnx

        from quantize.graph_opt import optimize_for_int8

        # onnxruntime only: its uint8 5-D transpose is slow (OpenVINO crashes on the Gather form)
        rewritten = Path(onnx32).with_name("fp32_ort_int8_ready.onnx")
        rewrites = optimize_for_int8(str(onnx32), str(rewritten))
        cfg = OrtInt8Config(ignored_scope=tuple(ignored_scope), calibrate_method=calibrate_method)
        quantize_onnx(rewritten, path, cal.ort_reader(source.with_progress("calibration (onnxruntime)")), cfg)
        extra.update(activations="uint8 asymmetric", weights="int8 symmetric per-channel", format="QDQ",
                     calibrate_method=calibrate_method, ops=qdq_counts(path), fp32_rewrites=rewrites)
    elif backend == "tensorrt":
        from quantize.onnx_int8 import qdq_counts
        from quantize.tensorrt_int8 import offline_report, quantize_tensorrt

        quantize_tensorrt(onnx32, path, cal.ort_reader(source.with_progress("calibration (TensorRT QDQ)")),
                          tuple(ignored_scope), calibrate_method)
        extra.update(activations="int8 symmetric", weights="int8 symmetric per-channel", format="QDQ",
                     ops=qdq_counts(path), qdq_rules=_checked(offline_report(path, lint=False), path))
    elif backend == "openvino":
        from quantize.openvino_int8 import NncfConfig, fake_quantize_count, quantize_openvino

        quantize_openvino(onnx32, path, cal.nncf_dataset(source.with_progress("calibration (NNCF)")), len(source),
                          NncfConfig(ignored_scope=tuple(ignored_scope)))

        extra.update(fake_quantize=fake_quantize_count(path), weights_file=path.with_suffix(".bin").name,
                     weights_sha256=file_sha256(path.with_suffix(".bin")), compress_to_fp16=False)
    elif backend == "tflite":
        from quantize.tflite_int8 import quantize_tflite

        quantize_tflite(src.model, source, path, ignored_scope=tuple(ignored_scope))
        extra.update(activations="int8", weights="int8 symmetric per-channel", input="int8 (scale/zero point "
                     "in the model; the edge backend quantizes)", delegate="XNNPACK")
    return name, extra


def _checked(report: dict, path: Path) -> dict:
    if report["checker"] != "ok" or report["rule_violations"]:
        first = report["rule_violations"][:1] or [report["checker"]]
        raise SpireEdgeError(f"{path.name}: breaks TensorRT's INT8 rules ({first[0]}); report it with the model")
    return report


def finish_tensorrt(folder: Path) -> Path:
    """export's own finishing step: opset <= 17 for TensorRT 8.x, build_engine.sh recipe, lint."""
    return finish_int8_folder(folder)


def write_meta(src, backend: str, folder: Path, model_file: str, precision: str, calibration: dict | None,
               extra: dict) -> Path:
    """The artifact's metadata.json (export's sidecar builder, so INT8 and FP32 sidecars agree)."""
    in_name, out_name = "images", "heatmap"
    if BACKENDS[backend].format == "tflite":
        in_name, out_name, _, _ = io_names(Path(folder) / model_file)
    meta = make_meta(src, BACKENDS[backend].format, precision, folder, model_file, in_name, out_name,
                     calibration=calibration, extra=extra)
    return write_sidecar(folder, meta)


def fp32_reference(backend: str, src, onnx32: Path, work: Path) -> Path:
    """An FP32 artifact of the same runtime in `work/` (the fidelity report's reference)."""
    folder = Path(work) / f"fp32_{backend}"
    folder.mkdir(parents=True, exist_ok=True)
    fmt = "onnx" if backend == "tensorrt" else BACKENDS[backend].format
    if fmt == "onnx":
        name = "fp32.onnx"
        shutil.copyfile(onnx32, folder / name)
    elif fmt == "openvino":
        name = "fp32.xml"
        onnx_to_ir(onnx32, folder / name)
    else:
        name = "fp32.tflite"
        torch_to_tflite(src.model, src.example_input(), folder / name)
    write_meta(src, "onnxruntime" if fmt == "onnx" else backend, folder, name, "fp32", None, {})
    return folder


def runnable_int8(backend: str, folder: Path, work: Path) -> Path:
    """The INT8 artifact as this machine can run it: itself, or for TensorRT its QDQ ONNX on onnxruntime."""
    return Path(folder) if backend != "tensorrt" else onnxruntime_view(Path(folder), Path(work))


def onnxruntime_view(folder: Path, work: Path) -> Path:
    """A copy of a TensorRT artifact's QDQ ONNX whose sidecar (derived from the artifact's) says onnx."""
    import dataclasses

    meta = read_sidecar(folder, verify=False)
    view = work / "int8_tensorrt_on_onnxruntime"
    view.mkdir(parents=True, exist_ok=True)
    from edge.integrity import needed_files

    names = needed_files(folder, "onnx", meta.model_file)  # the ONNX and its external data, not recipe or engine
    for name in names:
        shutil.copyfile(folder / name, view / name)
    write_sidecar(view, dataclasses.replace(meta, format="onnx", extra={**meta.extra, "view_of": "tensorrt artifact"},
                                            files={n: h for n, h in meta.files.items() if n in names}))
    return view
