"""`python -m benchmarks.compare MODEL MODEL [...]`: models side by side on one clip, FPS as a ratio of one run.

Why: "is the new model faster than the one I run today, and does it find as much?" is the question a
release (or a user's own fine-tune) has to answer, and two `edge.run` calls minutes apart on a shared
host do not answer it: the load changes between them. Here every model makes `--rounds` full passes
over the same frames, the models taking turns (ABBA..., so a load spike hits every model alike), each
pass the runtime path itself (`edge.scoring.score` over `Predictor`: read, preprocess at the model's
own deployment contract, infer, decode). Per model: the median FPS of its passes (frames / wall time
of a pass), the metrics of its first pass, and the FPS ratio to the first model named.

    python -m benchmarks.compare spire-s spire-s-native --backend openvino      # today's default, then the candidate

Frames: the built-in clip by default (every frame, at its sensor resolution), or `--data ROOT --split S`.
Writes `OUT/compare.json` and `OUT/compare.md` in a new run folder.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.measure import load_frames, warm_up
from edge.cli import run_cli
from edge.outputs.runfolders import check_out_path, save_report


@dataclass
class Contender:
    """One model of the comparison: what it is, how it ran, what it found."""

    name: str
    path: str
    imgsz: int | None = None
    fit: str | None = None
    thr: float | None = None
    fps: list[float] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)

    @property
    def fps_median(self) -> float:
        return statistics.median(self.fps) if self.fps else 0.0


def one_pass(predictor, frames) -> tuple[float, dict]:
    """One scored pass through the runtime path: (frames per second of wall time, its metrics)."""
    from edge.scoring import score

    t0 = time.perf_counter()
    res = score(predictor, frames, progress=False)
    wall = time.perf_counter() - t0
    return res.frames / wall if wall > 0 else 0.0, res.scores.compute()


def compare(predictors: list, names: list[str], frames: list, rounds: int, warmup: int = 3,
            progress: bool = True) -> list[Contender]:
    """Every predictor makes `rounds` passes over `frames`, taking turns; returns one Contender each."""
    out = []
    for name, p in zip(names, predictors):
        out.append(Contender(name, str(p.model_path), p.size, p.cfg.fit, p.conf))
        warm_up(p, frames, warmup)
    from tqdm import tqdm

    with tqdm(total=rounds * len(predictors), desc="passes", unit="pass", disable=not progress) as bar:
        for r in range(rounds):
            order = range(len(predictors)) if r % 2 == 0 else reversed(range(len(predictors)))
            for i in order:
                fps, m = one_pass(predictors[i], frames)
                out[i].fps.append(fps)
                if not out[i].metrics:
                    out[i].metrics = m
                bar.update(1)
    return out


def markdown(rows: list[Contender], frames_label: str, backend: str, host: str) -> str:
    base = rows[0].fps_median or 1.0
    lines = [f"{frames_label}; backend {backend}; {host}; median of {len(rows[0].fps)} passes each, taking turns", "",
             "| model | input | fit | thr | FPS (median) | × first | recall | precision | F1 | false pts / frame |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in rows:
        m = c.metrics
        lines.append(f"| {c.name} | {c.imgsz} | {c.fit} | {c.thr} | {c.fps_median:.1f} | {c.fps_median / base:.2f}× | "
                     f"{m.get('recall', 0):.3f} | {m.get('precision', 0):.3f} | {m.get('f1', 0):.3f} | "
                     f"{m.get('fppi', 0):.3f} |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help="artifact folders, ladder names or checkpoints; ratios are to the first")
    p.add_argument("--backend", default="openvino", help="runtime every model runs on (default openvino)")
    p.add_argument("--data", default=None, help="labelled root (default: the built-in clip)")
    p.add_argument("--split", default="val", help="with --data: the validation list (never a test split)")
    p.add_argument("--frames", type=int, default=1000, help="at most this many frames, evenly spread")
    p.add_argument("--rounds", type=int, default=5, help="passes per model (the FPS is their median)")
    p.add_argument("--threads", type=int, default=None, help="runtime CPU threads (default: the runtime's)")
    p.add_argument("--out", default="runs/compare", help="run folder (a new one if it holds a run)")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv=None) -> int:
    from benchmarks.device import default_threads, device_string
    from edge.inference.predictor import Predictor
    from edge.model.zoo import resolve_artifact

    a = build_parser().parse_args(argv)
    if len(a.models) < 2 or a.rounds < 1:
        raise SystemExit("benchmarks.compare: name at least two models and --rounds >= 1")
    check_out_path(a.out, "--out")  # before the passes, not after them
    preds = [Predictor(resolve_artifact(m, a.backend), backend=a.backend, threads=a.threads) for m in a.models]
    frames = load_frames(a.data, a.split, a.frames, 512)
    h, w = frames[0].hw
    host = device_string(a.threads or default_threads())
    label = f"{Path(a.data).name} ({a.split})" if a.data else "the built-in clip"
    rows = compare(preds, list(a.models), frames, a.rounds, progress=not a.quiet)
    md = markdown(rows, f"{label}, {len(frames)} frames of {w}x{h}", a.backend, host)
    out = save_report(a.out, "compare", {"frames": label, "n_frames": len(frames), "backend": a.backend,
                                         "host": host, "models": [asdict(c) for c in rows]}, md)
    print(md + f"saved: {out}/compare.md")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
