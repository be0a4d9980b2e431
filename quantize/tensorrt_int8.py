"""TensorRT's explicit-quantization INT8 ONNX: signed, symmetric Q/DQ, checked offline.

Why a second QDQ file: TensorRT accepts only signed int8 with zero point 0 (activations per
tensor, weights per output channel). The onnxruntime artifact uses unsigned activations with a
non-zero zero point — fast on x86, refused by TensorRT — while this symmetric model is slow on
onnxruntime's CPU provider. So each runtime gets its own file. No TensorRT runs here, so the file
is checked offline instead: onnx.checker, TensorRT's Q/DQ rules, static shapes, and polygraphy's
lint (which runs the graph through onnxruntime; the rules and the lint live in `export.trt_checks`,
which export's own TensorRT artifacts use too); `boards/jetson/build_engine.sh` builds the engine
on the device (`trtexec --stronglyTyped`).

`symmetrize_qdq` turns any QDQ model (e.g. the QAT export, whose activations are unsigned) into
the TensorRT form by widening each activation range to a symmetric one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from export.trt_checks import QDQ, check_trt_rules, initializers as _inits, polygraphy_lint  # noqa: F401  (re-exported)
from quantize.onnx_int8 import OrtInt8Config, quantize_onnx

# Biases stay float: TensorRT fuses them itself and rejects int32 bias Q/DQ.
TRT_CONFIG = OrtInt8Config(activation="QInt8", weight="QInt8", per_channel=True,
                           symmetric_activations=True, symmetric_weights=True, extra={"QuantizeBias": False})


def quantize_tensorrt(fp32_onnx: str | Path, out_onnx: str | Path, reader,
                      ignored_scope: tuple[str, ...] = (), calibrate_method: str = "MinMax") -> Path:
    """Symmetric signed INT8 QDQ (zero points 0, per-channel weights) for TensorRT."""
    from dataclasses import replace

    cfg = replace(TRT_CONFIG, ignored_scope=tuple(ignored_scope), calibrate_method=calibrate_method)
    return quantize_onnx(fp32_onnx, out_onnx, reader, cfg)


def symmetrize_qdq(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite asymmetric / unsigned activation Q/DQ pairs as signed symmetric int8 (zero point 0).

    An activation quantized with scale s and zero point z (uint8: range [-z·s, (255-z)·s]) gets
    s' = max|range| / 127 and z' = 0 (int8), so every value the old grid covered stays in range.
    Weight DQs (int8, zero point 0) are left as they are. Where the old grid started at 0 (zero
    point = qmin) the quantizer also acted as a ReLU (onnxruntime drops such ReLUs from QDQ
    graphs); an explicit Relu is inserted there. Returns a new model.
    """
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = _inits(m)
    done: dict[tuple[str, str], tuple[str, str]] = {}
    retyped: set[str] = set()
    relus: list = []
    producer = {o: n for n in m.graph.node for o in n.output}
    for n in m.graph.node:
        if n.op_type not in QDQ or n.input[1] not in inits:
            continue
        s = numpy_helper.to_array(inits[n.input[1]]).astype(np.float64)
        has_zp = len(n.input) > 2 and bool(n.input[2])
        if has_zp and n.input[2] not in inits:
            continue  # computed zero point: left for check_trt_rules to report
        z = numpy_helper.to_array(inits[n.input[2]]) if has_zp else np.zeros((), np.uint8)
        if z.dtype == np.int32:
            continue  # an int32 bias: folded back to float below
        if z.dtype == np.int8 and not np.any(z):
            continue  # already symmetric signed
        key = (n.input[1], n.input[2] if has_zp else "")
        if key not in done:
            lo, hi = (0, 255) if z.dtype == np.uint8 else (-128, 127)
            zf = z.astype(np.float64)
            amax = np.maximum(np.abs((lo - zf) * s), np.abs((hi - zf) * s))
            scale = np.maximum(amax / 127.0, np.finfo(np.float32).tiny).astype(np.float32)
            names = (f"{key[0]}__sym{len(done)}_scale", f"{key[0]}__sym{len(done)}_zp")
            m.graph.initializer.append(numpy_helper.from_array(scale.reshape(s.shape), names[0]))
            m.graph.initializer.append(numpy_helper.from_array(np.zeros(z.shape, np.int8), names[1]))
            done[key] = names
        while len(n.input) < 3:
            n.input.append("")
        n.input[1], n.input[2] = done[key]
        if n.op_type == "QuantizeLinear":
            retyped.add(n.output[0])
            lo = 0 if z.dtype == np.uint8 else -128
            src = producer.get(n.input[0])
            if np.all(z == lo) and (src is None or src.op_type != "Relu"):
                # the old grid started at 0, so quantizing also clamped negatives: a ReLU that
                # onnxruntime removed from the graph. The symmetric grid keeps negatives: put it back.
                relu_out = f"{n.input[0]}__relu{len(relus)}"
                relus.append((n, helper.make_node("Relu", [n.input[0]], [relu_out], name=relu_out)))
                n.input[0] = relu_out
    _float_biases(m)
    for q, relu in relus:  # insert each ReLU right before its QuantizeLinear (topological order)
        m.graph.node.insert(list(m.graph.node).index(q), relu)
    for vi in list(m.graph.value_info) + list(m.graph.output):
        if vi.name in retyped:  # the quantized tensor is int8 now (was uint8)
            vi.type.tensor_type.elem_type = onnx.TensorProto.INT8
    _drop_unused_initializers(m)
    return m


def _float_biases(m: onnx.ModelProto) -> None:
    """Replace int32 bias DequantizeLinear nodes by their float values (TensorRT wants float bias)."""
    inits = _inits(m)
    for n in list(m.graph.node):
        if n.op_type != "DequantizeLinear" or n.input[0] not in inits:
            continue
        q = numpy_helper.to_array(inits[n.input[0]])
        if q.dtype != np.int32:
            continue
        s = numpy_helper.to_array(inits[n.input[1]]).astype(np.float64)
        z = numpy_helper.to_array(inits[n.input[2]]).astype(np.float64) if len(n.input) > 2 and n.input[2] else 0.0
        m.graph.initializer.append(numpy_helper.from_array(((q - z) * s).astype(np.float32), n.output[0]))
        m.graph.node.remove(n)


def _drop_unused_initializers(m: onnx.ModelProto) -> None:
    used = {i for n in m.graph.node for i in n.input}
    keep = [i for i in m.graph.initializer if i.name in used or i.name in {o.name for o in m.graph.output}]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)


def offline_report(path: str | Path, lint: bool = True) -> dict:
    """All offline checks of a TensorRT QDQ model: checker, rules, lint."""
    out: dict = {"checker": "ok"}
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as e:  # checker messages are multi-line; keep the first
        out["checker"] = str(e).strip().splitlines()[0]
    out["rule_violations"] = check_trt_rules(path)
    out["lint"] = polygraphy_lint(path) if lint else {"ran": False, "ok": False, "failing": [], "message": "skipped"}
    out["ok"] = out["checker"] == "ok" and not out["rule_violations"] and (out["lint"]["ok"] or not lint)
    return out
