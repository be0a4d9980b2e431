"""TensorRT's offline checks of an ONNX file: the explicit-quantization Q/DQ rules and polygraphy's lint.

Why in export: these check what TensorRT will accept, for any TensorRT artifact (the FP32/FP16
export as well as the INT8 one quantize writes), and no TensorRT runs here to ask it. Export and
quantize both use them; they live on export's side because INT8 flows one way, quantize -> export.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

QDQ = ("QuantizeLinear", "DequantizeLinear")


def initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    """name -> initializer of a model's graph."""
    return {i.name: i for i in model.graph.initializer}


def check_trt_rules(model_or_path) -> list[str]:
    """TensorRT explicit-quantization rules; returns the violations (empty list: the model passes).

    Every Q/DQ has an int8 zero point of 0 and a positive scale; activation scales are per
    tensor; weight DQs feeding a Conv are per output channel (axis 0, one scale per channel);
    the input shape is static.
    """
    m = onnx.load(str(model_or_path)) if not isinstance(model_or_path, onnx.ModelProto) else model_or_path
    inits = initializers(m)
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
