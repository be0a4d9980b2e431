"""torch -> ONNX with a (1, C, S, S) input named `images` and a `heatmap` output.

The `onnx` target's files take any frame height and width (multiples of 32; `free_hw`): the
model's SE gate pools the whole input, so a 320x256 frame padded to 512 scores differently from
the same frame at its own size, and onnxruntime, unlike a compiled engine, runs each size as it
comes. The sidecar keeps S, the size larger frames are tiled at. TensorRT and the ONNX behind
OpenVINO stay static (engines and IRs are built for one shape; OpenVINO reshapes its IR itself).

Why these choices: the dynamo exporter (`torch.onnx.export(dynamo=True)`, torch 2.13) gives the
cleanest graph here — BatchNorm folded, constant shapes, ~half the nodes of the legacy
TorchScript exporter, which also emits Shape/Gather chains for the channel shuffle. It writes
opset 18; TensorRT 8.x parsers want <= 17, so `downgrade_opset` rewrites the opset-18-only forms
(Split's `num_outputs`, reduce `axes` inputs) and lets onnx's version converter do the rest.
FP16 uses onnxruntime's own float16 converter (keeps float32 I/O); INT8 goes through quantize.ptq.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.model.sidecar import write_sidecar
from export.common import ExportError, Source, compare, make_meta, quiet, staged_folder, timed
from export.formats import FORMATS

DEFAULT_OPSET = 18
INPUT_NAME, OUTPUT_NAME = "images", "heatmap"


def torch_to_onnx(model, x: np.ndarray, path: str | Path, opset: int = DEFAULT_OPSET) -> Path:
    """Export an eval-mode module with a static input shape; returns the .onnx path (checked)."""
    import torch
    path = Path(path)
    with quiet(), torch.inference_mode():
        torch.onnx.export(model.eval(), (torch.from_numpy(np.ascontiguousarray(x)),), str(path), dynamo=True,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=max(opset, 18),
                          external_data=False, optimize=True, verbose=False)
    if opset < 18:
        import onnx
        onnx.save(downgrade_opset(onnx.load(str(path)), opset), str(path))
    check_onnx(path, list(x.shape))
    return path


def _dims(vi) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in vi.type.tensor_type.shape.dim]


def check_onnx(path: str | Path, input_shape: list[int], output_shape: list[int] | None = None,
               free: bool = False) -> dict:
    """onnx.checker (full), one float32 input/output with the expected names and shapes (static, or
    with `free` symbolic height and width)."""
    import onnx
    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"{path}: onnx.checker failed: {str(e).splitlines()[0][:200]}") from None
    ins = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    outs = list(model.graph.output)
    if len(ins) != 1 or len(outs) != 1:
        raise ExportError(f"{path}: expected one input and one output, got {len(ins)} and {len(outs)}")
    got_in, got_out = _dims(ins[0]), _dims(outs[0])
    if free and len(got_in) == 4 and all(isinstance(d, str) for d in got_in[2:] + got_out[2:]):
        got_in, got_out = got_in[:2] + list(input_shape)[2:], got_out[:2] + list(output_shape or got_out)[2:]
    if got_in != list(input_shape) or ins[0].name != INPUT_NAME:
        raise ExportError(f"{path}: input {ins[0].name} {got_in}, expected static {INPUT_NAME} {list(input_shape)}")
    if output_shape is not None and got_out != list(output_shape):
        raise ExportError(f"{path}: output {outs[0].name} {got_out}, expected static {list(output_shape)}")
    if not all(isinstance(d, int) and d > 0 for d in got_out):
        raise ExportError(f"{path}: output shape {got_out} is not static")
    return {"opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
            "nodes": len(model.graph.node), "ops": sorted({n.op_type for n in model.graph.node})}


_REDUCE_AXES_18 = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                   "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}


def downgrade_opset(model, target: int = 17):
    """Opset 18 -> `target` (13..17) for TensorRT 8.x parsers.

    onnx's version converter has no 18 -> 17 adapter for Split, and the ops that changed in 18
    changed only how attributes are spelled: Split's `num_outputs` becomes an explicit `split`
    input, reduce ops take `axes` as an attribute again. Any other op new in opset 18 is refused.
    """
    import onnx
    from onnx import defs, helper, numpy_helper, shape_inference
    if not 13 <= target <= 17:
        raise ExportError(f"downgrade_opset: target opset {target} not in 13..17")
    inferred = shape_inference.infer_shapes(model, strict_mode=True)
    shapes = {vi.name: _dims(vi) for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    consts.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node
                   if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"})
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type == "Split" and "num_outputs" in attrs:
            axis = helper.get_attribute_value(attrs["axis"]) if "axis" in attrs else 0
            sizes = [shapes.get(o, [None] * (axis + 1))[axis] for o in node.output]
            if any(not isinstance(v, int) for v in sizes):
                raise ExportError(f"Split {node.name!r}: output sizes not static; cannot lower to opset {target}")
            name = f"{node.name or node.output[0]}_split_sizes"
            model.graph.initializer.append(numpy_helper.from_array(np.array(sizes, np.int64), name))
            while len(node.input) < 2:
                node.input.append("")
            node.input[1] = name
            node.attribute.remove(attrs["num_outputs"])
        elif node.op_type in _REDUCE_AXES_18 and len(node.input) > 1 and node.input[1]:
            if node.input[1] not in consts:
                raise ExportError(f"{node.op_type} {node.name!r}: axes are computed at run time; "
                                  f"cannot lower to opset {target}")
            axes = [int(v) for v in np.asarray(consts[node.input[1]]).reshape(-1)]
            del node.input[1:]
            node.attribute.append(helper.make_attribute("axes", axes))
            if "noop_with_empty_axes" in attrs:
                node.attribute.remove(attrs["noop_with_empty_axes"])
        elif defs.get_schema(node.op_type, 18, node.domain).since_version == 18 and node.op_type not in (
                "Pad", "Resize"):  # Pad/Resize only gained optional inputs/attributes in 18
            raise ExportError(f"{node.op_type} {node.name!r} exists only from opset 18; export with --opset 18")
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx"):
            op.version = target
    used = {n.input[i] for n in model.graph.node for i in range(len(n.input))}
    keep = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    onnx.checker.check_model(model, full_check=True)
    return model


HW_NAMES = ("height", "width")


def free_hw(path: str | Path) -> bool:
    """Make a static-shape ONNX file take any input height and width; True when it now does.

    The spire graphs compute no shapes from the input size (convolutions, a global pool and 1x1
    layers), so naming the input/output H and W symbolically and dropping the stale per-tensor
    shapes is the whole change; onnxruntime's check that the graph runs at a second, non-square
    size (the output 1/stride of it) decides. A graph with sizes baked in (a channel shuffle's
    Reshape) fails that check and the file is left as it was (static, tiled at its size).
    """
    import onnx

    path = Path(path)
    model = onnx.load(str(path))
    inp = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}][0]
    out = model.graph.output[0]
    in_dims, out_dims = inp.type.tensor_type.shape.dim, out.type.tensor_type.shape.dim
    if len(in_dims) != 4 or len(out_dims) != 4 or not all(d.HasField("dim_value") for d in in_dims):
        return all(d.dim_param for d in in_dims[2:]) if len(in_dims) == 4 else False
    h, w = in_dims[2].dim_value, in_dims[3].dim_value
    stride = h // max(out_dims[2].dim_value, 1)
    for dims, names in ((in_dims, HW_NAMES), (out_dims, tuple(f"{n}/{stride}" for n in HW_NAMES))):
        for d, name in zip(dims[2:], names):
            d.ClearField("dim_value")
            d.dim_param = name
    del model.graph.value_info[:]
    trial = path.with_name(path.stem + ".free.onnx")
    onnx.save(model, str(trial))
    try:
        c = in_dims[1].dim_value or 1
        th, tw = h + 64, w - 32 if w > 64 else w + 32
        y = ort_run(trial, np.zeros((1, c, th, tw), np.float32))
        ok = tuple(y.shape[2:]) == (th // stride, tw // stride)
    except Exception:
        ok = False
    if ok:
        trial.replace(path)
    else:
        trial.unlink(missing_ok=True)
    return ok


def to_fp16(src_path: Path, dst_path: Path) -> Path:
    """FP16 weights and compute, float32 input/output (onnxruntime.transformers.float16).

    The converter appends the input Casts at the end of the node list; onnxscript's IR re-sorts
    the graph topologically so onnx.checker (and stricter parsers than onnxruntime) accept it.
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxscript import ir
    with quiet():
        m16 = convert_float_to_float16(onnx.load(str(src_path)), keep_io_types=True)
    model = ir.serde.deserialize_model(m16)
    model.graph.sort()
    onnx.save(ir.serde.serialize_model(model), str(dst_path))
    return dst_path


def ort_run(path: str | Path, x: np.ndarray, threads: int = 1) -> np.ndarray:
    """One onnxruntime CPU forward pass (for golden checks)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def build_onnx(src: Source, folder: Path, file_name: str, precision: str = "fp32",
               opset: int = DEFAULT_OPSET, free: bool = False) -> tuple[Path, dict]:
    """Write `folder/file_name` (fp32 or fp16) and return (path, golden/graph report).

    free: any input height and width (`free_hw`), golden-checked at a second, non-square size too.
    """
    if precision not in ("fp32", "fp16"):
        raise ExportError(f"build_onnx: precision {precision!r}; int8 goes through quantize.ptq")
    x = src.example_input()
    ref = src.torch_output(x)
    path = Path(folder) / file_name
    torch_to_onnx(src.model, x, path, opset)
    if precision == "fp16":
        to_fp16(path, path)
    free = free and free_hw(path)
    info = check_onnx(path, list(x.shape), list(ref.shape), free)
    report = compare(ref, ort_run(path, x), precision, f"onnx {precision}")
    if free:
        x2 = np.ascontiguousarray(x[:, :, : max(32, x.shape[2] // 2), :])  # a frame of another size
        compare(src.torch_output(x2), ort_run(path, x2), precision, f"onnx {precision} at {list(x2.shape[2:])}")
    return path, {**info, **report, "exporter": "torch.onnx.export(dynamo=True)",
                  "input_hw": "any (multiples of 32)" if free else "static"}


@timed("onnx")
def export_onnx(src: Source, out: str | Path, precision: str = "fp32", opset: int = DEFAULT_OPSET, **_) -> Path:
    """Export `src` to `out/<arch>_<S>_<precision>_onnx/` (model + metadata.json); returns the folder."""
    fmt = FORMATS["onnx"]
    final = fmt.folder(out, src.arch, src.imgsz, precision)
    with staged_folder(final) as tmp:
        path, report = build_onnx(src, tmp, fmt.model_file(src.arch, src.imgsz, precision), precision, opset,
                                  free=True)
        write_sidecar(tmp, make_meta(src, "onnx", precision, tmp, path.name, (INPUT_NAME, OUTPUT_NAME),
                                     extra={k: v for k, v in report.items() if k != "ops"}))
    return final
