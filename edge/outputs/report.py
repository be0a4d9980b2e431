"""What a run prints: its progress bar (tqdm when installed) and the report lines at its end.

Why its own module: `edge.run` and the archive runner print the same report, and the run loop
should not hold formatting.
"""
from __future__ import annotations

import sys

from edge.inference.predictor import STAGES

__all__ = ["progress_bar", "say", "format_report"]


def progress_bar(total: int, quiet: bool):
    """tqdm when installed (not an edge dependency), else a no-op with the same calls."""
    if not quiet:
        try:
            from tqdm import tqdm

            return tqdm(total=total or None, unit="frame", desc="edge.run", leave=False, file=sys.stderr)
        except ImportError:
            pass

    class _Plain:
        def update(self, n=1):
            pass

        def set_postfix_str(self, s):
            pass

        def write(self, s):
            print(s, file=sys.stderr)

        def close(self):
            pass

    return _Plain()


def say(bar, msg: str) -> None:
    write = getattr(bar, "write", None)
    if write is not None and type(bar).__name__ == "tqdm":
        bar.write(msg, file=sys.stderr)
    else:
        print(msg, file=sys.stderr)


def format_report(summary: dict) -> list[str]:
    """The lines printed at the end of a run."""
    lat = summary["latency_ms"]
    stages = "  ".join(f"{s} {_f(lat[s]['p50'])}/{_f(lat[s]['p90'])}/{_f(lat[s]['p99'])}" for s in (*STAGES, "total"))
    lines = [f"frames {summary['frames']}, skipped {summary['skipped']}, FPS {summary['fps']:.1f} end-to-end "
             f"({summary['fps_from_latency']:.1f} from latency) [{summary.get('backend')}, {summary.get('precision')}, "
             f"{summary.get('mode')}]",
             f"latency ms p50/p90/p99: {stages}"]
    if summary.get("power_w") is None:
        lines.append(f"power: n/a ({summary.get('power_note') or 'no sensor'})")
    else:
        lines.append(f"power: {summary['power_w']:.2f} W mean, {summary['energy_mj_per_frame']:.1f} mJ/frame "
                     f"({summary['power_source']})")
    if summary.get("tracker", {}).get("settings"):
        lines.append(f"tracking: {summary['tracker']['settings']}")
    if summary.get("metrics_line"):
        lines.append(f"metrics: {summary['metrics_line']}")
    if summary.get("stop_reason") not in (None, "end of source"):  # a truncated video, a stalled camera, Ctrl-C
        lines.append(f"stopped: {summary['stop_reason']}")
    return lines


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"
