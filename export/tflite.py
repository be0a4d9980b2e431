"""torch -> TFLite / LiteRT (`<stem>_tflite/<stem>.tflite`), FP32 and FP16; INT8 via quantize.ptq.

Why this toolchain: `litert-torch` converts a torch module straight to .tflite (no TensorFlow,
no onnx2tf round trip, which mangles layouts), and `ai-edge-litert` runs it with numpy 2 and
the XNNPACK delegate. FP16 is the standard TFLite "float16 quantization" (FP16 weights with
Dequantize ops, FP32 I/O) applied by `ai-edge-quantizer`'s float-casting recipe; XNNPACK runs it
in FP16 where the CPU has native FP16 arithmetic (ARMv8.2+, e.g. Raspberry Pi 5, Jetson) and in
FP32 elsewhere. The model keeps NCHW float32 I/O (the converter inserts the transposes), so every
backend feeds the same (1, C, S, S) array. The old `tflite-runtime` wheel (2.14, numpy 1.x only)
is used only as a fallback interpreter on board images that still have it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.model.sidecar import write_sidecar
from export.common import ExportError, Source, compare, make_meta, quiet, staged_folder, timed
from export.formats import FORMATS

FP16_RECIPE = [{
    "regex": ".*", "operation": "*", "algorithm_key": "float_casting",
    "op_config": {"weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
                  "compute_precision": "FLOAT", "explicit_dequantize": True},
}]


def interpreter(path: str | Path, threads: int = 1):
    """A LiteRT interpreter (ai-edge-litert; tflite-runtime fallback), tensors allocated."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise ExportError("no TFLite interpreter: pip install 'spire-edge[tflite]' (ai-edge-litert)") from None
    it = Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    return it


def tflite_run(path: str | Path, x: np.ndarray, threads: int = 1) -> np.ndarray:
    """One forward pass of a float-I/O .tflite model (for golden checks)."""
    it = interpreter(path, threads)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    it.set_tensor(inp["index"], x.astype(inp["dtype"]))
    it.invoke()
    return np.array(it.get_tensor(out["index"]), dtype=np.float32)


def io_names(path: str | Path) -> tuple[str, str, list, list]:
    """(input name, output name, input shape, output shape) as the interpreter sees them."""
    it = interpreter(path)
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    return i["name"], o["name"], [int(v) for v in i["shape"]], [int(v) for v in o["shape"]]


def torch_to_tflite(model, x: np.ndarray, path: str | Path, quant_config=None) -> Path:
    """Convert an eval-mode module (or a pt2e-quantized one with `quant_config`) to .tflite."""
    import litert_torch
    import torch
    path = Path(path)
    with quiet():
        edge_model = litert_torch.convert(model.eval(), (torch.from_numpy(np.ascontiguousarray(x)),),
                                          quant_config=quant_config)
        edge_model.export(str(path))
    if not path.is_file():
        raise ExportError(f"{path}: litert-torch wrote no model")
    return path


def tflite_to_fp16(src_path: str | Path, dst_path: str | Path) -> Path:
    """Float16 weights (float32 I/O) with ai-edge-quantizer's float-casting recipe."""
    from ai_edge_quantizer import quantizer
    with quiet():
        q = quantizer.Quantizer(str(src_path))
        q.load_quantization_recipe(FP16_RECIPE)
        q.quantize().export_model(str(dst_path), overwrite=True)
    return Path(dst_path)


@timed("tflite")
def export_tflite(src: Source, out: str | Path, precision: str = "fp32", **_) -> Path:
    """Export `src` to `out/<arch>_<S>_<precision>_tflite/`; returns the folder."""
    if precision not in ("fp32", "fp16"):
        raise ExportError(f"export_tflite: precision {precision!r}; int8 goes through quantize.ptq")
    fmt = FORMATS["tflite"]
    final = fmt.folder(out, src.arch, src.imgsz, precision)
    with staged_folder(final) as tmp:
        path = tmp / fmt.model_file(src.arch, src.imgsz, precision)
        x = src.example_input()
        ref = src.torch_output(x)
        if precision == "fp16":
            torch_to_tflite(src.model, x, tmp / "fp32.tflite")
            tflite_to_fp16(tmp / "fp32.tflite", path)
            (tmp / "fp32.tflite").unlink()
        else:
            torch_to_tflite(src.model, x, path)
        in_name, out_name, in_shape, out_shape = io_names(path)
        if in_shape != list(x.shape) or out_shape != list(ref.shape):
            raise ExportError(f"{path}: I/O shapes {in_shape} -> {out_shape}, expected static NCHW "
                              f"{list(x.shape)} -> {list(ref.shape)}")
        report = compare(ref, tflite_run(path, x), precision, f"tflite {precision}")
        extra = {**report, "exporter": "litert-torch" + (" + ai-edge-quantizer float16" if precision == "fp16" else ""),
                 "delegate": "XNNPACK"}
        write_sidecar(tmp, make_meta(src, "tflite", precision, tmp, path.name, (in_name, out_name), extra=extra))
    return final
