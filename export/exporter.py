"""Dispatch one export request to its exporter (fp32/fp16), or hand int8 off to `python -m quantize.ptq`.

Why a separate module: the CLI, the benchmarks and the tests all call `export_model(cfg)` with a
typed `ExportConfig`; the format table decides which exporter runs, so no caller repeats the
format/precision rules or the int8 hand-off.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edge.model.sidecar import SIDECAR_NAME
from edge.model.zoo import find_artifacts
from export.common import ExportError, load_source, round_imgsz
from export.formats import Format, check_precision, get_format

DEFAULT_OUT = Path("runs/export")


@dataclass(frozen=True)
class ExportConfig:
    """One export request (the `python -m export` flags).

    Args:
        target: onnx | openvino | tflite | tensorrt.
        weights: checkpoint; None: the shipped model (`edge.model.zoo.default_checkpoint()`).
        precision: fp32 | fp16 | int8 (int8 is handed to `python -m quantize.ptq` with data/split/frames).
        imgsz: static input size, rounded up to a multiple of 32; None: the checkpoint's.
        out: parent folder of the artifact folder.
        opset: ONNX opset (None: 18, or 17 for TensorRT).
        lint: run polygraphy's lint on TensorRT ONNX files.
        exist_ok: when the artifact folder already holds files, write to the first free NAME2,
            NAME3, ... beside it instead of refusing (an existing folder is never replaced).
    """

    target: str
    weights: Path | None = None
    precision: str = "fp32"
    imgsz: int | None = None
    out: Path = DEFAULT_OUT
    data: str | None = None
    split: str = "train"
    frames: int | None = None
    ignored_scope: tuple[str, ...] = field(default_factory=tuple)
    opset: int | None = None
    lint: bool = True
    exist_ok: bool = False


def export_model(cfg: ExportConfig) -> Path:
    """Run the export; returns the artifact folder (model file(s) + metadata.json)."""
    fmt = get_format(cfg.target)
    precision = check_precision(fmt, cfg.precision)
    if cfg.opset is not None and not 13 <= cfg.opset <= 21:
        raise ExportError(f"--opset {cfg.opset}: choose 13..21 (17 or 18 recommended)")
    imgsz = round_imgsz(cfg.imgsz) if cfg.imgsz else None
    from edge.outputs.runfolders import check_out_path, writable_folder

    check_out_path(cfg.out, "--out")  # a path under a file fails here, not after the export
    if precision == "int8":
        return _export_int8(cfg, fmt, imgsz)
    src = load_source(cfg.weights, imgsz)
    out = Path(cfg.out)
    final = fmt.folder(out, src.arch, src.imgsz, precision)
    if _holds_files(final) and not cfg.exist_ok:  # before the work: nothing is replaced, nothing is lost
        raise ExportError(_taken(final, out))
    from edge.io import remove_stale_temps, temp_prefix

    writable_folder(out, "--out")
    remove_stale_temps(out)  # work folders of killed exports (their process is gone)
    kw = {"opset": cfg.opset} if cfg.opset else {}
    work = Path(tempfile.mkdtemp(prefix=temp_prefix("export"), suffix=".tmp", dir=out))
    try:
        built = fmt.exporter_fn()(src, work, precision=precision, lint=cfg.lint, **kw)
        return place_folder(built, final, move=cfg.exist_ok, why=lambda: _taken(final, out))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _holds_files(folder: Path) -> bool:
    return folder.is_dir() and any(True for _ in folder.iterdir()) or folder.is_file()


def _taken(final: Path, out: Path) -> str:
    held = sorted(p.name for p in final.iterdir())[:3] if final.is_dir() else []
    return (f"--out {out}: {final} already holds {'files (' + ', '.join(held) + ', ...)' if held else 'a file'}; "
            f"pass --exist-ok to write this export to a new folder beside it, or another --out (an existing "
            "artifact folder is never replaced)")


def place_folder(built: Path, final: Path, move: bool, why) -> Path:
    """Rename the finished folder `built` to `final` (or the first free `final2`, ... with `move`), never over files.

    Create-exclusive (os.mkdir), then a rename onto that empty folder: two exports finishing at
    once cannot both take one name. Without `move`, a taken `final` raises ExportError(why()).
    """
    for k in range(1, 10000):
        cand = final if k == 1 else final.with_name(f"{final.name}{k}")
        try:
            os.mkdir(cand)
        except FileExistsError:
            if _holds_files(cand):
                if move:
                    continue
                raise ExportError(why()) from None
        try:
            os.rename(built, cand)  # onto an empty folder: atomic; onto a non-empty one: refused by the OS
        except OSError:
            if move and _holds_files(cand):
                continue
            raise
        if cand != final:
            print(f"note: {final} already holds files; this export is in {cand} (--exist-ok)", file=sys.stderr)
        return cand
    raise ExportError(f"{final}: 9999 numbered folders beside it are taken; clean up or pass another --out")


def int8_command(cfg: ExportConfig, fmt: Format, imgsz: int | None) -> list[str]:
    """The `python -m quantize.ptq` command an `--precision int8` export hands off to."""
    cmd = [sys.executable, "-m", "quantize.ptq", "--backend", fmt.backend, "--out", str(cfg.out),
           "--split", cfg.split]
    for flag, value in (("--weights", cfg.weights), ("--data", cfg.data), ("--imgsz", imgsz), ("--frames", cfg.frames)):
        if value:
            cmd += [flag, str(value)]
    if cfg.ignored_scope:
        cmd += ["--ignored-scope", *cfg.ignored_scope]
    return cmd


def _export_int8(cfg: ExportConfig, fmt: Format, imgsz: int | None) -> Path:
    """INT8 is post-training quantization, quantize.ptq's job (artifact + fidelity report): handed off by command.

    Why a command and not an import: INT8 flows one way, quantize -> export (quantize builds on
    export's ONNX, sidecars and TensorRT checks), so export never imports quantize.
    """
    cmd = int8_command(cfg, fmt, imgsz)
    print(f"export: int8 is post-training quantization; running {shlex.join(cmd[1:])}", flush=True)
    before = _int8_sidecars(Path(cfg.out), fmt.name)
    rc = subprocess.run(cmd).returncode
    if rc:
        raise ExportError(f"`python {shlex.join(cmd[1:])}` failed (exit {rc}); its error is printed above")
    hits = [f for f, stamp in _int8_sidecars(Path(cfg.out), fmt.name).items() if before.get(f) != stamp]
    if not hits:
        raise ExportError(f"quantize.ptq wrote no {fmt.name} int8 artifact under {cfg.out}; run "
                          f"`python -m quantize.ptq --backend {fmt.backend}` to see why")
    return hits[0]


def _int8_sidecars(out: Path, fmt: str) -> dict[Path, int]:
    """int8 artifact folders of `fmt` under `out` -> their sidecar's mtime (what a new run changes)."""
    return {f: (f / SIDECAR_NAME).stat().st_mtime_ns for f, m in find_artifacts(out)
            if m.format == fmt and m.precision == "int8"}


def next_command(folder: Path, fmt_name: str) -> str:
    """What to run after an export (printed by the CLI)."""
    return get_format(fmt_name).next_step(folder)
