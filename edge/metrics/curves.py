"""Threshold-sweep curves: precision-recall and Pd-FPPI, as numbers and as PNGs.

A single operating point hides the trade-off a deployment has to pick (how many false alarms per
frame buys how much Pd), so evaluation saves both curves from one `PointMetrics.sweep`.
matplotlib is imported inside the plotting function only (Agg canvas, no pyplot state), so the
device runtime never needs it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["pr_points", "average_precision", "pd_fppi_points", "save_curves"]


def pr_points(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(recall, precision, threshold) of the sweep rows that made at least one prediction,
    ordered by increasing recall."""
    keep = [r for r in rows if r["tp"] + r["fp"] > 0]
    rec = np.array([r["recall"] for r in keep], dtype=np.float64)
    prec = np.array([r["precision"] for r in keep], dtype=np.float64)
    thr = np.array([np.nan if r["score_thr"] is None else r["score_thr"] for r in keep], dtype=np.float64)
    order = np.lexsort((-prec, rec))
    return rec[order], prec[order], thr[order]


def average_precision(rows: list[dict]) -> float:
    """Area under the PR curve (all-point interpolation: precision made monotone, then summed
    over recall steps starting at recall 0)."""
    rec, prec, _ = pr_points(rows)
    if rec.size == 0:
        return 0.0
    r = np.concatenate([[0.0], rec])
    p = np.concatenate([[prec[0]], prec])
    p = np.maximum.accumulate(p[::-1])[::-1]
    return float(np.sum((r[1:] - r[:-1]) * p[1:]))


def pd_fppi_points(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(fppi, pd) of the sweep rows, ordered by increasing false points per frame."""
    f = np.array([r["fppi"] for r in rows], dtype=np.float64)
    pd = np.array([r["pd"] for r in rows], dtype=np.float64)
    order = np.lexsort((pd, f))
    return f[order], pd[order]


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.5, 4.0), dpi=120)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def save_curves(rows: list[dict], out_dir, title: str = "") -> dict:
    """Write `pr_curve.png` (precision vs recall, AP in the legend) and `pd_fppi.png`
    (Pd vs false points per frame, log x) under `out_dir`; returns {'pr': Path, 'pd_fppi': Path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"pr": out / "pr_curve.png", "pd_fppi": out / "pd_fppi.png"}
    tag = f" ({rows[0]['method']}, <= {rows[0]['max_dist']:g} px)" if rows else ""

    fig, ax = _figure()
    rec, prec, _ = pr_points(rows)
    ax.plot(rec, prec, "o-", ms=3, label=f"AP {average_precision(rows):.4f}")
    ax.set_xlabel("recall = Pd (fraction of targets)")
    ax.set_ylabel("precision (fraction)")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title((title + " PR" + tag).strip(), fontsize=9)
    fig.tight_layout()
    fig.savefig(paths["pr"])

    fig, ax = _figure()
    f, pd = pd_fppi_points(rows)
    pos = f > 0
    ax.plot(f[pos], pd[pos], "o-", ms=3)
    if pos.any():
        ax.set_xscale("log")
    ax.set_xlabel("false points per frame (FPPI)")
    ax.set_ylabel("Pd (fraction of targets)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3, which="both")
    ax.set_title((title + " Pd-FPPI" + tag).strip(), fontsize=9)
    fig.tight_layout()
    fig.savefig(paths["pd_fppi"])
    return paths
