"""`python -m quantize.ptq`: post-training INT8 for each backend, with sidecar and fidelity report.

Why one command: every runtime has its own well-kept quantizer (onnxruntime.quantization, NNCF,
litert-torch pt2e, TensorRT's explicit Q/DQ rules), but they must all be calibrated on the same
real IR frames, preprocessed by the runtime's own function, keep the same layers in FP32, and be
judged the same way (FP32 vs INT8 through `edge.inference.predictor`). `python -m export --precision int8`
hands off to this command. The settings are one `quantize.job.Int8Job`.

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

from edge.cli import run_cli
from edge.errors import SpireEdgeError
from edge.inference.preprocess import PreprocessConfig
from edge.outputs.runfolders import check_out_path
from export.common import load_source
from quantize.artifacts import fp32_onnx, stage_int8
from quantize.calibration import calibration_source
from quantize.fidelity import default_val, val_set
from quantize.job import Int8Job, Int8Run, add_job_options
from quantize.recipes import RECIPES, check_runtime, resolve_backends
from quantize.sanity import FidelityGateError, check_calibration, check_drop


def run_ptq(job: Int8Job, src=None) -> list[Path]:
    """Quantize a checkpoint to INT8 for each of `job`'s backends (see `Int8Job` for the settings).

    `src`: an already loaded export.common.Source (the benchmarks reuse theirs); None loads `job.weights`
    at `job.imgsz`. Artifacts go to `<job.out>/<arch>_<S>_int8_<format>/`.
    Returns:
        The artifact folders, in backend order.
    Raises:
        SpireEdgeError (one line): unknown backend, missing runtime (names the pip extra),
        missing/too few/degenerate calibration frames (quantize.sanity), a toolchain failure, an
        INT8 F1 drop beyond `job.max_drop`.
    """
    check_out_path(job.out, "--out")  # a path under a file fails before calibration, not after it
    names = resolve_backends(job.backend)
    for n in names:
        check_runtime(n)
    if src is None:
        src = load_source(job.weights, job.imgsz)

    cfg = PreprocessConfig.from_dict(src.preprocess)
    data = (job.roots or [None])[0]  # the fidelity report's default root
    source = calibration_source(job.roots or None, job.split, job.frames, cfg, job.seed, job.min_frames)
    vals = None
    if job.fidelity:
        vdata, vsplit = default_val(data, job.val_data, job.val_split, job.split)
        vals = val_set(vdata, vsplit, job.val_frames, src.imgsz, job.seed)
    source = check_calibration(source, vals)  # constant / low-contrast / foreign frames are refused
    calib = source.info()
    print(f"quantize: {src.arch} at {src.imgsz}px, {calib['frames']} calibration frames from {calib['source']}"
          f"{'/' + str(calib['split']) if calib['split'] else ''} ({calib['target_frames']} with targets)")
    done, failed = [], []
    with tempfile.TemporaryDirectory(prefix="spire_ptq_") as work:
        work = Path(work)
        onnx32 = fp32_onnx(src, work) if any(RECIPES[n].from_fp32_onnx for n in names) else None
        run = Int8Run(job, src, calib, vals, onnx32, work)
        for n in names:
            try:
                done.append((n, _backend(run, n, source)))
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


def _backend(run: Int8Run, n: str, source) -> Path:
    """One backend's artifact: its recipe's FP32 scope and statistic, the frames that statistic can hold."""
    scope, method = backend_recipe(run.src, n, run.job.ignored_scope, run.job.calibrate_method)
    n_source = fit_histogram(source, run.onnx32, method) if RECIPES[n].ort_calibration else source
    return _one(dataclasses.replace(run, calib=n_source.info()), n, n_source, scope, method)


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


def _one(run: Int8Run, n: str, source, scope: tuple[str, ...], method: str) -> Path:
    """Build, stage and gate one backend's INT8 artifact on the calibration `source`."""
    recipe = RECIPES[n]

    def make(path: Path) -> dict:
        extra = recipe.build(run.src, run.onnx32, source, path, scope, method)
        return {"ignored_scope": list(scope), "fp32_head": True, **extra}

    final, rep = stage_int8(run, recipe, make)
    print(f"quantize: wrote {final}")
    max_drop = run.job.max_drop
    verdict = check_drop(rep, str(final), max_drop) if rep is not None and max_drop is not None else None
    if verdict:  # the gate: kept for inspection, but not a success
        raise FidelityGateError(f"{verdict}; check the calibration frames, or pass --allow-drop to accept it")
    return final


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m quantize.ptq", description=__doc__.split("\n\n")[0])
    job = Int8Job()
    add_job_options(p, job)
    p.add_argument("--backend", default=job.backend, help="openvino|onnxruntime|tflite|tensorrt|all (comma list ok)")
    p.add_argument("--data", nargs="+", default=job.data,
                   help="calibration dataset root(s) (training/validation split; several share the frames equally); "
                   "default: synthetic frames with a warning")
    p.add_argument("--calibrate-method", default=job.calibrate_method, choices=("MinMax", "Percentile", "Entropy"),
                   help="onnxruntime/TensorRT calibration statistic (default: the architecture's recipe, else MinMax)")
    return p


def _main(a: argparse.Namespace) -> int:
    run_ptq(Int8Job.from_args(a))
    return 0


def main(argv=None) -> int:
    return run_cli(_main, argv, _parser())


if __name__ == "__main__":
    raise SystemExit(main())
