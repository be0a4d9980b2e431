"""Output folders that never overwrite a finished run: `runs/x` is used once, then `runs/x2`, `runs/x3`, ...

Why: one forgotten flag must not cost hours of CPU or mix two runs in one folder. `spire.train
--out` and `edge.run --save` share one rule (Ultralytics' `runs/train`, `runs/train2`, ...):

- a folder that does not exist, or exists and is empty, is written directly (scripts and checks
  rely on `DIR/summary.json` appearing where they said);
- a folder that already holds something is never written into: the caller either refuses with
  one line (spire.train without --exist-ok) or takes the first free `DIR2`, `DIR3`, ... beside it
  (edge.run, spire.train --exist-ok) and says where it went;
- a path that is a file, or that cannot be created or written, is refused with one line.

numpy-free, stdlib only (edge never imports torch).
"""
from __future__ import annotations

import os
from pathlib import Path

from edge.errors import SpireEdgeError

__all__ = ["OutputFolderError", "is_used", "next_free", "writable_folder", "new_run_folder", "train_out_folder",
           "TRAIN_RUN_FILES"]

MAX_TRIES = 9999


class OutputFolderError(SpireEdgeError, ValueError):
    """An output path that is a file, cannot be created, or would overwrite an earlier run."""


def is_used(folder: str | os.PathLike, markers: tuple[str, ...] | None = None) -> bool:
    """True when `folder` exists and holds anything (or, with `markers`, any of those names)."""
    p = Path(folder)
    if not p.is_dir():
        return False
    if markers is None:
        return any(True for _ in p.iterdir())
    return any((p / m).exists() for m in markers)


def next_free(folder: str | os.PathLike, markers: tuple[str, ...] | None = None) -> Path:
    """`folder` itself when unused, else the first unused `folder2`, `folder3`, ... beside it.

    The number is appended to the name as given (Ultralytics' rule), so passing the same
    `--save out` again and again gives `out`, `out2`, `out3`, ...
    """
    p = Path(folder)
    if not is_used(p, markers) and not p.is_file():
        return p
    for k in range(2, 2 + MAX_TRIES):
        cand = p.with_name(f"{p.name}{k}")
        if not cand.exists() or (cand.is_dir() and not is_used(cand, markers)):
            return cand
    raise OutputFolderError(f"{p}: {MAX_TRIES} numbered folders beside it are taken; clean up or pass another path")


def writable_folder(folder: str | os.PathLike, flag: str = "--save") -> Path:
    """Create `folder` (parents too) and check it can be written; one-line error otherwise."""
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise OutputFolderError(f"{flag} {p}: is a file, not a folder; pass a folder path (it is created if missing)")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputFolderError(f"{flag} {p}: cannot create this folder ({e.strerror or type(e).__name__}); "
                                "pass a folder you can write to") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise OutputFolderError(f"{flag} {p}: this folder is not writable; pass a folder you can write to")
    return p


def new_run_folder(folder: str | os.PathLike, flag: str = "--save",
                   markers: tuple[str, ...] | None = None) -> tuple[Path, bool]:
    """The folder a new run writes to: `folder` when unused, else the next free numbered one.

    Returns (created writable folder, moved) where `moved` says it is not `folder` itself.
    """
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise OutputFolderError(f"{flag} {p}: is a file, not a folder; pass a folder path (it is created if missing)")
    target = next_free(p, markers)
    return writable_folder(target, flag), target != p


# what spire.train leaves in --out: a folder holding any of these holds a run
TRAIN_RUN_FILES = ("last.pt", "best.pt", "log.csv", "summary.json", "train_args.json", "metadata.json")


def train_out_folder(out: str | os.PathLike, exist_ok: bool = False) -> tuple[Path, str | None]:
    """Where a new (not resumed) `spire.train` run writes, and the note to print when it moved.

    OUT itself when it holds no run; with `exist_ok` the first OUTn that holds none (OUT2, OUT3,
    ...); otherwise a one-line refusal naming --resume and --exist-ok. A run is never overwritten.
    """
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise OutputFolderError(f"--out {p}: is a file, not a folder; pass a folder for the run")
    if not is_used(p, TRAIN_RUN_FILES):
        return p, None
    held = [m for m in TRAIN_RUN_FILES if (p / m).exists()]
    held = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
    new = next_free(p, TRAIN_RUN_FILES)
    if not exist_ok:
        raise OutputFolderError(f"--out {p} already holds a training run ({held}); continue it with --resume, "
                                f"or pass --exist-ok to start a new run in {new}")
    return new, f"note: {p} already holds a run; this one writes to {new} (--exist-ok)"
