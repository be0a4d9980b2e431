"""`python -m quantize.release RUN --to weights/<rung>`: promote a training run to a rung and rebuild what ships.

Why a command (it was `weights/ship.sh`, bash with environment variables): a rung's shipped set (the
checkpoint, its sidecar and log, its exports in every format of the target table, FP32 and INT8)
must be rebuilt from one checkpoint with one command, together, so every sidecar names the same
source checkpoint; and what differs per rung (the decode threshold and why, how frames that fit are
run, the calibration and fidelity data, per-backend PTQ options) is data, kept in the rung's own
`release.json` beside its weights, not in a shell environment someone has to remember.

    python -m quantize.release runs/r28 --to weights/shipped            # settings: weights/shipped/release.json
    python -m quantize.release runs/r28 --to weights/spire-x --settings my_release.json

Steps: stage a hidden folder beside the destination; copy the run's checkpoint, sidecar, log and
options; export FP32 for every format with an exporter in `edge.model.targets.TARGETS` (+ the FP16 ones the
settings name) at the size the checkpoint is deployed at; set the threshold (quantize.pick); PTQ per
INT8 recipe (`quantize.recipes.RECIPES`, each following the architecture's recipe); pick the INT8
artifact and per-backend defaults; swap the folder in. A failed required step leaves the destination
as it was. Each step is the documented command, run in its own process.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from edge.cli import run_cli
from edge.errors import SpireEdgeError
from edge.model.targets import TARGETS
from quantize.recipes import RECIPES

SETTINGS_NAME = "release.json"
RUN_FILES = ("best.pt", "metadata.json", "log.csv", "train_args.json")


class ReleaseError(SpireEdgeError):
    """A release that cannot start (missing run files or settings) or whose required step failed."""


@dataclass
class ReleaseSettings:
    """One rung's release settings (`<rung>/release.json`): everything that is not in the checkpoint."""

    thr: float | None = None  # one decode threshold for the checkpoint and every artifact (None: keep)
    thr_rule: str = ""  # how it was chosen, kept in every sidecar's extra.operating_point
    fit: str | None = None  # frames that fit the input: run at their own size (native) or padded (pad)
    calib_data: str | list[str] = "sirst-v2"  # root(s) under --data-root; training split only, never a test split
    calib_split: str = "train"
    calib_frames: int = 300
    val_data: str = "sirst-v2"
    val_split: str = "val"
    val_frames: int = 212
    fp16: list[str] = field(default_factory=lambda: ["tflite"])
    required_int8: list[str] = field(default_factory=lambda: ["onnxruntime", "openvino"])
    ptq_args: dict[str, list[str]] = field(default_factory=dict)  # extra quantize.ptq options per backend
    threads: int = 2

    @property
    def calib_roots(self) -> list[str]:
        return [self.calib_data] if isinstance(self.calib_data, str) else list(self.calib_data)

    @classmethod
    def load(cls, path: Path) -> "ReleaseSettings":
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ReleaseError(f"{path}: unreadable release settings ({e}); write them as JSON with keys "
                               f"{', '.join(f.name for f in fields(cls))}") from None
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ReleaseError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: "
                               f"{', '.join(f.name for f in fields(cls))}")
        return cls(**d)


def _step(cmd: list[str], what: str, log: Path) -> bool:
    """Run one documented command; its output goes to `log`; True when it succeeded."""
    print(f"release: {what}", flush=True)
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode == 0


def _last_line(log: Path) -> str:
    lines = [ln for ln in log.read_text().splitlines() if ln.strip()] if log.is_file() else []
    return lines[-1] if lines else "(no output)"


def _exports(stage: Path, s: ReleaseSettings, log: Path) -> None:
    """FP32 of every exportable format (and the FP16 ones asked for), at the checkpoint's deployed size."""
    py, w = sys.executable, str(stage / "best.pt")
    jobs = [(t.format, "fp32") for t in TARGETS.values() if getattr(t, "exporter", None)]
    jobs += [(fmt, "fp16") for fmt in s.fp16]
    for fmt, prec in jobs:
        if not _step([py, "-m", "export", "--weights", w, "--target", fmt, "--precision", prec,
                      "--out", str(stage / "export")], f"export {fmt} {prec}", log):
            raise ReleaseError(f"export {fmt} {prec} failed: {_last_line(log)} (full log: {log})")


def _int8(stage: Path, s: ReleaseSettings, data_root: Path, log: Path) -> None:
    """PTQ per backend; a backend that is not required and cannot be made faithful is named in NOT_SHIPPED.txt."""
    py, w = sys.executable, str(stage / "best.pt")
    for backend in RECIPES:
        cmd = [py, "-m", "quantize.ptq", "--weights", w, "--backend", backend,
               "--data", *[str(data_root / d) for d in s.calib_roots], "--split", s.calib_split,
               "--frames", str(s.calib_frames),
               "--val-data", str(data_root / s.val_data), "--val-split", s.val_split,
               "--val-frames", str(s.val_frames), "--threads", str(s.threads), "--allow-drop",
               "--out", str(stage / "export"), *s.ptq_args.get(backend, [])]
        if _step(cmd, f"int8 {backend}", log):
            continue
        if backend in s.required_int8:
            raise ReleaseError(f"int8 {backend} failed: {_last_line(log)} (full log: {log})")
        with open(stage / "export" / "NOT_SHIPPED.txt", "a") as f:
            f.write(f"{backend} int8: {_last_line(log)}\n")


def _pick(stage: Path, s: ReleaseSettings, log: Path) -> None:
    cmd = [sys.executable, "-m", "quantize.pick", str(stage / "export")]
    if s.thr is not None:
        cmd += ["--thr", str(s.thr), "--thr-rule", s.thr_rule or "set by quantize.release"]
        cmd += ["--fit", s.fit] if s.fit else []
    if not _step(cmd, "pick the INT8 artifacts, threshold and defaults", log):
        raise ReleaseError(f"quantize.pick failed: {_last_line(log)} (full log: {log})")


def release(run: Path, dst: Path, settings: ReleaseSettings, data_root: Path) -> Path:
    """Build the rung in a hidden folder beside `dst` and swap it in; returns `dst`."""
    missing = [f for f in RUN_FILES if not (run / f).is_file()]
    if missing:
        raise ReleaseError(f"{run}: no {', '.join(missing)}; pass a finished spire.train run (or spire.promote's)")
    for root in {*settings.calib_roots, settings.val_data}:
        if not (data_root / root).is_dir():
            raise ReleaseError(f"{data_root / root}: no such dataset; pass --data-root or fix {SETTINGS_NAME}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{dst.name}.release.", dir=dst.parent))
    log = stage / "release.log"
    try:
        for f in RUN_FILES:
            shutil.copy2(run / f, stage / f)
        (stage / SETTINGS_NAME).write_text(json.dumps(asdict(settings), indent=2) + "\n")
        _exports(stage, settings, log)
        if settings.thr is not None:  # before PTQ: each fidelity report scores the threshold that ships
            _pick(stage, settings, log)
        _int8(stage, settings, data_root, log)
        _pick(stage, settings, log)
        for keep in ("MODEL_CARD.md", "hard_negatives.csv", "lineage"):  # the rung's card and history stay
            if (dst / keep).is_file():
                shutil.copy2(dst / keep, stage / keep)
            elif (dst / keep).is_dir():
                shutil.copytree(dst / keep, stage / keep)
    except BaseException:
        kept = dst.parent / f"{dst.name}.release-failed.log"
        if log.is_file():
            shutil.copy2(log, kept)
            print(f"release: the log of the failed release is {kept}", file=sys.stderr)
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = dst.with_name(f".{dst.name}.old")
    if dst.exists():
        shutil.rmtree(old, ignore_errors=True)
        dst.rename(old)
    stage.rename(dst)
    shutil.rmtree(old, ignore_errors=True)
    return dst


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m quantize.release", description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a finished spire.train run folder (best.pt, metadata.json, log.csv, ...)")
    p.add_argument("--to", type=Path, required=True, help="the rung's folder, e.g. weights/shipped")
    p.add_argument("--settings", type=Path, default=None,
                   help=f"release settings (default: <--to>/{SETTINGS_NAME}, else the defaults)")
    p.add_argument("--data-root", type=Path, default=Path("../shared/data"), help="where the settings' datasets are")
    return p


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    path = a.settings or a.to / SETTINGS_NAME
    settings = ReleaseSettings.load(path) if path.is_file() else ReleaseSettings()
    if not path.is_file():
        print(f"release: no {path}; using the default settings (written into the rung as {SETTINGS_NAME})")
    dst = release(a.run, a.to, settings, a.data_root)
    print(f"shipped: {dst}\nnext: python -m benchmarks.run --ladder --data {a.data_root}/sirst-v2 "
          f"{a.data_root}/irstd-1k {a.data_root}/ir-drone --split val --frame-stride 10 --backends openvino "
          "--precisions int8")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
