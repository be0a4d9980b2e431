"""`python -m quantize.ptq`: post-training INT8 for each backend, with sidecar and fidelity report.

Why one command: every runtime has its own well-kept quantizer (onnxruntime.quantization, NNCF,
litert-torch pt2e, TensorRT's explicit Q/DQ rules), but they must all be calibrated on the same
real IR frames, preprocessed by the runtime's own function, keep the same layers in FP32, and be
judged the same way (FP32 vs INT8 through `edge.predictor`). `python -m export --precision int8`
calls `run_ptq` too.

    python -m quantize.ptq --weights W [--data PATH] [--frames 300] [--imgsz S]
        --backend openvino|onnxruntime|tflite|tensorrt|all [--out DIR]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from edge.errors import SpireEdgeError
from edge.preprocess import PreprocessConfig
from edge.runfolders import check_out_path
from export.common import load_source
from quantize.artifacts import fp32_onnx, stage_int8
from quantize.calibration import MIN_FRAMES, calibration_source
from quantize.fidelity import default_val, val_set
from quantize.recipes import RECIPES, check_runtime, resolve_backends
from quantize.sanity import FidelityGateError, check_calibration, check_drop


def run_ptq(weights: str | Path | None = None, backend: str | list[str] = "all", data: str | Path | None = None,
            split: str = "train", val_data: str | Path | None = None, val_split: str = "val", frames: int = 300,
            imgsz: int | None = None, out: str | Path = "runs/quantize", ignored_scope: list[str] | None = None,
            val_frames: int = 50, seed: int = 0, threads: int | None = 2, bench_runs: int = 30,
            fidelity: bool = True, calibrate_method: str | None = None, min_frames: int = MIN_FRAMES,
            src=None, max_drop: float | None = None) -> list[Path]:
    """Quantize a checkpoint to INT8 for one or all backends.

    Args:
        weights: FP32 checkpoint (default: the shipped one, edge.zoo.default_checkpoint()).
        backend: 'onnxruntime' | 'openvino' | 'tflite' | 'tensorrt' | 'all' (or a list / comma list).
        data, split: calibration dataset root and split (None: synthetic frames, with a warning).
        val_data, val_split: validation frames for fidelity.json (default: `data` if it has
            `val_split`, else synthetic).
        frames: calibration frames; imgsz: input size (default: the checkpoint's).
        out: output root; artifacts go to `<out>/<arch>_<S>_int8_<format>/`.
        ignored_scope: module paths / node names kept FP32 in addition to the head; None: the
            architecture's own recipe per backend (`ModelCfg.int8`), [] : none.
        calibrate_method: onnxruntime/TensorRT statistic; None: the recipe's, else MinMax.
        val_frames, threads, bench_runs, fidelity: the fidelity report's size and latency runs.
        src: an already loaded export.common.Source (QAT passes its fine-tuned model).
        max_drop: the fidelity gate: an INT8 F1 more than this many points below FP32 is an error
            (the artifact stays, with its fidelity.json); None: report only (benchmarks measure drops).
    Returns:
        The artifact folders, in backend order.
    Raises:
        SpireEdgeError (one line): unknown backend, missing runtime (names the pip extra),
        missing/too few/degenerate calibration frames (quantize.sanity), a toolchain failure, an
        INT8 F1 drop beyond `max_drop`.
    """
    check_out_path(out, "--out")  # a path under a file fails before calibration, not after it
    names = resolve_backends(backend)
    for n in names:
        check_runtime(n)
    if src is None:
        src = load_source(weights, imgsz)

    cfg = PreprocessConfig.from_dict(src.preprocess)
    source = calibration_source(data, split, frames, cfg, seed, min_frames)
    vals = None
    if fidelity:
        vdata, vsplit = default_val(data, val_data, val_split, split)
        vals = val_set(vdata, vsplit, val_frames, src.imgsz, seed)
    source = check_calibration(source, vals)  # constant / low-contrast / foreign frames are refused
    calib = source.info()
    print(f"quantize: {src.arch} at {src.imgsz}px, {calib['frames']} calibration frames from {calib['source']}"
          f"{'/' + str(calib['split']) if calib['split'] else ''} ({calib['target_frames']} with targets)")
    done, failed = [], []
    with tempfile.TemporaryDirectory(prefix="spire_ptq_") as work:
        work = Path(work)
        onnx32 = fp32_onnx(src, work) if any(RECIPES[n].from_fp32_onnx for n in names) else None
        for n in names:
            try:
                scope, method = backend_recipe(src, n, ignored_scope, calibrate_method)
                n_source = fit_histogram(source, onnx32, method) if RECIPES[n].ort_calibration else source
                done.append((n, _one(n, src, onnx32, n_source, n_source.info(), out, scope, method, vals, work,
                                 threads, bench_runs, max_drop)))
            except SpireEdgeError as e:
                failed.append(f"{n}: {e}")
            except Exception as e:  # a toolchain crash: one line, other backends still run
                if os.environ.get("SPIRE_EDGE_DEBUG"):
                    raise
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
                failed.append(f"{n}: {type(e).__name__}: {first} (rerun with SPIRE_EDGE_DEBUG=1 for the traceback)")
    for n, f in done:
        print(f"next: {RECIPES[n].target.next_step(f)}")
    if failed:
        raise SpireEdgeError("INT8 failed for " + "; ".join(failed))
    return [f for _, f in done]


def backend_recipe(src, backend: str, ignored_scope: list[str] | None,
                   calibrate_method: str | None) -> tuple[tuple[str, ...], str]:
    """(FP32 scope, calibration statistic) for one backend: what the user passed, else the model's recipe.

    Why the model's: which layers INT8 cannot carry is a fact of the architecture, found once by
    its fidelity reports (`ModelCfg.int8`); the plain command must give the INT8 model that ships.
    """
    from spire.models import get_model_cfg

    try:  # the registry's, not a copy saved in an older checkpoint
        recipe = get_model_cfg(src.arch).int8_recipe(backend)
    except KeyError:  # an architecture outside the registry: the quantizers' defaults
        recipe = {}
    scope = tuple(recipe.get("ignored_scope", ()) if ignored_scope is None else ignored_scope)
    method = calibrate_method or recipe.get("calibrate_method", "MinMax")
    if ignored_scope is None and scope:
        print(f"quantize: {backend} keeps {', '.join(scope)} in FP32 besides the head ({src.arch}'s INT8 "
              "recipe; --ignored-scope to change, --ignored-scope alone for none)")
    return scope, method


def fit_histogram(source, onnx32, method: str):
    """The calibration frames a histogram statistic (Percentile, Entropy) can hold in memory: all of
    them, else an evenly spaced subset, said in one line (the sidecar records the frames used)."""
    if method == "MinMax" or onnx32 is None:
        return source
    from quantize.onnx_int8 import histogram_frame_budget

    budget = histogram_frame_budget(onnx32)
    if len(source) <= budget:
        return source
    keep = sorted({int(i) for i in np.linspace(0, len(source) - 1, budget)})
    print(f"warning: {method} calibration holds every activation in memory: {len(keep)} of "
          f"{len(source)} frames, evenly spaced (--calibrate-method MinMax uses all)", file=sys.stderr)
    return dataclasses.replace(source, frames=[source.frames[i] for i in keep])


def _one(n, src, onnx32, source, calib, out, scope, method, vals, work, threads, bench_runs, max_drop=None) -> Path:
    recipe = RECIPES[n]

    def make(path: Path) -> dict:
        extra = recipe.build(src, onnx32, source, path, scope, method)
        return {"ignored_scope": list(scope), "fp32_head": True, **extra}

    final, rep = stage_int8(recipe, src, out, make, calib, vals, onnx32, work, threads, bench_runs)
    print(f"quantize: wrote {final}")
    verdict = check_drop(rep, str(final), max_drop) if rep is not None and max_drop is not None else None
    if verdict:  # the gate: kept for inspection, but not a success
        raise FidelityGateError(f"{verdict}; check the calibration frames, or pass --allow-drop to accept it")
    return final


def _parser() -> argparse.ArgumentParser:
    from quantize.cli import add_common

    p = argparse.ArgumentParser(prog="python -m quantize.ptq", description=__doc__.split("\n\n")[0])
    add_common(p)
    p.add_argument("--backend", default="all", help="openvino|onnxruntime|tflite|tensorrt|all (comma list ok)")
    p.add_argument("--data", default=None, help="calibration dataset root (training/validation split); "
                   "default: synthetic frames with a warning")
    p.add_argument("--out", default="runs/quantize", help="output root (default runs/quantize)")
    p.add_argument("--calibrate-method", default=None, choices=("MinMax", "Percentile", "Entropy"),
                   help="onnxruntime/TensorRT calibration statistic (default: the architecture's recipe, else MinMax)")
    return p


def _main(a: argparse.Namespace) -> int:
    run_ptq(weights=a.weights, backend=a.backend, data=a.data, split=a.split, val_data=a.val_data,
            val_split=a.val_split, frames=a.frames, imgsz=a.imgsz, out=a.out, ignored_scope=a.ignored_scope,
            val_frames=a.val_frames, seed=a.seed, threads=a.threads, bench_runs=a.bench_runs,
            fidelity=not a.no_fidelity, calibrate_method=a.calibrate_method,
            max_drop=None if a.allow_drop else a.max_drop)
    return 0


def main(argv=None) -> int:
    from quantize.cli import run_main

    return run_main(_main, _parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
