"""Full-integer TFLite/LiteRT INT8 with litert-torch's pt2e quantizer (the TFLite artifact).

Why this path: litert-torch converts torch straight to .tflite (no TensorFlow, no onnx2tf), and its
pt2e quantizer gives the full-integer model XNNPACK runs (int8 input, per-channel symmetric
weights, int8 activations). The calibration frames are the same CalibrationSource as the other
backends. The head (the last conv before the output and what follows it) keeps FP32, so the
output stays float; the runtime's TFLite backend handles the int8 input's scale/zero point.
"""
from __future__ import annotations

from pathlib import Path


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
    """Calibrate a torch model with pt2e on `source` and write a full-integer .tflite.

    Args:
        model: FP32 torch module (BatchNorm folded or not: pt2e folds it).
        source: quantize.calibration.CalibrationSource (its frames set the activation ranges).
        out_path: destination .tflite.
        keep_fp32_head: leave the final conv (and anything after it) in float.
        ignored_scope: module paths (e.g. 'final_layer', 'stage4') left in float.
    """
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the converter's C++ INFO chatter
    os.environ.setdefault("GLOG_minloglevel", "2")
    import litert_torch
    import torch
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from export.common import quiet
    from quantize.calibration import torch_batches

    model = model.eval()
    c, s = source.cfg.channels, source.cfg.imgsz
    example = (torch.zeros(1, c, s, s),)
    gm = torch.export.export(model, example).module()
    quantizer = make_quantizer(keep_fp32_head, tuple(ignored_scope))
    prepared = prepare_pt2e(gm, quantizer)
    with torch.no_grad():
        for x in torch_batches(source.with_progress("calibration (pt2e/LiteRT)")):
            prepared(x)
    converted = convert_pt2e(prepared, fold_quantize=False)
    move_exported_model_to_eval(converted)  # the converter wants an eval-mode graph
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with quiet():  # the converter's progress chatter; errors still raise
        edge_model = litert_torch.convert(converted, example, quant_config=QuantConfig(pt2e_quantizer=quantizer))
        edge_model.export(str(out_path))
    return out_path
