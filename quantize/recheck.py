"""`python -m quantize.recheck`: redo an INT8 artifact's fidelity report against an FP32 artifact.

Why: the report (and the INT8 decode threshold it picks) belongs to a validation set; a user who
validates on their own frames, or an artifact built before a fix, needs it again without
re-quantising. It runs `quantize.fidelity.fidelity_report` on both artifacts as exported, rewrites
`fidelity.json` beside the INT8 model (fields the report does not produce, e.g. the calibration
method, are kept) and writes the chosen threshold into the INT8 sidecar. A TensorRT INT8 folder is
checked through its QDQ ONNX on onnxruntime (no TensorRT here), as `quantize.ptq` does.

    python -m quantize.recheck --fp32 weights/shipped/export/hrpe_lite_512_fp32_onnx \
        --int8 weights/shipped/export/hrpe_lite_512_int8_onnx --val-data DATA --val-split val --frames 212
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from edge.cli import run_cli
from edge.errors import SidecarError
from edge.model.sidecar import read_sidecar


def same_model(meta32, meta8, fp32: Path, int8: Path) -> None:
    """Refuse two artifacts that are not the same model, before any frame is read or any file written.

    Why: `--fp32` spire-s and `--int8` spire-n used to report "identical 70 %" and rewrite the
    spire-n report and decode threshold from a comparison with another network. The two sidecars
    must name the same architecture (and its arguments) and, where both record it, the same source
    checkpoint (sha256); `--int8` must be an INT8 artifact and `--fp32` a float one.
    """
    if meta8.precision != "int8" or meta32.precision == "int8":
        raise SidecarError(f"{int8}: --int8 is {meta8.precision}, --fp32 is {meta32.precision}; pass the FP32 "
                           "(or FP16) artifact as --fp32 and the INT8 one as --int8")
    a32, a8 = (meta32.arch, meta32.arch_kwargs), (meta8.arch, meta8.arch_kwargs)
    if a32 != a8:
        raise SidecarError(f"{int8}: its sidecar names architecture {meta8.arch} {meta8.arch_kwargs or ''}, {fp32}'s "
                           f"{meta32.arch} {meta32.arch_kwargs or ''}: not the same model; pass the FP32 export of "
                           "the checkpoint this INT8 artifact was quantised from")
    s32, s8 = ((m.source_checkpoint or {}).get("sha256") for m in (meta32, meta8))
    if s32 and s8 and s32 != s8:
        raise SidecarError(f"{int8}: quantised from checkpoint sha256 {s8[:12]}…, but {fp32} was exported from "
                           f"{s32[:12]}…: not the same model; pass the FP32 export of the same checkpoint")


def recheck(fp32: str | Path, int8: str | Path, val_data: str | None, val_split: str = "val", frames: int = 212,
            threads: int = 2, bench_runs: int = 30) -> dict:
    """Rewrite `int8`/fidelity.json and the INT8 decode threshold; returns the report."""
    from quantize.fidelity import fidelity_report, publish_report, val_set
    from quantize.recipes import recipe_for_format

    fp32, int8 = Path(fp32), Path(int8)
    meta8 = read_sidecar(int8)
    same_model(read_sidecar(fp32), meta8, fp32, int8)
    vals = val_set(val_data, val_split, frames)
    with tempfile.TemporaryDirectory(prefix="spire_recheck_") as work:
        runnable = recipe_for_format(meta8.format).runnable(int8, Path(work))
        rep = fidelity_report(fp32, runnable, vals, threads, bench_runs, desc=f"fidelity {int8.name}",
                              labels=(fp32.name, int8.name))
    old = int8 / "fidelity.json"
    merged = json.loads(old.read_text()) if old.is_file() else {}
    merged.update(rep)
    publish_report(int8, merged, int8.name)
    return merged


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m quantize.recheck", description=__doc__.split("\n\n")[0])
    p.add_argument("--fp32", required=True, help="FP32 artifact folder (the reference)")
    p.add_argument("--int8", required=True, help="INT8 artifact folder whose report is rewritten")
    p.add_argument("--val-data", default=None, help="labelled validation root (default: synthetic frames)")
    p.add_argument("--val-split", default="val")
    p.add_argument("--frames", type=int, default=212, help="validation frames (seeded order)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bench-runs", type=int, default=30, help="latency runs per model (0: skip)")

    def run(a) -> int:
        recheck(a.fp32, a.int8, a.val_data, a.val_split, a.frames, a.threads, a.bench_runs)
        return 0

    return run_cli(run, argv, p)


if __name__ == "__main__":
    raise SystemExit(main())
