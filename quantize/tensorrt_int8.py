"""TensorRT's explicit-quantization INT8 ONNX: signed, symmetric Q/DQ, checked offline.

Why a second QDQ file: TensorRT accepts only signed int8 with zero point 0 (activations per
tensor, weights per output channel). The onnxruntime artifact uses unsigned activations with a
non-zero zero point — fast on x86, refused by TensorRT — while this symmetric model is slow on
onnxruntime's CPU provider. So each runtime gets its own file. No TensorRT runs here, so the file
is checked offline instead: onnx.checker, the Q/DQ rules below, static shapes, and polygraphy's
lint (which runs the graph through onnxruntime); `boards/jetson/build_engine.sh` builds the engine
on the device (`trtexec --stronglyTyped`).

`symmetrize_qdq` turns any QDQ model (e.g. the QAT export, whose activations are unsigned) into
the TensorRT form by widening each activation range to a symmetric one.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from quantize.onnx_int8 import OrtInt8Config, quantize_onnx

# Biases stay float: TensorRT fuses them itself and rejects int32 bias Q/DQ.
TRT_CONFIG = OrtInt8Config(activation="QInt8", weight="QInt8", per_channel=True,
                           symmetric_activations=True, symmetric_weights=True, extra={"QuantizeBias": False})
QDQ = ("QuantizeLinear", "DequantizeLinear")


def quantize_tensorrt(fp32_onnx: str | Path, out_onnx: str | Path, reader,
                      ignored_scope: tuple[str, ...] = (), calibrate_method: str = "MinMax") -> Path:
    """Symmetric signed INT8 QDQ (zero points 0, per-channel weights) for TensorRT."""
    from dataclasses import replace

    cfg = replace(TRT_CONFIG, ignored_scope=tuple(ignored_scope), calibrate_method=calibrate_method)
    return quantize_onnx(fp32_onnx, out_onnx, reader, cfg)


def _inits(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {i.name: i for i in model.graph.initializer}


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


def check_trt_rules(model_or_path) -> list[str]:
    """TensorRT explicit-quantization rules; returns the violations (empty list: the model passes).

    Every Q/DQ has an int8 zero point of 0 and a positive scale; activation scales are per
    tensor; weight DQs feeding a Conv are per output channel (axis 0, one scale per channel);
    the input shape is static.
    """
    m = onnx.load(str(model_or_path)) if not isinstance(model_or_path, onnx.ModelProto) else model_or_path
    inits = _inits(m)
    bad: list[str] = []
    for i in m.graph.input:
        dims = i.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") for d in dims):
            bad.append(f"input {i.name} has a dynamic dimension")
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in m.graph.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    n_qdq = 0
    for n in m.graph.node:
        if n.op_type not in QDQ:
            continue
        n_qdq += 1
        if len(n.input) < 3 or not n.input[2]:
            bad.append(f"{n.name}: no zero point (defaults to uint8)")
            continue
        if n.input[1] not in inits or n.input[2] not in inits:
            bad.append(f"{n.name}: scale/zero point are not constant initializers")
            continue
        s = numpy_helper.to_array(inits[n.input[1]])
        z = numpy_helper.to_array(inits[n.input[2]])
        if z.dtype != np.int8:
            bad.append(f"{n.name}: zero point dtype {z.dtype} (TensorRT needs int8)")
        if np.any(z):
            bad.append(f"{n.name}: non-zero zero point (TensorRT needs symmetric quantization)")
        if np.any(s <= 0) or not np.all(np.isfinite(s)):
            bad.append(f"{n.name}: scale not positive and finite")
        is_weight = n.op_type == "DequantizeLinear" and n.input[0] in inits
        if is_weight:
            w = numpy_helper.to_array(inits[n.input[0]])
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            feeds_conv = any(c.op_type in ("Conv", "ConvTranspose") for c in consumers.get(n.output[0], []))
            if feeds_conv and w.ndim == 4 and (s.size != w.shape[0] or axis != 0):
                bad.append(f"{n.name}: conv weight not quantized per output channel (axis {axis}, {s.size} scales)")
        elif s.size != 1:
            bad.append(f"{n.name}: activation scale is not per tensor ({s.size} values)")
    if n_qdq == 0:
        bad.append("no QuantizeLinear/DequantizeLinear nodes: not an explicitly quantized model")
    return bad


def polygraphy_lint(path: str | Path, timeout: float = 300.0) -> dict:
    """Run `polygraphy check lint` (onnxruntime-based, works without TensorRT).

    Returns {'ran': bool, 'ok': bool, 'failing': [...], 'message': str}.
    """
    with tempfile.TemporaryDirectory(prefix="spire_lint_") as tmp:
        report = Path(tmp) / "lint.json"
        cmd = [sys.executable, "-c", "import sys; from polygraphy.tools import main; sys.exit(main())",
               "check", "lint", str(path), "-o", str(report)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            return {"ran": False, "ok": False, "failing": [], "message": f"polygraphy did not run: {e}"}
        if not report.is_file():
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            return {"ran": False, "ok": False, "failing": [], "message": f"polygraphy lint failed: {tail[0]}"}
        d = json.loads(report.read_text())
    failing = list(d.get("summary", {}).get("failing", []))
    errors = [e for e in d.get("lint_entries", []) if str(e.get("level", "")).lower() in ("exception", "error")]
    ok = r.returncode == 0 and not failing and not errors
    msg = "PASSED" if ok else f"{len(failing)} failing node(s), {len(errors)} error(s)"
    return {"ran": True, "ok": ok, "failing": failing, "message": msg}


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
