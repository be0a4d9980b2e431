"""Full-integer TFLite/LiteRT INT8 with litert-torch's pt2e quantizer (the TFLite artifact).

Why this path: litert-torch converts torch straight to .tflite (no TensorFlow, no onnx2tf), and its
pt2e quantizer gives the full-integer model XNNPACK runs (int8 input, per-channel symmetric
weights, int8 activations). The calibration frames are the same CalibrationSource as the other
backends. The head (the last conv before the output and what follows it) keeps FP32, so the
output stays float; the runtime's TFLite backend handles the int8 input's scale/zero point.
"""
from __future__ import annotations

import contextlib
import dataclasses
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


def _shuffle_by_slices(x, groups: int = 2):
    """Channel shuffle as one concat of 1-channel slices: the same values as reshape-transpose-
    reshape, in 4-D ops only."""
    import torch

    b, c, h, w = x.shape
    cg = c // groups
    order = [(k % groups) * cg + k // groups for k in range(c)]
    return torch.cat([x[:, j:j + 1] for j in order], 1)


@contextlib.contextmanager
def tflite_friendly_shuffle():
    """Trace HRPE's channel shuffle as `_shuffle_by_slices` while exporting for LiteRT INT8.

    litert-torch 0.10 mis-converts a quantized 5-D reshape/transpose: the HRPE-lite INT8 heatmap
    correlated 0.92 with FP32 (pt2e's own simulation: 0.995) and the faithful HRPE lost every
    detection (peaks at a quarter of FP32). The slice form is checked equal to the original on
    a random tensor before use, and gives 0.998 after conversion. The price is speed: XNNPACK
    runs the 1-channel concat slowly (HRPE-lite 512: INT8 34 ms vs FP32 5 ms on this CPU), and a
    4-D reshape/transpose form is mis-converted too, so for the HRPE family prefer TFLite FP32/FP16
    until litert-torch converts quantized transposes correctly.
    """
    try:
        import spire.models.hrpe_blocks as blocks
    except ImportError:
        yield
        return
    import torch

    orig = blocks.channel_shuffle
    x = torch.randn(1, 8, 3, 3)
    if not torch.equal(orig(x, 2), _shuffle_by_slices(x, 2)):
        yield
        return
    blocks.channel_shuffle = _shuffle_by_slices
    try:
        yield
    finally:
        blocks.channel_shuffle = orig


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
    with tflite_friendly_shuffle():
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
    quiet_source = dataclasses.replace(source, progress=False)
    check = converter_check(out_path, converted, [quiet_source.array(i) for i in range(min(4, len(source)))])
    if check["corr"] < 0.9 or not 0.8 <= check["peak_ratio"] <= 1.25:
        out_path.unlink(missing_ok=True)
        from edge.errors import SpireEdgeError

        raise SpireEdgeError(f"{out_path.name}: litert-torch mis-converted this model's INT8 graph (heatmap "
                             f"correlation {check['corr']:.2f}, peak ratio {check['peak_ratio']:.2f} against pt2e's "
                             "own INT8 simulation); use the onnxruntime or openvino INT8 artifact, or TFLite fp32/fp16")
    return out_path


def converter_check(path: Path, simulated, xs) -> dict:
    """The .tflite against pt2e's quantized torch graph on a few inputs: correlation, peak ratio."""
    import numpy as np
    import torch

    from export.tflite import interpreter

    it = interpreter(path)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    corr, ratio = [], []
    for x in xs:
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
        with torch.no_grad():
            r = simulated(torch.from_numpy(x)).numpy()
        corr.append(float(np.corrcoef(y.ravel(), r.ravel())[0, 1]) if r.std() > 0 and y.std() > 0 else 1.0)
        ratio.append(float(y.max() / r.max()) if abs(r.max()) > 1e-6 else 1.0)
    return {"corr": float(np.min(corr)), "peak_ratio": float(np.median(ratio))}
