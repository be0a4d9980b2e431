"""OpenVINO IR INT8 through NNCF post-training quantization (the OpenVINO artifact).

Why NNCF: it is OpenVINO's own quantizer; it places FakeQuantize nodes where the CPU plugin's
INT8 kernels want them (measured here on a stand-in: ≈4× faster than FP32 with an f32 hint).
The head (the last Convolution before the output and everything after it) stays in FP32, like
the onnxruntime artifact, and `ignored_scope` adds more nodes. The model is saved without FP16
weight compression: FP32 must mean FP32 (this CPU's default inference precision is bf16, which
is why the runtime compiles with INFERENCE_PRECISION_HINT=f32).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NncfConfig:
    """NNCF post-training quantization settings."""

    # MIXED (asymmetric activations): same speed here, closer to FP32 than PERFORMANCE (HRPE 512 on
    # 100 SIRST-v2 val frames: identical frames 56% vs 42%, F1 -3.2 vs -6.8 points)
    preset: str = "MIXED"
    keep_fp32_head: bool = True
    ignored_scope: tuple[str, ...] = ()  # extra node names; a name also matches nodes it prefixes
    fast_bias_correction: bool = True


def head_nodes(model) -> list[str]:
    """Friendly names from each Result back to the last Convolution (inclusive), constants skipped."""
    out, seen = [], set()
    stack = list(model.get_results())
    while stack:
        n = stack.pop()
        name = n.get_friendly_name()
        if name in seen:
            continue
        seen.add(name)
        kind = n.get_type_name()
        if kind not in ("Result", "Parameter", "Constant"):
            out.append(name)
        if kind == "Convolution":
            continue
        stack.extend(i.get_source_output().get_node() for i in n.inputs())
    return out


def _scope_names(model, scope: tuple[str, ...]) -> list[str]:
    """Ops named by the scope, or whose weight constants carry a module path in it ('stage4.0')."""
    out = []
    for op in model.get_ordered_ops():
        name = op.get_friendly_name()
        consts = [i.get_source_output().get_node() for i in op.inputs()]
        consts = [c.get_friendly_name() for c in consts if c.get_type_name() == "Constant"]
        if any(name == s or name.startswith(s) or any(c.startswith(s + ".") for c in consts) for s in scope):
            out.append(name)
    return out


def quantize_openvino(fp32_model: str | Path, out_xml: str | Path, dataset, subset_size: int,
                      cfg: NncfConfig = NncfConfig()) -> Path:
    """Quantize an FP32 ONNX or OpenVINO IR model with NNCF and save the INT8 IR.

    Args:
        fp32_model: FP32 .onnx or .xml.
        out_xml: destination .xml (its .bin beside it).
        dataset: nncf.Dataset of model inputs (quantize.calibration.nncf_dataset).
        subset_size: number of calibration frames to use (all of them, normally).
        cfg: settings.
    """
    import nncf
    import openvino as ov

    logging.getLogger("nncf").setLevel(logging.WARNING)  # its per-node INFO lines drown the progress
    model = ov.Core().read_model(str(fp32_model))
    names = (head_nodes(model) if cfg.keep_fp32_head else []) + _scope_names(model, tuple(cfg.ignored_scope))
    patterns = []
    if cfg.ignored_scope and str(fp32_model).endswith(".onnx"):
        # module paths live in the ONNX metadata; OpenVINO keeps the ONNX node names (plus "/..." parts)
        import re

        import onnx

        from quantize.onnx_int8 import expand_scope

        onnx_names = expand_scope(onnx.load(str(fp32_model)), tuple(cfg.ignored_scope))
        patterns = [f"{re.escape(n)}(/.*)?" for n in onnx_names]
    scope = nncf.IgnoredScope(names=sorted(set(names)), patterns=patterns, validate=False) if names or patterns else None
    kw = {"ignored_scope": scope} if scope is not None else {}
    q = nncf.quantize(model, dataset, preset=getattr(nncf.QuantizationPreset, cfg.preset),
                      subset_size=max(1, int(subset_size)), fast_bias_correction=cfg.fast_bias_correction, **kw)
    out_xml = Path(out_xml)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(q, str(out_xml), compress_to_fp16=False)
    return out_xml


def fake_quantize_count(xml: str | Path) -> int:
    """How many FakeQuantize ops an IR holds (0: nothing was quantized)."""
    import openvino as ov

    m = ov.Core().read_model(str(xml))
    return sum(1 for op in m.get_ordered_ops() if op.get_type_name() == "FakeQuantize")
