"""torch -> OpenVINO IR (`<stem>_openvino_model/<stem>.xml + .bin`).

Why through ONNX: the same clean static-shape graph the ONNX target ships (one exporter path to
trust), then `openvino.convert_model` + `save_model`. `save_model` compresses weights to FP16 by
default; here that happens only for `--precision fp16`, so an FP32 IR is really FP32. The golden
check compiles on CPU with an f32 inference-precision hint (CPUs with AMX/avx512_bf16 would
otherwise run bf16 and hide a real export difference). INT8 goes through quantize.ptq (NNCF).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edge.model.sidecar import file_sha256, write_sidecar
from export.common import ExportError, Source, compare, make_meta, quiet, staged_folder, timed
from export.formats import FORMATS
from export.onnx import DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME, build_onnx


def ov_run(xml: str | Path, x: np.ndarray, f32: bool = True) -> np.ndarray:
    """One OpenVINO CPU forward pass (f32 precision hint for golden checks)."""
    import openvino as ov
    core = ov.Core()
    cfg = {"INFERENCE_PRECISION_HINT": "f32"} if f32 else {}
    compiled = core.compile_model(str(xml), "CPU", cfg)
    return np.asarray(compiled(x)[compiled.output(0)])


def onnx_to_ir(onnx_path: str | Path, xml_path: str | Path, fp16: bool = False) -> Path:
    """Convert an ONNX file to IR with static shapes; FP16-compressed weights only when asked."""
    import openvino as ov
    with quiet():
        model = ov.convert_model(str(onnx_path))
    shape = model.input(0).get_partial_shape()
    if shape.is_dynamic:
        raise ExportError(f"{onnx_path}: OpenVINO sees a dynamic input shape {shape}; export with a static --imgsz")
    model.output(0).get_tensor().set_names({OUTPUT_NAME})
    ov.save_model(model, str(xml_path), compress_to_fp16=fp16)
    return Path(xml_path)


@timed("openvino")
def export_openvino(src: Source, out: str | Path, precision: str = "fp32", opset: int = DEFAULT_OPSET, **_) -> Path:
    """Export `src` to `out/<arch>_<S>_<precision>_openvino_model/`; returns the folder."""
    if precision not in ("fp32", "fp16"):
        raise ExportError(f"export_openvino: precision {precision!r}; int8 goes through quantize.ptq")
    fmt = FORMATS["openvino"]
    final = fmt.folder(out, src.arch, src.imgsz, precision)
    with staged_folder(final) as tmp, tempfile.TemporaryDirectory() as work:
        onnx_path, report = build_onnx(src, Path(work), "model.onnx", "fp32", opset)
        xml = onnx_to_ir(onnx_path, tmp / fmt.model_file(src.arch, src.imgsz, precision), fp16=precision == "fp16")
        x = src.example_input()
        report = compare(src.torch_output(x), ov_run(xml, x), precision, f"openvino {precision}")
        extra = {**report, "weights_file": xml.with_suffix(".bin").name,
                 "weights_sha256": file_sha256(xml.with_suffix(".bin")), "compress_to_fp16": precision == "fp16",
                 "exporter": "torch.onnx.export(dynamo=True) -> openvino.convert_model"}
        write_sidecar(tmp, make_meta(src, "openvino", precision, tmp, xml.name, (INPUT_NAME, OUTPUT_NAME), extra=extra))
    return final
