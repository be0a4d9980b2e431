"""ONNX QDQ INT8 through onnxruntime.quantization (the onnxruntime artifact, also runs on OpenVINO).

Why these settings: unsigned 8-bit activations with signed per-channel weights is the combination
onnxruntime's CPU kernels run fastest on VNNI CPUs (measured here: QDQ u8/s8 ≈ 3× FP32; signed
activations only ≈ 2×). QDQ format, not QOperator: OpenVINO loads QDQ models but not QOperator
ones. The final 1×1 head and everything after it stay FP32 — the heatmap's peak heights are the
detection scores, and quantizing the single output channel costs the most accuracy for the
least time. onnxruntime's own pre-processing (shape inference + graph optimisation, which also
folds any BatchNorm) runs first, as its docs ask.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from edge.errors import SpireEdgeError


@dataclass(frozen=True)
class OrtInt8Config:
    """onnxruntime static quantization settings (typed, instead of its string-keyed extra_options)."""

    activation: str = "QUInt8"  # QUInt8 (fast on x86 VNNI) | QInt8
    weight: str = "QInt8"
    per_channel: bool = True
    symmetric_activations: bool = False  # True for TensorRT (zero point 0)
    symmetric_weights: bool = True
    calibrate_method: str = "MinMax"  # MinMax | Percentile | Entropy
    keep_fp32_head: bool = True  # the last Conv feeding the output and everything after it
    ignored_scope: tuple[str, ...] = ()  # extra node names (or name prefixes) left in FP32
    max_intermediate_outputs: int = 16  # bounds calibration memory
    extra: dict = field(default_factory=dict)


def head_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes from the last Conv before each graph output to that output (inclusive).

    Walks back from the outputs through producers and stops at (and includes) the first Conv on
    each path; those nodes are what INT8 would hurt most (see module docstring).
    """
    producer = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name for i in model.graph.initializer}
    out, seen = [], set()
    stack = [o.name for o in model.graph.output]
    while stack:
        t = stack.pop()
        n = producer.get(t)
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        out.append(n.name)
        if n.op_type == "Conv":
            continue
        stack.extend(i for i in n.input if i and i not in inits)
    return out


def module_scopes(node: onnx.NodeProto) -> list[str]:
    """Module paths a node came from (torch's dynamo exporter records them in metadata_props)."""
    import ast

    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                return [str(v) for v in ast.literal_eval(p.value)]
            except (ValueError, SyntaxError):
                return []
    return []


def _in_scope(path: str, scope: str) -> bool:
    return path == scope or path.startswith(scope + ".")


def expand_scope(model: onnx.ModelProto, scope: tuple[str, ...]) -> list[str]:
    """Node names in the ignored scope: exact node names/prefixes, or module paths ('stage4',
    'stage2.branches.0.1') matched on the exporter's name scopes or on the weight names."""
    if not scope:
        return []
    hit = []
    for n in model.graph.node:
        paths = module_scopes(n)
        if (any(n.name == s or n.name.startswith(s) for s in scope)
                or any(_in_scope(p, s) for p in paths for s in scope)
                or any(_in_scope(i.rsplit(".", 1)[0], s) for i in n.input if "." in i for s in scope)):
            hit.append(n.name)
    return hit


def _chunk(n: int, m: int) -> int:
    """A calibration chunk size that does not divide n: onnxruntime (1.31) raises "No data is
    collected" when the last chunk comes out empty."""
    while n >= m and n % m == 0:
        m += 1
    return m


def histogram_frame_budget(fp32_onnx) -> int:
    """How many calibration frames Percentile/Entropy can hold: they keep every activation of every
    frame in memory (onnxruntime 1.31 was OOM-killed at 24 GB on HRPE 512 with 100 frames), so at
    most half the free memory is spent on them."""
    import os

    m = onnx.shape_inference.infer_shapes(onnx.load(str(fp32_onnx)))
    per_frame = 0
    for vi in m.graph.value_info:
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        if dims and all(d > 0 for d in dims):
            per_frame += 4 * int(np.prod(dims))
    avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return max(1, int(0.5 * avail // max(per_frame, 1)))


def _check_histogram_memory(fp32_onnx, frames: int, method: str) -> None:
    """Refuse a histogram calibration that would not fit before the OOM kill, in one line."""
    budget = histogram_frame_budget(fp32_onnx)
    if frames > budget:
        raise SpireEdgeError(f"{fp32_onnx}: --calibrate-method {method} cannot hold the activations of "
                             f"{frames} frames in half the free memory; use MinMax or --frames {budget}")


def quantize_onnx(fp32_onnx: str | Path, out_onnx: str | Path, reader, cfg: OrtInt8Config = OrtInt8Config()) -> Path:
    """Static QDQ INT8 quantization of an FP32 ONNX model.

    Args:
        fp32_onnx: the FP32 model (static input shape).
        out_onnx: where to write the QDQ model (one file, no external data).
        reader: a CalibrationDataReader (quantize.calibration.ort_reader).
        cfg: settings (defaults: the onnxruntime CPU fast path).
    Returns:
        out_onnx as a Path.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    out_onnx = Path(out_onnx)
    if cfg.calibrate_method != "MinMax":
        _check_histogram_memory(fp32_onnx, len(reader), cfg.calibrate_method)
    with tempfile.TemporaryDirectory(prefix="spire_q_") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_onnx), str(pre), skip_symbolic_shape=True)
        model = onnx.load(str(pre))
        exclude = (head_nodes(model) if cfg.keep_fp32_head else []) + expand_scope(model, tuple(cfg.ignored_scope))
        extra = {"ActivationSymmetric": cfg.symmetric_activations, "WeightSymmetric": cfg.symmetric_weights,
                 "CalibMaxIntermediateOutputs": _chunk(len(reader), cfg.max_intermediate_outputs), **cfg.extra}
        quantize_static(str(pre), str(out_onnx), reader, quant_format=QuantFormat.QDQ,
                        per_channel=cfg.per_channel, activation_type=getattr(QuantType, cfg.activation),
                        weight_type=getattr(QuantType, cfg.weight), nodes_to_exclude=sorted(set(exclude)),
                        calibrate_method=getattr(CalibrationMethod, cfg.calibrate_method), extra_options=extra)
    return out_onnx


def qdq_counts(path_or_model) -> dict[str, int]:
    """Op-type histogram of a model (tests and reports: how many Q/DQ nodes, which ops stayed float)."""
    m = onnx.load(str(path_or_model)) if not isinstance(path_or_model, onnx.ModelProto) else path_or_model
    counts: dict[str, int] = {}
    for n in m.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def activations_to_uint8(model: onnx.ModelProto) -> int:
    """Re-express int8 activation Q/DQ pairs (zero point z) as uint8 (zero point z + 128), in place.

    The two grids are the same real values (q_u8 = q_s8 + 128), so the model computes exactly the
    same thing; onnxruntime's fast CPU kernels want unsigned activations. pt2e exports (QAT)
    use signed activations. Weight DQs (input is an initializer) are left signed. Returns the
    number of (scale, zero point) pairs rewritten.
    """
    import numpy as np
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    done: dict[str, str] = {}
    retyped: set[str] = set()
    for n in model.graph.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(n.input) < 3:
            continue
        if n.input[0] in inits or n.input[2] not in inits:
            continue
        z = numpy_helper.to_array(inits[n.input[2]])
        if z.dtype != np.int8:
            continue
        if n.input[2] not in done:
            name = f"{n.input[2]}__u8"
            model.graph.initializer.append(numpy_helper.from_array((z.astype(np.int16) + 128).astype(np.uint8), name))
            done[n.input[2]] = name
        n.input[2] = done[n.input[2]]
        retyped.add(n.output[0] if n.op_type == "QuantizeLinear" else n.input[0])
    for vi in list(model.graph.value_info) + list(model.graph.output):
        if vi.name in retyped:
            vi.type.tensor_type.elem_type = onnx.TensorProto.UINT8
    used = {i for n in model.graph.node for i in n.input}
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    return len(done)

