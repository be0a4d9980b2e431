"""`edge.run --source DIR` where DIR holds video files: each video is a run, plus one summary of all.

Why: a recorded archive (a folder of flights) used to fail with "no images ... found", and a long
archive could only be processed one file at a time by hand. Each video now gets the run a single
video gets (its own folder under --save with frames.csv, summary.json, annotated.mp4; scored when
a NAME.csv of labels sits beside it), and `summary.json` at the top merges them: per-file rows,
totals, and detection metrics summed over the labelled files. `--workers N` runs N files at a
time in separate processes (each loads its own Predictor; CPU threads are split between them
unless --threads is given). A file that fails is reported in its row; the others go on.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from edge.errors import SpireEdgeError

__all__ = ["add_archive_options", "archive_videos", "check_workers", "run_archive", "merge_summaries"]


def add_archive_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=1, help="--source DIR of video files: process N files at a time, "
                   "in separate processes (default 1)")


def archive_videos(source: str | None) -> list[Path]:
    """The video files directly in `source` (sorted) when it is a folder of videos and not a dataset
    or a folder of frames; [] otherwise."""
    from edge.frames import IMAGE_SUFFIXES
    from edge.sources import VIDEO_SUFFIXES

    if not source or not Path(source).is_dir():
        return []
    root = Path(source)
    files = [p for p in root.iterdir() if p.is_file()]
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in files) or (root / "images").is_dir():
        return []
    from edge.datasets import detect_format

    try:
        detect_format(root)
        return []  # a labelled dataset layout (the ir-drone videos/ + labels/ one included)
    except SpireEdgeError:
        pass
    return sorted(p for p in files if p.suffix.lower() in VIDEO_SUFFIXES)


def check_workers(args, videos: list[Path]) -> None:
    """--workers: a whole number >= 1, and more than 1 only for a folder of video files."""
    from edge.argcheck import ArgumentError, check_count

    check_count(args.workers, "--workers", 1)
    if args.workers > 1 and not videos:
        raise ArgumentError(f"--workers {args.workers}: parallel files need --source DIR holding video files "
                            f"(got {args.source or 'the built-in clip'}); leave --workers out")
    if videos and (args.show or args.realtime):
        raise ArgumentError(f"{args.source}: --show and --realtime take one video, not a folder of them")


def _run_one(job: dict) -> dict:
    """One video through edge.run's Run (in this process or a worker); a row for the merged summary."""
    from edge.run import Run

    args = argparse.Namespace(**job)
    row = {"file": Path(args.source).name, "folder": args.save}
    t0 = time.perf_counter()
    try:
        run = Run(args)
        try:
            run.loop()
        finally:
            s = run.finish()
    except SpireEdgeError as e:
        return {**row, "error": str(e), "wall_s": round(time.perf_counter() - t0, 3)}
    row.update({k: s.get(k) for k in ("frames", "skipped", "points", "fps", "wall_s", "stop_reason", "backend",
                                      "precision", "model")})
    if s.get("metrics"):
        row["metrics"] = {k: s["metrics"][k] for k in ("tp", "fp", "fn", "precision", "recall", "f1", "images",
                                                        "targets")}
    return row


def merge_summaries(rows: list[dict], wall_s: float, source: str, workers: int) -> dict:
    """The archive's summary.json: per-file rows, totals, and P/R/F1 (fractions) over labelled files."""
    ok = [r for r in rows if "error" not in r]
    out = {"source": source, "source_kind": "video archive", "files": len(rows), "failed": len(rows) - len(ok),
           "workers": workers, "frames": sum(r.get("frames") or 0 for r in ok),
           "skipped": sum(r.get("skipped") or 0 for r in ok), "points": sum(r.get("points") or 0 for r in ok),
           "wall_s": round(wall_s, 3)}
    out["fps"] = round(out["frames"] / wall_s, 3) if wall_s > 0 else 0.0
    scored = [r["metrics"] for r in ok if r.get("metrics")]
    if scored:
        tp, fp, fn = (sum(m[k] for m in scored) for k in ("tp", "fp", "fn"))
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        out["metrics"] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
                          "tp": tp, "fp": fp, "fn": fn, "labelled_files": len(scored)}
    out["per_file"] = rows
    return out


def _jobs(args, videos: list[Path]) -> list[dict]:
    base = {k: v for k, v in vars(args).items() if k != "workers"}
    workers = max(1, int(args.workers or 1))
    threads = args.threads or (max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None)
    jobs, stems = [], set()
    for v in videos:
        stem = v.stem if v.stem not in stems else f"{v.stem}{v.suffix.replace('.', '_')}"
        stems.add(stem)
        save = str(Path(args.save) / stem) if args.save else None
        jobs.append({**base, "source": str(v), "save": save, "threads": threads, "quiet": True, "show": False})
    return jobs


def run_archive(args, videos: list[Path]) -> int:
    """Every video of the folder (workers in parallel), then the merged summary; the exit code."""
    from edge.outputs import write_json_atomic

    workers = max(1, int(args.workers or 1))
    jobs, t0 = _jobs(args, videos), time.perf_counter()
    print(f"{args.source}: {len(videos)} video files, {workers} worker(s)", file=sys.stderr)
    if workers == 1:
        rows = [_report(_run_one(j)) for j in jobs]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            rows = [_report(r) for r in pool.map(_run_one, jobs)]
    summary = merge_summaries(rows, time.perf_counter() - t0, str(args.source), workers)
    line = (f"archive: {summary['files']} files ({summary['failed']} failed), {summary['frames']} frames, "
            f"{summary['points']} points, {summary['fps']:.1f} FPS overall")
    if "metrics" in summary:
        m = summary["metrics"]
        line += f"; P {m['precision']:.4f} R {m['recall']:.4f} F1 {m['f1']:.4f} over {m['labelled_files']} labelled"
    print(line)
    if args.save:
        write_json_atomic(Path(args.save) / "summary.json", summary)
        print(f"saved: {args.save}/summary.json and one folder per file")
    return 0 if not summary["failed"] else 1


def _report(row: dict) -> dict:
    what = f"error: {row['error']}" if "error" in row else (f"{row['frames']} frames, {row['points']} points"
                                                            + (f", F1 {row['metrics']['f1']:.4f}" if row.get("metrics") else ""))
    print(f"  {row['file']}: {what}", file=sys.stderr)
    return row
