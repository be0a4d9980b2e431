"""`python -m quantize.pick`: which INT8 artifact ships, and which artifact each backend runs by default.

Why a module (these rules were two inline scripts in the old weights/ship.sh; quantize.release runs it): they are the project's own
decisions, read from the fidelity reports, and `edge.model.zoo` follows their output
(`export/defaults.json`), so they are tested like the rest. Artifacts are found by their sidecars
(`edge.model.zoo.find_artifacts`), never by folder-name patterns.

    python -m quantize.pick EXPORT_DIR [--qat QAT_DIR] [--thr T [--fit pad] --thr-rule "why"]

- `--qat`: each QAT INT8 artifact replaces the PTQ artifact of the same name in EXPORT_DIR when its
  fidelity report has the higher INT8 F1 on validation (the PTQ report is kept as fidelity_ptq.json).
- then `EXPORT_DIR/defaults.json`: per format, the INT8 artifact where its report shows it faster
  than FP32 and within `F1_TOLERANCE` of FP32's F1, else the FP32 artifact.
- `--thr`: one decode threshold for the checkpoint beside EXPORT_DIR and every artifact in it,
  chosen on validation when the model's own per-artifact picks do not suit its deployment (the
  spire ladder: the worst-set rule picks SIRST-V2's threshold, which loses the faint drone
  targets). Each sidecar keeps the threshold it replaces and the rule in `extra.operating_point`.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
from pathlib import Path

from edge.cli import run_cli
from edge.errors import SpireEdgeError
from edge.io import atomic_write_json
from edge.inference.preprocess import FITS
from edge.model.sidecar import SIDECAR_NAME
from edge.model.zoo import DEFAULTS_NAME, find_artifacts

F1_TOLERANCE = 0.005  # the "within 0.5 F1 point"
REPORT = "fidelity.json"


def _report(folder: Path) -> dict | None:
    f = folder / REPORT
    return json.loads(f.read_text()) if f.is_file() else None


def prefer_qat(qat_root: str | Path, export_root: str | Path) -> list[str]:
    """Move QAT artifacts that beat their PTQ counterpart into `export_root`; returns one line per decision."""
    lines = []
    for folder, meta in find_artifacts(Path(qat_root)):
        q = _report(folder)
        if meta.precision != "int8" or q is None:
            continue
        ptq = Path(export_root) / folder.name
        p = _report(ptq) if ptq.is_dir() else None
        keep = "qat" if p is None or q["int8_f1"] > p["int8_f1"] else "ptq"
        lines.append(f"{folder.name}: INT8 F1 ptq {p['int8_f1'] if p else float('nan'):.4f} "
                     f"qat {q['int8_f1']:.4f} -> ship {keep}")
        if keep == "qat":
            if p is not None:
                shutil.copy(ptq / REPORT, folder / "fidelity_ptq.json")
                shutil.rmtree(ptq)
            shutil.move(str(folder), str(ptq))
    return lines


def write_defaults(export_root: str | Path) -> dict[str, str]:
    """Write `export_root/defaults.json` ({format: artifact folder name}) and return it."""
    by_fmt: dict[str, dict[str, Path]] = {}
    for folder, meta in sorted(find_artifacts(Path(export_root))):
        by_fmt.setdefault(meta.format, {}).setdefault(meta.precision, folder)
    defaults = {}
    for fmt, arts in sorted(by_fmt.items()):
        pick = arts.get("fp32")
        rep = _report(arts["int8"]) if "int8" in arts else None
        if rep and rep["int8_f1"] >= rep["fp32_f1"] - F1_TOLERANCE and (rep.get("speedup") or 0) > 1.0:
            pick = arts["int8"]
        if pick is not None:
            defaults[fmt] = pick.name
    atomic_write_json(Path(export_root) / DEFAULTS_NAME, defaults)
    return defaults


def _operating_point(side: Path) -> dict:
    return dict(json.loads(side.read_text()).get("extra", {}).get("operating_point") or {})


def _sidecars(export_root: Path) -> list[Path]:
    """The checkpoint's sidecar (beside `export_root`, when there) and every artifact's in it."""
    checkpoint_side = export_root.parent / SIDECAR_NAME
    sides = [checkpoint_side] if checkpoint_side.is_file() else []
    return sides + [folder / SIDECAR_NAME for folder, _ in sorted(find_artifacts(export_root))]


def set_tracking_point(export_root: str | Path, entry: dict) -> list[Path]:
    """Write the tracking operating point (`extra.operating_point.tracking`: thr, tracker settings,
    rule; edge.tracking.track_settings) into the checkpoint's sidecar and every artifact's. Only the sidecar
    JSON changes: its hashes are of the model files (edge.model.integrity), so the artifacts still load."""
    if not 0 < float(entry.get("thr", -1)) <= 1 or not str(entry.get("rule", "")).strip():
        raise SpireEdgeError("a tracking operating point needs thr in (0, 1] and the rule it was chosen by")
    sides = _sidecars(Path(export_root))
    for side in sides:
        meta = json.loads(side.read_text())
        meta.setdefault("extra", {}).setdefault("operating_point", {})["tracking"] = dict(entry)
        atomic_write_json(side, meta)
    return sides


def set_operating_point(export_root: str | Path, thr: float, rule: str, fit: str | None = None) -> list[Path]:
    """Write threshold `thr` (and, given, the small-frame policy `fit`: edge.inference.preprocess.FITS) into the
    checkpoint's sidecar (beside `export_root`) and every artifact's."""
    export_root = Path(export_root)
    checkpoint_side = export_root.parent / SIDECAR_NAME
    sides = _sidecars(export_root)
    # A re-exported artifact has no operating point yet: it inherits the checkpoint's, so
    # re-applying the same pick keeps the threshold it first replaced instead of erasing it.
    inherited = _operating_point(checkpoint_side) if sides and sides[0] == checkpoint_side else {}
    for side in sides:
        meta = json.loads(side.read_text())
        old = meta["codec"].get("thr")
        prior = meta.get("extra", {}).get("operating_point") or inherited
        report = side.parent / "fidelity.json"
        own = json.loads(report.read_text()).get("int8_thr") if report.is_file() else None
        if own is not None:
            old = float(own)  # an INT8 artifact's own pick on validation
        elif old == float(thr) and prior.get("thr") == float(thr) and "replaces" in prior:
            old = prior["replaces"]  # already at this pick (a re-export took it): keep what it first replaced
        meta["codec"]["thr"] = float(thr)
        point = {"thr": float(thr), "replaces": old, "rule": rule}
        if "tracking" in prior:  # chosen with this detector's points: kept, the sweep re-chooses it
            point["tracking"] = prior["tracking"]
        if fit is not None:
            meta["preprocess"]["fit"] = fit
            point["fit"] = fit
        meta.setdefault("extra", {})["operating_point"] = point
        atomic_write_json(side, meta)
    return sides


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m quantize.pick", description=__doc__.split("\n\n")[0])
    p.add_argument("export", help="folder of exported artifacts (e.g. weights/shipped/export)")
    p.add_argument("--qat", help="folder of QAT artifacts to compare with the PTQ ones first")
    p.add_argument("--thr", type=float, help="one decode threshold for the checkpoint and all its artifacts")
    p.add_argument("--thr-rule", default="", help="with --thr: how it was chosen (kept in each sidecar)")
    p.add_argument("--fit", choices=FITS, help="with --thr: how frames smaller than the input are run where the "
                   "runtime takes any size (native: own size; pad: padded to the input), chosen on validation "
                   "with the threshold (python -m spire.thresholds --mode auto|static)")

    def run(a) -> int:
        from edge.argcheck import score_threshold_ok

        if a.thr is not None and (not score_threshold_ok(a.thr) or not a.thr_rule.strip()):
            raise SpireEdgeError("--thr must be in (0, 1] and come with --thr-rule saying how it was chosen")
        try:
            return _pick(a)
        except PermissionError as e:  # a read-only export folder: one line before or after the first write
            raise SpireEdgeError(f"{e.filename or a.export}: cannot write here ({e.strerror}); run quantize.pick "
                                 "on a writable copy of the export folder, or fix its permissions") from None

    def _pick(a) -> int:
        if not os.access(a.export, os.W_OK) and Path(a.export).is_dir():
            raise PermissionError(errno.EACCES, "read-only folder", str(a.export))
        for line in prefer_qat(a.qat, a.export) if a.qat else []:
            print(line)
        for fmt, name in write_defaults(a.export).items():
            print(f"default {fmt}: {name}")
        if a.thr is not None:
            n = len(set_operating_point(a.export, a.thr, a.thr_rule, a.fit))
            print(f"threshold {a.thr:g}{f', fit {a.fit}' if a.fit else ''} in {n} sidecar(s)")
        elif a.fit:
            raise SpireEdgeError("--fit is part of the operating point: pass it with --thr T --thr-rule \"why\"")
        return 0

    return run_cli(run, argv, p)


if __name__ == "__main__":
    raise SystemExit(main())
