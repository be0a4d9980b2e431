"""Full-integer TFLite/LiteRT INT8 with the AI Edge Quantizer (the LiteRT project's own PTQ tool).

Why this path: the FP32 .tflite that `export` writes with litert-torch is checked identical to torch;
the AI Edge Quantizer then calibrates *that* file (static range: int8 activations, int8 per-channel
weights, int8 input) on the same CalibrationSource frames as the other backends. The earlier route,
pt2e inside litert-torch 0.10, mis-converted HRPE's quantized channel shuffle (a trained hrpe_lite's
INT8 heatmap correlated -0.11 with pt2e's own simulation), so it is kept only for QAT's fake-quant
graph (`make_quantizer`). The head (the op that produces the output) stays float, so the output is
float; the runtime's TFLite backend handles the int8 input's scale/zero point.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

from edge.errors import SpireEdgeError
from export.common import quiet
from export.tflite import interpreter, torch_to_tflite

MIN_CORR = 0.7  # worst FP32-vs-INT8 heatmap correlation over the check frames
PEAK_RATIO = (0.25, 4.0)  # median INT8/FP32 ratio of map maxima (a uniform scale is absorbed by
# the INT8 decode threshold that the fidelity report re-picks on validation; a collapse is not)


def _head_fx_nodes(gm) -> set:
    """fx nodes from the graph output back to the last convolution (inclusive)."""
    out = next(n for n in gm.graph.nodes if n.op == "output")
    seen, stack = set(), list(out.all_input_nodes)
    while stack:
        n = stack.pop()
        if n in seen or n.op != "call_function":
            continue
        seen.add(n)
        if "conv" in str(n.target):
            continue
        stack.extend(n.all_input_nodes)
    return seen


def _module_paths(node) -> list[str]:
    return [str(v[0]) for v in (node.meta.get("nn_module_stack") or {}).values()]


def make_quantizer(keep_fp32_head: bool = True, ignored_scope: tuple[str, ...] = (), is_qat: bool = False):
    """litert-torch PT2EQuantizer (per-channel symmetric weights) that leaves the head and scope float."""
    from litert_torch.quantize import pt2e_quantizer as pq

    class _Quantizer(pq.PT2EQuantizer):
        # conv+BN QAT patterns: BatchNorm is folded before QAT (fuse_bn), and their matcher
        # breaks on torch 2.13's export (it passes a function where a Module is expected)
        STATIC_QAT_ONLY_OPS: list = []

        def annotate(self, model):
            model = super().annotate(model)
            skip = _head_fx_nodes(model) if keep_fp32_head else set()
            for n in model.graph.nodes:
                paths = _module_paths(n)
                if n in skip or any(p == s or p.startswith(s + ".") for p in paths for s in ignored_scope):
                    n.meta.pop("quantization_annotation", None)
            return model

    return _Quantizer().set_global(pq.get_symmetric_quantization_config(is_per_channel=True, is_qat=is_qat))


def quantize_tflite(model, source, out_path: str | Path, keep_fp32_head: bool = True,
                    ignored_scope: tuple[str, ...] = ()) -> Path:
    """FP32 .tflite of `model` -> AI Edge Quantizer static INT8 calibrated on `source` -> `out_path`.

    Args:
        model: FP32 torch module (eval mode).
        source: quantize.calibration.CalibrationSource (its frames set the activation ranges).
        out_path: destination .tflite.
        keep_fp32_head: leave the op that writes the output in float (the output stays float).
        ignored_scope: regexes on TFLite tensor names whose producing ops stay float.
    Raises:
        SpireEdgeError: the INT8 model does not track the FP32 one (correlation < MIN_CORR or peak
            ratio outside PEAK_RATIO on calibration frames); nothing is written then.
    """
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe_manager

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    xs = [source.array(i) for i in range(min(8, len(source)))]  # for the FP32-vs-INT8 check
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = torch_to_tflite(model.eval(), xs[0], Path(tmp) / "fp32.tflite")
        rm = recipe_manager.RecipeManager()
        rm.add_static_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                             activation_num_bits=8, weight_num_bits=8)
        keep = ([re.escape(sc) for sc in head_scopes(fp32)] if keep_fp32_head else []) + list(ignored_scope)
        for rx in keep:
            rm.add_quantization_config(regex=rx, operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                                       algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
        sig = interpreter(fp32).get_signature_list()
        key = next(iter(sig))
        in_name = sig[key]["inputs"][0]
        q = quantizer.Quantizer(str(fp32), rm.get_quantization_recipe())
        data = [{in_name: x} for x in source.with_progress("calibration (AI Edge Quantizer)")]
        with quiet():
            result = q.calibrate({key: data}, num_threads=1)
            qr = q.quantize(result, enable_progress_bar=False, enable_progress_report=False)
        tmp_out = out_path.with_name(out_path.name + ".tmp")
        tmp_out.write_bytes(qr.quantized_model)
        check = converter_check(tmp_out, fp32, xs)
    # A guard against a broken conversion (the pt2e route gave -0.11), not the accuracy check: the
    # fidelity report measures decoded-point agreement on validation frames.
    if check["corr"] < MIN_CORR or not PEAK_RATIO[0] <= check["peak_ratio"] <= PEAK_RATIO[1]:
        tmp_out.unlink(missing_ok=True)
        raise SpireEdgeError(f"{out_path.name}: the INT8 model does not track its FP32 .tflite (heatmap correlation "
                             f"{check['corr']:.2f}, peak ratio {check['peak_ratio']:.2f}); keep more ops float with "
                             "--ignored-scope, or use TFLite fp32/fp16")
    os.replace(tmp_out, out_path)
    return out_path


def head_scopes(path: Path) -> list[str]:
    """AI Edge Quantizer scope names of the last convolution and every op after it (the head)."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as fu

    model = fu.read_model(str(path))
    sg = model.subgraphs[0]
    codes = [model.operatorCodes[op.opcodeIndex].builtinCode for op in sg.operators]
    convs = [i for i, c in enumerate(codes) if c in _CONV_CODES]
    start = convs[-1] if convs else len(codes) - 1
    return [fu.get_op_scope(op, sg.tensors) for op in sg.operators[start:]]


_CONV_CODES = (3, 4)  # TFLite builtin CONV_2D, DEPTHWISE_CONV_2D


def _run(it, x):
    import numpy as np

    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    xi = x
    if np.dtype(inp["dtype"]).kind in "iu":
        s, z = inp["quantization"]
        info = np.iinfo(inp["dtype"])
        xi = np.clip(np.rint(x / s) + z, info.min, info.max).astype(inp["dtype"])
    it.set_tensor(inp["index"], xi)
    it.invoke()
    y = np.asarray(it.get_tensor(out["index"]), np.float32)
    if np.dtype(out["dtype"]).kind in "iu":
        s, z = out["quantization"]
        y = (y - z) * s
    return y


def converter_check(path: Path, reference: Path, xs) -> dict:
    """The INT8 .tflite against the FP32 .tflite on a few inputs: worst correlation, median peak ratio.

    Frames whose FP32 map has no clear peak (max < 0.1) count for correlation only.
    """
    import numpy as np

    a, b = interpreter(path), interpreter(reference)
    corr, ratio = [], []
    for x in xs:
        y, r = _run(a, x), _run(b, x)
        corr.append(float(np.corrcoef(y.ravel(), r.ravel())[0, 1]) if r.std() > 0 and y.std() > 0 else 1.0)
        if r.max() >= 0.1:
            ratio.append(float(y.max() / r.max()))
    return {"corr": float(np.min(corr)), "peak_ratio": float(np.median(ratio)) if ratio else 1.0}
