"""One INT8 recipe per backend, behind one interface, registered by backend name.

Why objects: every backend has its own well-kept quantizer (onnxruntime.quantization, NNCF, the AI
Edge Quantizer, TensorRT's explicit Q/DQ rules), its own FP32 twin for the fidelity report and,
for TensorRT, its own way of being checked on a machine without TensorRT. A recipe holds all of
that for one backend, so PTQ, QAT and `quantize.recheck` never branch on a backend's name:

- `build(...)`: post-training INT8 into a folder (PTQ);
- `from_qdq(...)`: the artifact from QAT's QDQ model (recipes with `qat = True`);
- `fp32_reference(...)`: the FP32 artifact of the same runtime the report compares against;
- `runnable(...)`: the INT8 artifact as this machine runs it (TensorRT: its QDQ ONNX on onnxruntime);
- `finish(...)`: what export adds to a finished folder (TensorRT: opset 17, recipe, checks).

Naming, formats and pip extras come from the one target table (`edge.model.targets`); a new backend's
INT8 is one subclass here with `@register_recipe`. `quantize.artifacts.stage_int8` is the one
step PTQ and QAT share around it (staged folder, sidecar, fidelity report).
"""
from __future__ import annotations

import difflib
import importlib
import shutil
from abc import ABC, abstractmethod
from pathlib import Path

import onnx

from edge.errors import BackendUnavailable, SpireEdgeError
from edge.model.sidecar import file_sha256, write_sidecar
from edge.model.targets import Target, target_for_backend
from export.common import make_meta
from export.openvino import onnx_to_ir
from export.onnx import free_hw
from export.tensorrt import finish_int8_folder
from export.tflite import io_names, torch_to_tflite
from quantize import calibration as cal
from quantize.artifacts import onnxruntime_view
from quantize.graph_opt import optimize_for_int8
from quantize.onnx_int8 import OrtInt8Config, qdq_counts, quantize_onnx

__all__ = ["Int8Recipe", "RECIPES", "register_recipe", "get_recipe", "resolve_backends", "check_runtime"]

RECIPES: dict[str, "Int8Recipe"] = {}


def register_recipe(cls: type["Int8Recipe"]) -> type["Int8Recipe"]:
    """Class decorator: make `cls` the INT8 recipe of its `backend`."""
    RECIPES[cls.backend] = cls()
    return cls


class Int8Recipe(ABC):
    """How one backend's INT8 artifact is made and judged.

    Attributes:
        backend: the `edge.model.targets` backend name (the registry key and `--backend` value).
        needs: (python module, pip extra) pairs the quantizer needs, checked before any work.
        quantizer: the tool, for messages and the sidecar.
        from_fp32_onnx: `build` starts from export's FP32 ONNX (else from the torch module).
        qat: `from_qdq` can turn QAT's QDQ model into this backend's artifact.
        ort_calibration: calibrated by onnxruntime.quantization, so `calibrate_method` applies and a
            histogram statistic (Percentile, Entropy) holds every calibration activation in memory.
        runtime: what runs the fidelity report here (the report's `runtime` field).
    """

    backend: str = ""
    needs: tuple[tuple[str, str], ...] = ()
    quantizer: str = ""
    from_fp32_onnx: bool = True
    qat: bool = False
    ort_calibration: bool = False

    @property
    def target(self) -> Target:
        return target_for_backend(self.backend)

    @property
    def runtime(self) -> str:
        return self.backend

    # ---- naming ---------------------------------------------------------------------------------
    def folder(self, out: str | Path, src, precision: str = "int8") -> Path:
        return self.target.folder(out, src.arch, src.imgsz, precision)

    def model_file(self, src, precision: str = "int8") -> str:
        return self.target.model_file(src.arch, src.imgsz, precision)

    def io_names(self, path: Path) -> tuple[str, str]:
        """The model's input and output names for its sidecar."""
        return "images", "heatmap"

    # ---- the steps --------------------------------------------------------------------------------
    def check_runtime(self) -> None:
        """Import what the quantizer needs; a missing one names the pip extra (one line)."""
        for module, extra in self.needs:
            try:
                importlib.import_module(module)
            except ImportError:
                raise BackendUnavailable(f"INT8 for {self.backend} needs {module}, which is not installed: "
                                         f"pip install 'spire-edge[{extra}]'") from None

    @abstractmethod
    def build(self, src, onnx32: Path | None, source, path: Path, ignored_scope: tuple[str, ...],
              calibrate_method: str) -> dict:
        """Quantize `src` (or `onnx32`) on the calibration `source` into `path`; returns the sidecar extra."""

    def from_qdq(self, qdq: Path, qdq_u8: Path, path: Path) -> dict:
        """Write this backend's artifact at `path` from QAT's QDQ model (signed `qdq`, uint8 `qdq_u8`)."""
        raise SpireEdgeError(f"QAT does not export {self.backend}; use python -m quantize.ptq --backend {self.backend}")

    def fp32_reference(self, src, onnx32: Path, work: Path) -> Path:
        """An FP32 artifact of the same runtime in `work/` (the fidelity report's reference)."""
        folder = Path(work) / f"fp32_{self.backend}"
        folder.mkdir(parents=True, exist_ok=True)
        name = self._fp32_file(src, onnx32, folder)
        write_sidecar(folder, make_meta(src, self.target.format, "fp32", folder, name, self.io_names(folder / name)))
        return folder

    def _fp32_file(self, src, onnx32: Path, folder: Path) -> str:
        shutil.copyfile(onnx32, folder / "fp32.onnx")
        return "fp32.onnx"

    def runnable(self, folder: Path, work: Path) -> Path:
        """The INT8 artifact as this machine can run it."""
        return Path(folder)

    def finish(self, folder: Path) -> None:
        """export's finishing step for a complete INT8 folder (none for most backends)."""


def _input_hw(path: Path) -> str:
    """Calibrated at S, the `onnx` target's INT8 file then takes any frame size, as its FP32 does."""
    return "any (multiples of 32)" if free_hw(path) else "static"


@register_recipe
class OnnxRuntimeRecipe(Int8Recipe):
    backend = "onnxruntime"
    needs = (("onnx", "onnx"), ("onnxruntime", "onnx"), ("onnxscript", "onnx"))
    quantizer = "onnxruntime.quantization QDQ (u8 activations, s8 per-channel weights)"
    qat = True
    ort_calibration = True

    def build(self, src, onnx32, source, path, ignored_scope, calibrate_method) -> dict:
        # onnxruntime only: its uint8 5-D transpose is slow (OpenVINO crashes on the Gather form)
        rewritten = Path(onnx32).with_name("fp32_ort_int8_ready.onnx")
        rewrites = optimize_for_int8(str(onnx32), str(rewritten))
        cfg = OrtInt8Config(ignored_scope=tuple(ignored_scope), calibrate_method=calibrate_method)
        quantize_onnx(rewritten, path, cal.ort_reader(source.with_progress("calibration (onnxruntime)")), cfg)
        return dict(activations="uint8 asymmetric", weights="int8 symmetric per-channel", format="QDQ",
                    calibrate_method=calibrate_method, ops=qdq_counts(path), fp32_rewrites=rewrites,
                    input_hw=_input_hw(path))

    def from_qdq(self, qdq, qdq_u8, path) -> dict:
        return {"fp32_rewrites": optimize_for_int8(str(qdq_u8), str(path)), "ops": qdq_counts(path),
                "input_hw": _input_hw(path)}

    def _fp32_file(self, src, onnx32: Path, folder: Path) -> str:
        name = super()._fp32_file(src, onnx32, folder)
        free_hw(folder / name)  # the reference runs frames as the INT8 file does: at their own size
        return name


@register_recipe
class OpenVINORecipe(Int8Recipe):
    backend = "openvino"
    needs = (("onnx", "onnx"), ("onnxscript", "onnx"), ("openvino", "openvino"), ("nncf", "openvino"))
    quantizer = "NNCF post-training quantization"
    qat = True

    def build(self, src, onnx32, source, path, ignored_scope, calibrate_method) -> dict:
        from quantize.openvino_int8 import NncfConfig, fake_quantize_count, quantize_openvino

        quantize_openvino(onnx32, path, cal.nncf_dataset(source.with_progress("calibration (NNCF)")), len(source),
                          NncfConfig(ignored_scope=tuple(ignored_scope)))
        return dict(fake_quantize=fake_quantize_count(path), weights_file=path.with_suffix(".bin").name,
                    weights_sha256=file_sha256(path.with_suffix(".bin")), compress_to_fp16=False)

    def from_qdq(self, qdq, qdq_u8, path) -> dict:
        import openvino as ov

        ov.save_model(ov.convert_model(str(qdq_u8)), str(path), compress_to_fp16=False)
        return {}

    def _fp32_file(self, src, onnx32, folder) -> str:
        onnx_to_ir(onnx32, folder / "fp32.xml")
        return "fp32.xml"


@register_recipe
class TFLiteRecipe(Int8Recipe):
    backend = "tflite"
    needs = (("litert_torch", "tflite"), ("ai_edge_litert", "tflite"), ("torchao", "tflite"))
    quantizer = "litert-torch pt2e full-integer"
    from_fp32_onnx = False

    def build(self, src, onnx32, source, path, ignored_scope, calibrate_method) -> dict:
        from quantize.tflite_int8 import quantize_tflite

        quantize_tflite(src.model, source, path, ignored_scope=tuple(ignored_scope))
        return dict(activations="int8", weights="int8 symmetric per-channel", input="int8 (scale/zero point "
                    "in the model; the edge backend quantizes)", delegate="XNNPACK")

    def io_names(self, path: Path) -> tuple[str, str]:
        in_name, out_name, _, _ = io_names(path)
        return in_name, out_name

    def _fp32_file(self, src, onnx32, folder) -> str:
        torch_to_tflite(src.model, src.example_input(), folder / "fp32.tflite")
        return "fp32.tflite"


@register_recipe
class TensorRTRecipe(Int8Recipe):
    """Signed symmetric QDQ for TensorRT's explicit quantization; checked here through onnxruntime."""

    backend = "tensorrt"
    needs = (("onnx", "onnx"), ("onnxruntime", "onnx"), ("onnxscript", "onnx"), ("polygraphy", "tensorrt"))
    quantizer = "onnxruntime.quantization QDQ, signed symmetric (TensorRT explicit quantization)"
    qat = True
    ort_calibration = True

    @property
    def runtime(self) -> str:
        return "onnxruntime (QDQ view; no TensorRT here)"

    def build(self, src, onnx32, source, path, ignored_scope, calibrate_method) -> dict:
        from quantize.tensorrt_int8 import offline_report, quantize_tensorrt

        quantize_tensorrt(onnx32, path, cal.ort_reader(source.with_progress("calibration (TensorRT QDQ)")),
                          tuple(ignored_scope), calibrate_method)
        report = offline_report(path, lint=False)
        if report["checker"] != "ok" or report["rule_violations"]:
            first = report["rule_violations"][:1] or [report["checker"]]
            raise SpireEdgeError(f"{path.name}: breaks TensorRT's INT8 rules ({first[0]}); report it with the model")
        return dict(activations="int8 symmetric", weights="int8 symmetric per-channel", format="QDQ",
                    ops=qdq_counts(path), qdq_rules=report)

    def from_qdq(self, qdq, qdq_u8, path) -> dict:
        from quantize.tensorrt_int8 import symmetrize_qdq

        onnx.save(symmetrize_qdq(onnx.load(str(qdq))), str(path))
        return {"ops": qdq_counts(path)}

    def fp32_reference(self, src, onnx32, work) -> Path:
        """The FP32 ONNX on onnxruntime: the INT8 QDQ model runs there too (`runnable`)."""
        return RECIPES["onnxruntime"].fp32_reference(src, onnx32, work)

    def runnable(self, folder, work) -> Path:
        return onnxruntime_view(Path(folder), Path(work))

    def finish(self, folder) -> None:
        finish_int8_folder(folder)


def get_recipe(backend: str) -> Int8Recipe:
    """The recipe registered for a backend name (resolve_backends checks names first)."""
    return RECIPES[resolve_backends(backend)[0]]


def recipe_for_format(fmt: str) -> Int8Recipe:
    """The recipe whose artifacts have sidecar `format` `fmt` (e.g. an INT8 folder being rechecked)."""
    for r in RECIPES.values():
        if r.target.format == fmt:
            return r
    raise SpireEdgeError(f"format {fmt!r} has no INT8 recipe; known: {', '.join(r.target.format for r in RECIPES.values())}")


def resolve_backends(backend: str | list[str] | tuple[str, ...]) -> list[str]:
    """'all', one name, or a comma list -> validated backend names (one-line error otherwise)."""
    names = [backend] if isinstance(backend, str) else list(backend)
    names = [n.strip().lower() for part in names for n in str(part).split(",") if n.strip()]
    if names == ["all"]:
        return list(RECIPES)
    for n in names:
        if n not in RECIPES:
            close = difflib.get_close_matches(n, list(RECIPES) + ["all"], n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpireEdgeError(f"unknown --backend {n!r}{hint}; choose one of {', '.join(RECIPES)} or all")
    return names or list(RECIPES)


def check_runtime(backend: str) -> None:
    """Import what the backend's quantizer needs; a missing one names the pip extra."""
    RECIPES[backend].check_runtime()

