"""TensorRT target: the ONNX TensorRT should parse plus the recipe that builds the engine on the device.

Why no engine here: an engine only runs on the TensorRT version and GPU that built it, and no
TensorRT runs on this machine. The artifact (`<stem>_tensorrt/`) is therefore the ONNX (opset 17,
so TensorRT 8.x parsers on JetPack 5 read it as well as TensorRT 10) with `build_engine.sh`
(a copy of boards/jetson/build_engine.sh: trtexec with the precision's flags, then polygraphy
comparing the engine with onnxruntime). FP32 and FP16 share the FP32 ONNX (TensorRT lowers to
FP16 with `--fp16`); INT8 is the signed symmetric Q/DQ model from quantize.ptq. What can be
checked here is: onnx.checker, static shapes, polygraphy's lint (onnxruntime-based), TensorRT's
Q/DQ rules for INT8, and golden outputs through onnxruntime. The results go into the sidecar.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from edge.model.sidecar import file_sha256, read_sidecar, write_sidecar
from export.common import ExportError, Source, make_meta, staged_folder, timed
from export.formats import FORMATS
from export.onnx import INPUT_NAME, OUTPUT_NAME, build_onnx, check_onnx
from export.trt_checks import check_trt_rules, polygraphy_lint

TRT_OPSET = 17
RECIPE = Path(__file__).resolve().parents[1] / "boards" / "jetson" / "build_engine.sh"
SCRIPT_NAME = "build_engine.sh"


def trtexec_flags(precision: str) -> dict[str, list[str]]:
    """The trtexec precision flags per TensorRT major version (what build_engine.sh passes)."""
    return {"fp32": {"10": [], "8": []},
            "fp16": {"10": ["--fp16"], "8": ["--fp16"]},
            "int8": {"10": ["--stronglyTyped"], "8": ["--int8", "--fp16"]}}[precision]


def offline_checks(onnx_path: Path, precision: str, lint: bool = True) -> dict:
    """What this machine can check of a TensorRT ONNX; raises ExportError when one fails."""
    import onnx
    m = onnx.load(str(onnx_path))
    inp = next(i for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer})
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    info = check_onnx(onnx_path, shape)  # checker + one static input/output
    report: dict = {"checker": "ok", "static_shapes": True, "opset": info["opset"]}
    if info["opset"] > TRT_OPSET:
        raise ExportError(f"{onnx_path}: opset {info['opset']} > {TRT_OPSET}; TensorRT 8.x parsers cannot read it")
    has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in m.graph.node)
    if precision == "int8":
        bad = check_trt_rules(m)
        if bad:
            raise ExportError(f"{onnx_path}: breaks TensorRT's Q/DQ rules: {bad[0]} (+{len(bad) - 1} more)")
        report["qdq_rules"] = "ok"
    elif has_qdq:
        raise ExportError(f"{onnx_path}: a {precision} TensorRT artifact must not hold Q/DQ nodes")
    if lint:
        res = polygraphy_lint(onnx_path)
        if res["ran"] and not res["ok"]:
            raise ExportError(f"{onnx_path}: polygraphy lint: {res['message']} {res['failing'][:3]}")
        report["polygraphy_lint"] = res["message"] if res["ran"] else f"not run: {res['message']}"
    return report


def add_recipe(folder: Path) -> Path:
    """Copy boards/jetson/build_engine.sh into the artifact folder (executable)."""
    if not RECIPE.is_file():
        raise ExportError(f"{RECIPE}: the engine recipe is missing from this install; reinstall spire-edge")
    dst = Path(folder) / SCRIPT_NAME
    shutil.copyfile(RECIPE, dst)
    dst.chmod(0o755)
    return dst


def _extra(precision: str, model_file: str, checks: dict, golden: dict | None = None) -> dict:
    return {**(golden or {}), "offline_checks": checks, "engine_file": f"{Path(model_file).stem}.engine",
            "build": f"bash {SCRIPT_NAME}", "trtexec_flags": trtexec_flags(precision)}


def finish_int8_folder(folder: str | Path, lint: bool = True) -> Path:
    """Make an INT8 `*_tensorrt/` folder from quantize.ptq complete: opset <= 17, recipe, offline checks.

    A Q/DQ model at opset 18 is lowered to 17 in place (same graph semantics; Q/DQ are opset-13
    ops either way) so JetPack 5's TensorRT 8.x parses it; the sidecar hash is updated with it.
    """
    import onnx
    from export.onnx import downgrade_opset
    folder = Path(folder)
    meta = read_sidecar(folder)
    if meta.format != "tensorrt" or meta.precision != "int8":
        raise ExportError(f"{folder}: expected an int8 tensorrt artifact, got {meta.precision} {meta.format}")
    path = folder / meta.model_file
    model = onnx.load(str(path))
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    lowered = {}
    if opset > TRT_OPSET:
        tmp = path.with_name(f".{path.name}.tmp")
        onnx.save(downgrade_opset(model, TRT_OPSET), str(tmp))
        tmp.replace(path)
        lowered = {"lowered_from_opset": opset}
    checks = offline_checks(path, "int8", lint=lint)
    add_recipe(folder)
    extra = {**meta.extra, **_extra("int8", meta.model_file, checks), **lowered}
    from edge.model.integrity import hash_files, needed_files

    files = hash_files(folder, needed_files(folder, "tensorrt", meta.model_file))  # ONNX lowered, recipe added
    write_sidecar(folder, meta.derive(extra=extra, model_sha256=file_sha256(path), files=files,
                                      created_at=meta.created_at, versions=meta.versions))
    return folder


@timed("tensorrt")
def export_tensorrt(src: Source, out: str | Path, precision: str = "fp32", opset: int = TRT_OPSET,
                    lint: bool = True, **_) -> Path:
    """Export `src` to `out/<arch>_<S>_<precision>_tensorrt/` (ONNX + build_engine.sh + metadata.json)."""
    if precision not in ("fp32", "fp16"):
        raise ExportError(f"export_tensorrt: precision {precision!r}; int8 goes through quantize.ptq")
    fmt = FORMATS["tensorrt"]
    final = fmt.folder(out, src.arch, src.imgsz, precision)
    with staged_folder(final) as tmp:
        # TensorRT's --fp16 lowers an FP32 ONNX itself; the golden check is against FP32 onnxruntime.
        path, golden = build_onnx(src, tmp, fmt.model_file(src.arch, src.imgsz, precision), "fp32", min(opset, TRT_OPSET))
        checks = offline_checks(path, precision, lint=lint)
        add_recipe(tmp)
        golden = {k: v for k, v in golden.items() if k.startswith("golden") or k in ("exporter", "nodes")}
        write_sidecar(tmp, make_meta(src, "tensorrt", precision, tmp, path.name, (INPUT_NAME, OUTPUT_NAME),
                                     extra=_extra(precision, path.name, checks, golden)))
    return final
