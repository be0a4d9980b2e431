"""Shared command-line plumbing for `spire.train` and `spire.evaluate`.

Why: both tools must resolve the shipped model the same way when no weights are given, and open
datasets from the same `--data/--format/--split` arguments. (Their errors go through
`edge.cli.run_cli`, as every command's do.)
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from edge.errors import DatasetError, SidecarError, SpireEdgeError
from edge.io import atomic_write_json

__all__ = ["UsageError", "add_data_options", "default_weights", "git_commit", "write_json", "carve_split", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[1]


class UsageError(SpireEdgeError, ValueError):
    """A command-line option that cannot work (unknown model, bad size); printed as one line."""


def default_weights() -> Path:
    """The shipped checkpoint: `edge.model.zoo.default_checkpoint()`, else weights/shipped/best.pt."""
    try:
        from edge.model.zoo import default_checkpoint
    except ImportError:
        p = REPO_ROOT / "weights" / "shipped" / "best.pt"
        if not p.is_file():
            raise SidecarError(f"{p}: no shipped checkpoint; pass --weights PATH (train one with "
                               "`python -m spire.train`)") from None
        return p
    return default_checkpoint()


def git_commit() -> str | None:
    """The repository's HEAD commit (+'-dirty' with local changes), or None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=10)
        if head.returncode:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write JSON atomically (edge.io), so a killed run never leaves half a file."""
    return atomic_write_json(path, obj, default=_jsonable)


def _jsonable(o):
    import numpy as np

    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def carve_split(names: list[str], fraction: float, seed: int) -> set[str]:
    """A fixed-seed validation subset (`fraction` of the unique names, at least 1 when possible).

    Depends only on the set of names and the seed (not on list order), so the split is the
    same on every machine and every rank.
    """
    if not 0 < fraction < 1:
        raise DatasetError(f"--val-fraction must be in (0, 1), got {fraction}")
    uniq = sorted(set(names))
    if len(uniq) < 2:
        raise DatasetError(f"only {len(uniq)} training frame(s): too few to carve a validation split; "
                           "add frames or pass --val-data ROOT")
    import numpy as np

    k = min(len(uniq) - 1, max(1, int(round(len(uniq) * fraction))))
    order = np.random.default_rng([int(seed), 20]).permutation(len(uniq))
    return {uniq[i] for i in order[:k]}


def add_data_options(p, *, data_help: str, split: str, split_help: str, stride: int, stride_help: str) -> None:
    """--data / --format / --split / --frame-stride: the dataset options of the commands that score
    frames (evaluate, mine, thresholds), with the layout names from `edge.datasets.FORMATS`."""
    from edge.datasets import FORMATS

    p.add_argument("--data", nargs="+", required=True, help=data_help)
    p.add_argument("--format", default="auto", choices=("auto", *FORMATS))
    p.add_argument("--split", default=split, help=split_help)
    p.add_argument("--frame-stride", type=int, default=stride, help=stride_help)


def open_roots(roots, fmt: str, split: str, exclude=None, reporter=None, stride: int = 1):
    """`edge.datasets.open_dataset` for each root (one-line DatasetError on a bad root).

    The layout's data problems (listed frames without image or mask) go to `reporter.once`
    (each printed once per run) or straight to stderr.
    """
    import warnings

    from edge.datasets import DatasetWarning, open_dataset

    out = []
    for r in roots:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DatasetWarning)
            ds = open_dataset(r, fmt, split, exclude=exclude, stride=stride)
        for p in ds.problems:
            if reporter is not None:
                reporter.once(p, p)
            else:
                print(f"warning: {p}", file=sys.stderr)
        if len(ds) == 0:
            raise DatasetError(f"{r}: split {split!r} has no usable frames; check --format/--split")
        out.append(ds)
    return out
