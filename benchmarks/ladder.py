"""`python -m benchmarks.run --ladder --data VAL...`: one table of the model family, rung by rung.

Why a table of its own: the default model is the smallest rung that meets the accuracy goals,
so the choice needs, side by side and from one run, each rung's validation accuracy on every
set (each scored on its own: the sets disagree), its size and compute, and its speed on the
backend it ships for, against the published SPIRE architecture in torch (the reference every
speed-up in the README is measured against).

Each rung is measured the way a user runs it:
- accuracy: the rung's committed export for `--backends`/`--precisions` (found in its weights
  folder's export/, or exported now by `benchmarks.artifacts`), run through
  `edge.inference.predictor.Predictor` (native resolution, tiled where larger than the input, the
  sidecar's threshold) over `edge.sources.open_source(ROOT, split, stride)` and scored by
  `edge.scoring.score` into a `RunScores`: the same reader, predictor and metrics `python -m edge.run --source
  ROOT --split val` uses, so the figures are edge.run's;
- size: parameters and GMAC of one `--imgsz`² forward pass (`spire.models.summary`);
- speed: `benchmarks.measure.measure` on synthetic `--imgsz`² frames, end to end (read, preprocess,
  infer, decode), median, threads pinned; the official row is torch eager FP32 on the same frames.

    python -m benchmarks.run --ladder --data ../shared/data/sirst-v2 ../shared/data/ir-drone --split val \\
        --frame-stride 10 --backends openvino --precisions int8 --imgsz 512 --out runs/ladder
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.artifacts import ArtifactMaker, one_line
from benchmarks.measure import measure, synthetic_frames
from benchmarks.rows import Row
from edge.errors import SpireEdgeError
from edge.scoring import SourceFrames, score
from edge.sources import open_source


@dataclass
class Rung:
    """One line of the ladder table; `sets` maps a validation root's name to its edge.run metrics."""

    name: str
    checkpoint: str | None = None
    artifact: str | None = None
    status: str = "pending"
    params: int | None = None
    gmac: float | None = None
    sets: dict = field(default_factory=dict)
    latency_ms_p50: float | None = None
    infer_ms_p50: float | None = None
    speedup: float | None = None
    thr: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def score_source(predictor, root: str, split: str, stride: int, progress: bool) -> dict:
    """edge.run's metrics of `predictor` over one labelled root (its reader, matching and counts)."""
    source = open_source(root, None, split, stride)
    try:
        res = score(predictor, SourceFrames(source), progress=progress, desc=f"  {Path(root).name}")
    finally:
        source.close()
    r = res.compute()
    return {k: r[k] for k in ("precision", "recall", "f1", "fppi", "fp_per_target_free_frame", "images", "targets",
                              "target_free_frames")}


def _size(rung: Rung, model, imgsz: int) -> None:
    from spire.models.summary import count_macs, count_params

    rung.params, rung.gmac = count_params(model, trainable=False), count_macs(model, imgsz) / 1e9


def measure_rung(name: str, cfg, roots: list[str], stride: int, frames: list) -> Rung:
    """One rung: find/export its artifact, score every root, time it; a failure is its status."""
    from edge.inference.predictor import Predictor
    from edge.model.zoo import named_checkpoint
    from spire.models import load_checkpoint

    backend, precision = cfg.backends[0], cfg.precisions[0]
    rung = Rung(name)
    try:
        ckpt = named_checkpoint(name)
        if not ckpt.is_file():
            raise SpireEdgeError(f"{ckpt}: no checkpoint for rung {name!r} (weights/ladder.json names its folder)")
        rung.checkpoint = str(ckpt)
        _size(rung, load_checkpoint(ckpt)[0], cfg.imgsz)
        maker = ArtifactMaker(ckpt, cfg.imgsz, cfg.out / "artifacts", calib_data=cfg.calib_data,
                              calib_split=cfg.calib_split, calib_frames=cfg.calib_frames, reuse=cfg.reuse,
                              quiet=not cfg.verbose)
        folder = maker.get(backend, precision)
        rung.artifact = str(folder)
        pred = Predictor(folder, backend=backend, threads=cfg.threads)
        rung.thr = pred.conf
        for root in roots:
            rung.sets[Path(root).name] = score_source(pred, root, cfg.split, stride, cfg.progress)
        row = measure(Row(name, backend, precision, "shipped"), pred, frames, cfg.timing, progress=cfg.progress,
                      scored=False)
        rung.latency_ms_p50, rung.infer_ms_p50 = row.latency_ms_p50, row.infer_ms_p50
        rung.status = "ok"
    except Exception as e:  # noqa: BLE001 - one failing rung must not stop the table
        rung.status = f"failed: {one_line(e)}"
    return rung


def measure_official(cfg, roots: list[str], stride: int, frames: list) -> Rung:
    """The published SPIRE architecture (SIRST4 weights when found) in torch eager FP32, letterboxed."""
    from benchmarks.run import _official_predictor

    rung = Rung("official SPIRE (torch fp32)")
    try:
        row = Row(rung.name, "torch", "fp32", "official")
        pred = _official_predictor(cfg, row)
        rung.artifact = row.artifact
        rung.name = row.name
        from spire.models import create_model, load_official

        _size(rung, load_official(cfg.official) if cfg.official and cfg.official.is_file()
              else create_model("hrpe"), cfg.imgsz)
        rung.thr = pred.conf
        if cfg.official and cfg.official.is_file():  # random weights have no accuracy to report
            for root in roots:
                rung.sets[Path(root).name] = score_source(pred, root, cfg.split, stride, cfg.progress)
        measure(row, pred, frames, cfg.timing, progress=cfg.progress, scored=False)
        rung.latency_ms_p50, rung.infer_ms_p50 = row.latency_ms_p50, row.infer_ms_p50
        rung.status = "ok"
    except Exception as e:  # noqa: BLE001
        rung.status = f"failed: {one_line(e)}"
    return rung


def _f(v, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def markdown(rungs: list[Rung], roots: list[str], imgsz: int, backend: str, precision: str) -> str:
    names = [Path(r).name for r in roots]
    head = ["rung", "params", f"GMAC @{imgsz}²"]
    for n in names:
        head += [f"{n} F1", f"{n} recall", f"{n} false pts / frame", f"{n} false pts / target-free frame"]
    head += [f"{backend} {precision} e2e ms @{imgsz}² (official: torch fp32)", "speed-up", "thr", "status"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]
    for r in rungs:
        cells = [r.name, _f(r.params and r.params / 1e6, ".3f") + " M" if r.params else "n/a", _f(r.gmac, ".2f")]
        for n in names:
            s = r.sets.get(n) or {}
            cells += [_f(s.get("f1"), ".3f"), _f(s.get("recall"), ".3f"), _f(s.get("fppi"), ".3f"),
                      _f(s.get("fp_per_target_free_frame"), ".3f")]
        cells += [_f(r.latency_ms_p50, ".2f"), (f"{r.speedup:.1f}x" if r.speedup else "n/a"), _f(r.thr, ".2f"),
                  r.status]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def run_ladder(cfg, roots: list[str], stride: int, names: list[str] | None = None, command: str = "") -> list[Rung]:
    """Measure every rung (weights/ladder.json order, or `names`) and the official row; write and print the table."""
    from benchmarks.device import device_string
    from edge.outputs.runfolders import new_run_folder, release_claim
    from edge.model.zoo import ladder

    if not roots:
        raise SpireEdgeError("--ladder needs --data VAL_ROOT [VAL_ROOT ...]: the validation sets each rung is "
                             "scored on (e.g. ../shared/data/sirst-v2 ../shared/data/ir-drone --split val)")
    names = names or list((ladder().get("models") or {}))
    if not names:
        raise SpireEdgeError("weights/ladder.json lists no models; pass --rungs NAME ... or restore the file")
    backends, precisions = cfg.backends or ["openvino"], cfg.precisions or ["int8"]
    if len(backends) != 1 or len(precisions) != 1:
        raise SpireEdgeError("--ladder measures one artifact per rung: pass one --backends and one --precisions "
                             "(default: openvino int8)")
    from dataclasses import replace

    cfg = replace(cfg, backends=backends, precisions=precisions)
    out, moved = new_run_folder(cfg.out, "--out", markers=("ladder.json",))
    if moved:
        print(f"note: {cfg.out} already holds a ladder table; this one goes to {out}", file=sys.stderr)
    cfg = replace(cfg, out=out)
    frames = synthetic_frames(cfg.frames, cfg.imgsz)
    device = device_string(cfg.threads)
    print(f"ladder: {', '.join(names)} as {backends[0]} {precisions[0]}; scored on "
          f"{', '.join(f'{Path(r).name} ({cfg.split})' for r in roots)}; {device}", file=sys.stderr)
    rungs = []
    if cfg.with_official:
        t0 = time.perf_counter()
        rungs.append(measure_official(cfg, roots, stride, frames))
        print(f"  {rungs[-1].name}: {rungs[-1].status} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    for name in names:
        t0 = time.perf_counter()
        rungs.append(measure_rung(name, cfg, roots, stride, frames))
        print(f"  {name}: {rungs[-1].status} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    ref = rungs[0].latency_ms_p50 if cfg.with_official and rungs[0].ok else None
    for r in rungs:
        r.speedup = ref / r.latency_ms_p50 if ref and r.latency_ms_p50 else None
    table = markdown(rungs, roots, cfg.imgsz, backends[0], precisions[0])
    meta = {"command": command, "device": device, "threads": cfg.threads, "imgsz": cfg.imgsz, "split": cfg.split,
            "frame_stride": stride, "roots": roots, "speed_frames": len(frames), "timing": vars(cfg.timing),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rungs": [asdict(r) for r in rungs]}
    (out / "ladder.json").write_text(json.dumps(meta, indent=2, default=str))
    (out / "ladder.md").write_text(f"{command}\n\n{device}\n\n{table}\n")
    release_claim(out)  # the table is written: the folder now holds a run by its own files
    print(table)
    print(f"wrote: {out / 'ladder.json'}, {out / 'ladder.md'}")
    return rungs
