"""Turn measured rows into what people read: a markdown table, CSV, results.json, a log line, a plot.

Writers use only the standard library (plus matplotlib, imported lazily, for the plot), and
every file is written to a temporary name then moved into place, so an interrupted run never
leaves a half-written results.json for a CI check or a board script to choke on.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Callable

from benchmarks.rows import Row
from edge import io as edge_io

# (header, formatter) per markdown column, in order
_NA = "n/a"


def _f(fmt: str, scale: float = 1.0) -> Callable[[object], str]:
    def fmt_value(v: object) -> str:
        return _NA if v is None else format(float(v) * scale, fmt)
    return fmt_value


COLUMNS: list[tuple[str, str, Callable[[object], str]]] = [
    ("row", "name", str),
    ("status", "status", str),
    ("frames", "bench", str),
    ("size MB", "size_mb", _f(".2f")),
    ("P %", "p", _f(".1f", 100)),
    ("R %", "r", _f(".1f", 100)),
    ("F1 %", "f1", _f(".1f", 100)),
    ("Fa 1e-8", "fa_per_pixel", _f(".1f", 1e8)),  # false targets per pixel, SPIRE's unit
    ("infer p50 ms", "infer_ms_p50", _f(".2f")),
    ("infer p90 ms", "infer_ms_p90", _f(".2f")),
    ("e2e p50 ms", "latency_ms_p50", _f(".2f")),
    ("e2e p90 ms", "latency_ms_p90", _f(".2f")),
    ("FPS", "fps", _f(".1f")),
    ("speed-up", "speedup", lambda v: _NA if v is None else f"{float(v):.1f}x"),
    ("W", "power_w", _f(".2f")),
    ("mJ/frame", "energy_mj_per_frame", _f(".1f")),
    ("device", "device", str),
]


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def markdown_table(rows: list[Row]) -> str:
    """GitHub markdown: a header, a separator and one line per row (status text kept to one line)."""
    head = "| " + " | ".join(h for h, _, _ in COLUMNS) + " |"
    sep = "|" + "|".join("---" if k in ("name", "status", "bench", "device") else "---:"
                         for _, k, _ in COLUMNS) + "|"
    lines = [head, sep]
    for row in rows:
        d = row.to_dict()
        lines.append("| " + " | ".join(_cell(fmt(d[k])) for _, k, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def _flat(row: Row) -> dict[str, object]:
    d = row.to_dict()
    stages = d.pop("stage_ms") or {}
    for k, v in stages.items():
        d[f"{k}_ms_p50"] = v
    return d


def atomic_write(path: Path, text: str) -> Path:
    """Write text to path atomically (edge.io), newlines as given."""
    return edge_io.atomic_write(path, text, newline="")


def csv_text(rows: list[Row]) -> str:
    flat = [_flat(r) for r in rows]
    keys: list[str] = []
    for d in flat:
        keys += [k for k in d if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(flat)
    return buf.getvalue()


def write_results(rows: list[Row], out: Path, meta: dict | None = None) -> dict[str, Path]:
    """results.json (a list of row dicts), results.csv, table.md and run.json (the run's settings)."""
    out = Path(out)
    paths = {
        "json": atomic_write(out / "results.json", json.dumps([r.to_dict() for r in rows], indent=2)),
        "csv": atomic_write(out / "results.csv", csv_text(rows)),
        "markdown": atomic_write(out / "table.md", markdown_table(rows) + "\n"),
    }
    if meta is not None:
        paths["meta"] = atomic_write(out / "run.json", json.dumps(meta, indent=2, default=str))
    return paths


def append_log(rows: list[Row], log: Path, command: str) -> Path:
    """Append a dated block (command + markdown table) to the device's results log."""
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %z")
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"\n## {stamp}\n$ {command}\n\n{markdown_table(rows)}\n")
    return log


def plot_f1_latency(rows: list[Row], path: Path) -> Path | None:
    """F1 against end-to-end p50 latency (log x), one labelled point per ok row; None without matplotlib."""
    pts = [r for r in rows if r.ok and r.f1 is not None and r.latency_ms_p50]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8.5, 4.5), dpi=110)
    for r in pts:  # one legend entry per row: labels beside clustered points would overlap
        marker = "s" if r.model == "official" else ("^" if r.precision == "int8" else "o")
        ax.scatter(r.latency_ms_p50, r.f1, marker=marker, s=45, label=r.name)
    if pts:
        ax.set_xscale("log")
        f1s = [r.f1 for r in pts]
        lo, hi = min(f1s), max(f1s)
        pad = max(0.02, (hi - lo) * 0.15)
        ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad) if hi + pad > lo else lo + pad)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_xlabel("end-to-end latency p50 (ms, log scale)")
    ax.set_ylabel("F1")
    dev = next((r.device for r in rows if r.device), "")
    ax.set_title(f"F1 vs latency{' - ' + dev if dev else ''}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path
