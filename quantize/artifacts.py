"""What every INT8 artifact shares, whatever its backend: the FP32 ONNX, the sidecar, the staged folder.

Why: PTQ (`quantize.ptq`), QAT (`quantize.qat`) and `python -m export --precision int8` produce
the same artifacts (same folder names, sidecars and checks as `export`). The per-backend part is
the backend's recipe (`quantize.recipes`); `stage_int8` is the one step around it that PTQ and
QAT share: build into a staged folder, write the sidecar, let export finish it, and write the
fidelity report (and its decode threshold) beside it.

Layout (docs/ARCHITECTURE.md): `<out>/<arch>_<S>_int8_onnx/`, `..._int8_openvino_model/`,
`..._int8_tflite/`, `..._int8_tensorrt/` — each with its model, `metadata.json` (precision int8,
calibration {source, frames, split}) and `fidelity.json`.
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Callable

from edge.model.integrity import needed_files
from edge.model.sidecar import read_sidecar, write_sidecar
from export.common import make_meta, staged_folder
from export.onnx import build_onnx
from quantize.fidelity import fidelity_report, publish_report, set_decode_threshold
from quantize.job import Int8Run


def fp32_onnx(src, folder: Path) -> Path:
    """The FP32 ONNX every ONNX-based quantizer starts from (export's own exporter, golden-checked)."""
    path, _ = build_onnx(src, Path(folder), "fp32.onnx", "fp32")
    return path


def stage_int8(run: Int8Run, recipe, make: Callable[[Path], dict], report: dict | None = None,
               thr_without_report: float | None = None) -> tuple[Path, dict | None]:
    """Write one INT8 artifact: `make(model_path) -> sidecar extra` builds the model in a staged folder.

    Then the sidecar (`recipe.quantizer` and `make`'s extra), export's finishing step
    (`recipe.finish`) and, with validation frames `run.vals`, the fidelity report against the
    recipe's FP32 reference (its INT8 decode threshold goes into the sidecar; `report` adds fields
    to it). Without a report, `thr_without_report` (QAT's own validation choice) is the decode
    threshold. The folder replaces `recipe.folder(run.job.out, run.src)` only when everything succeeded.
    Returns (artifact folder, fidelity report or None).
    """
    src, job = run.src, run.job
    final = recipe.folder(job.out, src)
    rep = None
    with staged_folder(final) as tmp:
        name = recipe.model_file(src)
        extra = {"quantizer": recipe.quantizer, **make(tmp / name)}
        write_sidecar(tmp, make_meta(src, recipe.target.format, "int8", tmp, name, recipe.io_names(tmp / name),
                                     calibration=run.calib, extra=extra))
        recipe.finish(tmp)
        if run.vals is not None:
            ref = recipe.fp32_reference(src, run.onnx32, run.work)
            rep = fidelity_report(ref, recipe.runnable(tmp, run.work), run.vals, job.threads, job.bench_runs,
                                  desc=f"fidelity {recipe.backend}",
                                  labels=(f"FP32 {recipe.backend} export of the same checkpoint", final.name))
            rep.update(backend=recipe.backend, runtime=recipe.runtime, calibration=run.calib, **(report or {}))
            publish_report(tmp, rep, final.name)
        elif thr_without_report is not None:
            set_decode_threshold(tmp, thr_without_report)
    return final, rep


def onnxruntime_view(folder: Path, work: Path) -> Path:
    """A copy of a TensorRT artifact's QDQ ONNX whose sidecar (derived from the artifact's) says onnx."""
    meta = read_sidecar(folder, verify=False)
    view = work / "int8_tensorrt_on_onnxruntime"
    view.mkdir(parents=True, exist_ok=True)
    names = needed_files(folder, "onnx", meta.model_file)  # the ONNX and its external data, not recipe or engine
    for name in names:
        shutil.copyfile(folder / name, view / name)
    write_sidecar(view, dataclasses.replace(meta, format="onnx", extra={**meta.extra, "view_of": "tensorrt artifact"},
                                            files={n: h for n, h in meta.files.items() if n in names}))
    return view
