"""Exact FP32 graph rewrites that make the ONNX graph cheap to run in INT8.

Why: HRPE's ShuffleNet/OCCW blocks are dominated by data movement, not convolutions. Two of their
ops are slow once quantized, so the FP32 ONNX is rewritten (same function, checked numerically)
before onnxruntime/NNCF quantize it:

- channel shuffle `Reshape(N,g,C/g,H,W) -> Transpose(0,2,1,3,4) -> Reshape(N,C,H,W)` becomes one
  `Gather` of the channels in shuffled order. onnxruntime has no fast uint8 path for a 5-D
  transpose (measured: one 64-channel shuffle at 64×64 took 2.8 ms in uint8, 0.02 ms in float);
  a channel Gather is a plain copy of whole planes, stays in INT8 (Q/DQ pass straight through
  it), and runs in both onnxruntime and OpenVINO.
- `ReduceMean(axes=[2,3], keepdims=1)` (the squeeze-excitation pool) becomes
  `GlobalAveragePool`, which onnxruntime runs as QLinearGlobalAveragePool instead of
  dequantizing the whole feature map to float.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _consts(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    out = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            out[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return out


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def shuffle_to_gather(model: onnx.ModelProto) -> int:
    """Rewrite channel shuffles as channel Gathers in place; returns how many were rewritten."""
    consts = _consts(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    outputs = {o.name for o in model.graph.output}
    drop, count = [], 0
    for tr in list(model.graph.node):
        if tr.op_type != "Transpose" or list(_attr(tr, "perm", [])) != [0, 2, 1, 3, 4]:
            continue
        r1 = producer.get(tr.input[0])
        r2s = consumers.get(tr.output[0], [])
        if r1 is None or r1.op_type != "Reshape" or len(r2s) != 1 or r2s[0].op_type != "Reshape":
            continue
        r2 = r2s[0]
        s1, s2 = consts.get(r1.input[1]), consts.get(r2.input[1])
        if s1 is None or s2 is None or len(s1) != 5 or len(s2) != 4:
            continue
        n_, g, cg, h, w = (int(v) for v in s1)
        if list(int(v) for v in s2) not in ([n_, g * cg, h, w], [n_, -1, h, w], [0, g * cg, 0, 0]):
            continue
        if len(consumers.get(r1.output[0], [])) != 1 or r1.output[0] in outputs or tr.output[0] in outputs:
            continue
        k = np.arange(g * cg)
        idx = (k % g) * cg + k // g  # output channel k = input channel (k mod g)·C/g + k div g
        name = f"{tr.name or tr.output[0]}_shuffle_idx"
        model.graph.initializer.append(numpy_helper.from_array(idx.astype(np.int64), name))
        gather = helper.make_node("Gather", [r1.input[0], name], [r2.output[0]], axis=1,
                                  name=f"{tr.name or tr.output[0]}_shuffle")
        pos = list(model.graph.node).index(r2)
        model.graph.node.insert(pos, gather)
        drop += [r1, tr, r2]
        count += 1
    for n in drop:
        model.graph.node.remove(n)
    return count


def reducemean_to_gap(model: onnx.ModelProto) -> int:
    """Rewrite spatial means (axes 2,3, keepdims) as GlobalAveragePool in place; returns the count."""
    consts = _consts(model)
    count = 0
    for n in model.graph.node:
        if n.op_type != "ReduceMean" or _attr(n, "keepdims", 1) != 1:
            continue
        axes = _attr(n, "axes")
        if axes is None and len(n.input) > 1 and n.input[1]:
            axes = consts.get(n.input[1])
        if axes is None or sorted(int(a) % 4 for a in np.asarray(axes).reshape(-1)) != [2, 3]:
            continue
        n.op_type = "GlobalAveragePool"
        del n.input[1:]
        del n.attribute[:]
        count += 1
    return count


def _drop_unused(model: onnx.ModelProto) -> None:
    used = {i for n in model.graph.node for i in n.input}
    keep = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    keep_nodes = [n for n in model.graph.node if n.op_type != "Constant" or n.output[0] in used]
    del model.graph.node[:]
    model.graph.node.extend(keep_nodes)


def optimize_for_int8(src: str, dst: str, check: bool = True, atol: float = 1e-5) -> dict:
    """Apply the rewrites to the ONNX at `src`, write `dst`; with `check`, prove outputs unchanged.

    Returns {'shuffles': n, 'pools': n, 'max_abs_diff': float|None}.
    """
    model = onnx.load(src)
    rep = {"shuffles": shuffle_to_gather(model), "pools": reducemean_to_gap(model), "max_abs_diff": None}
    _drop_unused(model)
    del model.graph.value_info[:]  # shapes are re-inferred by the quantizer's pre-processing
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    if check and (rep["shuffles"] or rep["pools"]):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = 3
        a = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
        b = ort.InferenceSession(dst, so, providers=["CPUExecutionProvider"])
        shape = [int(d) for d in a.get_inputs()[0].shape]
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        name = a.get_inputs()[0].name
        diff = float(np.max(np.abs(a.run(None, {name: x})[0] - b.run(None, {name: x})[0])))
        rep["max_abs_diff"] = diff
        if diff > atol:
            raise RuntimeError(f"INT8 graph rewrite changed the FP32 output by {diff:.3g}; report it with the model")
    return rep
