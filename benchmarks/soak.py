"""`python -m benchmarks.soak --minutes N`: edge.run's own loop for N minutes; latency and memory per minute.

Why: a device runs for days, not for a 100-frame benchmark. A leak of a few hundred bytes per
frame (a list that keeps every latency, a metric that keeps every match, a decoder not released)
or a cost that grows with the frames seen (percentiles over everything so far) is invisible in a
short run and fatal in a long one. This loops the built-in clip (edge.demo; `--source` for
another) through exactly what `python -m edge.run` runs — `edge.run.Run` with its Predictor,
stats, metrics and (`--track`) tracker — reopening the source at the end of each pass, and
reports per minute: frames, pipeline latency p50/p99 (read to decode, as edge.run reports it),
the p99 of the whole loop cycle (everything between two frames: summaries, metrics, tracker),
and the resident memory (RSS, /proc/self/statm).

Goals (issue 16): after the first (warm-up) minute RSS grows by at most 5 MB per 20,000 frames,
and the last minute's p99 stays within 1.5x of the first minute's.

    python -m benchmarks.soak --minutes 3 [--backend openvino] [--track] [--json soak.json]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from edge.cli import run_cli

GOAL_RSS_MB_PER_20K = 5.0
GOAL_P99_RATIO = 1.5


def rss_mb() -> float:
    """Resident set size of this process in MB (/proc/self/statm; psutil or getrusage's peak elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return psutil.Process().memory_info().rss / 1e6
    except ImportError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # peak, KB on Linux


@dataclass
class Minute:
    """One row of the soak table."""

    minute: int
    frames: int
    total_frames: int
    p50_ms: float | None
    p99_ms: float | None
    cycle_p99_ms: float | None
    rss_mb: float


@dataclass
class SoakReport:
    minutes: list[Minute] = field(default_factory=list)
    passes: int = 0
    host: str = ""
    command: str = ""
    backend: str = ""
    model: str = ""
    source: str = ""
    track: bool = False

    def verdict(self) -> dict:
        """RSS growth after the warm-up minute (per 20,000 frames) and last-minute p99 / first-minute p99."""
        out: dict = {"rss_goal_mb_per_20k": GOAL_RSS_MB_PER_20K, "p99_goal_ratio": GOAL_P99_RATIO}
        full = [m for m in self.minutes if m.p99_ms is not None]
        if len(full) >= 2:
            warm, last = full[0], full[-1]
            frames = last.total_frames - warm.total_frames
            growth = last.rss_mb - warm.rss_mb
            out.update(rss_growth_mb=round(growth, 2), frames_after_warmup=frames,
                       rss_mb_per_20k=round(growth * 20000 / frames, 2) if frames else None,
                       p99_ratio=round(last.p99_ms / warm.p99_ms, 3) if warm.p99_ms else None,
                       cycle_p99_ratio=(round(last.cycle_p99_ms / warm.cycle_p99_ms, 3)
                                        if warm.cycle_p99_ms and last.cycle_p99_ms else None))
            out["rss_ok"] = out["rss_mb_per_20k"] is not None and out["rss_mb_per_20k"] <= GOAL_RSS_MB_PER_20K
            out["p99_ok"] = out["p99_ratio"] is not None and out["p99_ratio"] <= GOAL_P99_RATIO
        return out

    def table(self) -> str:
        rows = ["| minute | frames | total frames | p50 ms | p99 ms | loop-cycle p99 ms | RSS MB |",
                "|---:|---:|---:|---:|---:|---:|---:|"]
        for m in self.minutes:
            rows.append(f"| {m.minute} | {m.frames} | {m.total_frames} | {_f(m.p50_ms)} | {_f(m.p99_ms)} | "
                        f"{_f(m.cycle_p99_ms)} | {m.rss_mb:.1f} |")
        return "\n".join(rows)


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


class LoopedSource:
    """The run's source, reopened at each end until the deadline; per-minute figures taken between frames.

    Everything `edge.run.Run` asks of a source is answered by the pass being read.
    """

    def __init__(self, run, opener, seconds: float, minute_s: float = 60.0, report: SoakReport | None = None):
        self.run, self.opener = run, opener
        self.current = run.source
        self.seconds, self.minute_s = float(seconds), float(minute_s)
        self.soak = report or SoakReport()

    def __getattr__(self, name):
        return getattr(self.__dict__["current"], name)

    def __len__(self) -> int:
        return 0  # open-ended (a progress bar without a total)

    def __iter__(self):
        stats = self.run.stats
        t0 = time.perf_counter()
        start, last, minute_i, cycles, lat = t0, None, 0, [], []  # this minute's values only
        frames_from, seen = stats.frames, stats.frames
        first = True
        while True:
            if not first:  # reopen: a camera that reconnects, a clip played again
                self.current.close()
                self.current = self.opener()
            first = False
            self.soak.passes += 1
            got = 0
            for item in self.current:
                now = time.perf_counter()
                if last is not None:
                    cycles.append((now - last) * 1000.0)
                if stats.frames > seen:  # the frame before this one was processed (not skipped)
                    lat.append(stats.latency["total"].last)
                    seen = stats.frames
                last = now
                if now - start >= self.minute_s or now - t0 >= self.seconds:
                    minute_i += 1
                    self.soak.minutes.append(Minute(
                        minute_i, stats.frames - frames_from, stats.frames,
                        _pct(lat, 50), _pct(lat, 99), _pct(cycles, 99), round(rss_mb(), 2)))
                    m = self.soak.minutes[-1]
                    print(f"soak: minute {m.minute}: {m.frames} frames, p50 {_f(m.p50_ms)} ms, p99 {_f(m.p99_ms)} ms, "
                          f"cycle p99 {_f(m.cycle_p99_ms)} ms, RSS {m.rss_mb:.1f} MB", file=sys.stderr, flush=True)
                    start, cycles, lat, frames_from = now, [], [], stats.frames
                    if now - t0 >= self.seconds:
                        return
                got += 1
                yield item
            if not got:
                return  # an empty pass: nothing left to loop


def _pct(values, q: float) -> float | None:
    return round(float(np.percentile(np.asarray(values, np.float64), q)), 3) if len(values) else None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, required=True, help="how long to run (the first minute is the warm-up)")
    p.add_argument("--source", help="what to loop (default: the built-in clip, as edge.run)")
    p.add_argument("--model", help="artifact (default: the shipped one for the backend, as edge.run)")
    p.add_argument("--backend", help="runtime (default as edge.run)")
    p.add_argument("--threads", type=int, help="runtime CPU threads")
    p.add_argument("--track", action="store_true", help="with edge.run's tracker (edge.tracking.tracker)")
    p.add_argument("--minute-s", type=float, default=60.0, help=argparse.SUPPRESS)  # tests: shorter 'minutes'
    p.add_argument("--json", help="write the table and verdict here")
    return p


def soak(a: argparse.Namespace, command: str = "") -> SoakReport:
    """Run edge.run's loop for `a.minutes` over the looped source; returns the report."""
    from edge import run as edge_run
    from edge.argcheck import ArgumentError
    from edge.sources import open_source

    if not a.minutes > 0:
        raise ArgumentError(f"--minutes {a.minutes}: must be > 0")
    argv = ["--quiet", "--warmup", "3", "--overlay-every", "0"]
    for flag, v in (("--source", a.source), ("--model", a.model), ("--backend", a.backend), ("--threads", a.threads)):
        if v is not None:
            argv += [flag, str(v)]
    parser = edge_run.build_parser()
    track = bool(a.track)
    if track:
        if "--track" not in parser._option_string_actions:
            raise ArgumentError("--track: this edge.run has no tracker yet")
        argv.append("--track")
    args = parser.parse_args(argv)
    args.imgsz = getattr(args, "imgsz", None)
    edge_run._check_args(args)
    run = edge_run.Run(args)

    def opener():
        return open_source(args.source, args.frames, args.split, getattr(args, "frame_stride", 1),
                           getattr(args, "realtime", False))

    from benchmarks.device import device_string

    report = SoakReport(host=device_string(args.threads or 0) if args.threads else device_string(os.cpu_count()),
                        command=command, backend=run.pred.backend.name, model=str(run.pred.model_path),
                        source=run.source.spec, track=track)
    run.source = LoopedSource(run, opener, a.minutes * 60.0, a.minute_s, report)
    print(f"soak: {a.minutes:g} min of edge.run on {run.source.spec} (looped), {run.pred.backend.name} "
          f"{run.pred.meta.precision}, {report.host}{', --track' if track else ''}", file=sys.stderr, flush=True)
    try:
        run.loop()
    finally:
        run.finish()
    return report


def _main(a, command: str) -> int:
    report = soak(a, command)
    v = report.verdict()
    print(report.table())
    if "rss_mb_per_20k" in v:
        print(f"\nRSS after the warm-up minute: {v['rss_growth_mb']:+.2f} MB over {v['frames_after_warmup']} frames "
              f"= {_f(v['rss_mb_per_20k'])} MB per 20,000 frames (goal <= {GOAL_RSS_MB_PER_20K:g}: "
              f"{'met' if v['rss_ok'] else 'NOT met'}); last-minute p99 / first-minute p99 = {_f(v['p99_ratio'])} "
              f"(goal <= {GOAL_P99_RATIO:g}: {'met' if v['p99_ok'] else 'NOT met'}; loop cycle "
              f"{_f(v['cycle_p99_ratio'])})")
    else:
        print("\n(fewer than two minutes measured: no verdict; pass --minutes 2 or more)")
    print(f"host: {report.host}; {report.backend} {report.model}; {report.passes} passes over {report.source}")
    if a.json:
        from edge.io import atomic_write_json

        atomic_write_json(a.json, {**asdict(report), "verdict": v})
    return 0


def main(argv=None) -> int:
    command = "python -m benchmarks.soak " + " ".join(sys.argv[1:] if argv is None else argv)
    return run_cli(lambda a: _main(a, command), argv, build_parser())


if __name__ == "__main__":
    sys.exit(main())
