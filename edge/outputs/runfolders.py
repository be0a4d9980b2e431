"""Output folders that never overwrite a finished run: `runs/x` is used once, then `runs/x2`, `runs/x3`, ...

Why: one forgotten flag must not cost hours of CPU or mix two runs in one folder. `spire.train
--out` and `edge.run --save` share one rule (Ultralytics' `runs/train`, `runs/train2`, ...):

- a folder that does not exist, or exists and is empty, is written directly (scripts and checks
  rely on `DIR/summary.json` appearing where they said);
- a folder that already holds something is never written into: the caller either refuses with
  one line (spire.train without --exist-ok) or takes the first free `DIR2`, `DIR3`, ... beside it
  (edge.run, spire.train --exist-ok) and says where it went;
- a path that is a file, or that cannot be created or written, is refused with one line.

The folder is *claimed*, not just checked: "is it free?" then "create it" let two runs started at
the same moment both pass the check and write into one folder (frames.jsonl with interleaved
lines, train_args.json of one run beside log.csv of the other). A claim is the create-exclusive
(O_EXCL) of a hidden `.spire-run` file in the folder: exactly one process wins it, the others
take the next free folder or are refused. The claim counts as "holds a run" while the run goes
(and after a kill, which leaves a folder that must not be reused); `release_claim` removes it at
the end, and removes the folder too when the run failed before writing anything into a folder it
created (a failed run leaves no empty folder behind).

numpy-free, stdlib only (edge never imports torch).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from edge.errors import SpireEdgeError

__all__ = ["OutputFolderError", "is_used", "next_free", "check_out_path", "writable_folder", "new_run_folder", "train_out_folder",
           "claim_run_folder", "release_claim", "save_report", "TRAIN_RUN_FILES", "CLAIM"]

MAX_TRIES = 9999
CLAIM = ".spire-run"  # created O_EXCL by the one run that owns the folder
_CREATED: set[str] = set()  # folders this process created by claiming them (removed again when left empty)


class OutputFolderError(SpireEdgeError, ValueError):
    """An output path that is a file, cannot be created, or would overwrite an earlier run."""


def is_used(folder: str | os.PathLike, markers: tuple[str, ...] | None = None) -> bool:
    """True when `folder` exists and holds anything (or, with `markers`, any of those names)."""
    p = Path(folder)
    if not p.is_dir():
        return False
    if markers is None:
        return any(True for _ in p.iterdir())
    return any((p / m).exists() for m in (*markers, CLAIM))


def _holds_a_run(p: Path, markers: tuple[str, ...] | None) -> bool:
    """`is_used` without counting a claim: the run's own files (checked again once the claim is ours)."""
    if markers is None:
        return any(e.name != CLAIM for e in p.iterdir())
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


def check_out_path(folder: str | os.PathLike | None, flag: str = "--out", file: bool = False) -> Path | None:
    """Refuse, before any work and without creating anything, an output folder (or, with `file`, an
    output file) that cannot be made; None passes.

    Why: `benchmarks.run --out afile/b` measured for 77 s and `quantize.ptq --out afile/q`
    calibrated for 20 s before failing on the path. Every command checks its output paths first,
    here: one line naming the path, what is wrong and the fix.
    """
    if folder is None:
        return None
    if file:
        if Path(folder).is_dir():
            raise OutputFolderError(f"{flag} {folder}: is a folder; pass a file path")
        check_out_path(Path(folder).parent, flag)
        return Path(folder)
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise OutputFolderError(f"{flag} {p}: is a file, not a folder; pass a folder path (it is created if missing)")
    up = p
    while not up.exists() and up != up.parent:
        up = up.parent
    if up.exists() and not up.is_dir():
        raise OutputFolderError(f"{flag} {p}: {up} is a file, not a folder, so it cannot be created; "
                                "pass a path under a folder")
    if up.is_dir() and not os.access(up, os.W_OK | os.X_OK):
        raise OutputFolderError(f"{flag} {p}: {up} is not writable; pass a folder you can write to")
    return p


def writable_folder(folder: str | os.PathLike, flag: str = "--save") -> Path:
    """Create `folder` (parents too) and check it can be written; one-line error otherwise."""
    p = check_out_path(folder, flag)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputFolderError(f"{flag} {p}: cannot create this folder ({e.strerror or type(e).__name__}); "
                                "pass a folder you can write to") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise OutputFolderError(f"{flag} {p}: this folder is not writable; pass a folder you can write to")
    return p


def _try_claim(p: Path, markers: tuple[str, ...] | None, flag: str) -> bool:
    """Create `p` if needed and its claim file exclusively; False when another run got there first."""
    existed = p.is_dir()
    writable_folder(p, flag)
    try:
        fd = os.open(p / CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(f"pid {os.getpid()} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
    if _holds_a_run(p, markers):  # a run finished here between our check and our claim: not ours
        os.unlink(p / CLAIM)
        return False
    if not existed:
        _CREATED.add(str(p.resolve()))
    return True


def claim_run_folder(folder: str | os.PathLike, flag: str = "--save", markers: tuple[str, ...] | None = None,
                     move: bool = True) -> tuple[Path, bool]:
    """Claim `folder` (or, with `move`, the first free `folder2`, `folder3`, ...) for one new run.

    Returns (claimed folder, moved). Without `move`, a folder someone else claimed at the same
    moment is refused with one line. Call `release_claim(folder)` when the run ends.
    """
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise OutputFolderError(f"{flag} {p}: is a file, not a folder; pass a folder path (it is created if missing)")
    for k in range(1, 2 + MAX_TRIES):
        cand = p if k == 1 else p.with_name(f"{p.name}{k}")
        if cand.exists() and (not cand.is_dir() or is_used(cand, markers)):
            if not move:
                break
            continue
        if _try_claim(cand, markers, flag):
            return cand, cand != p
        if not move:
            break
    else:
        raise OutputFolderError(f"{p}: {MAX_TRIES} numbered folders beside it are taken; clean up or pass another path")
    raise OutputFolderError(f"{flag} {p}: another run took this folder at the same moment; pass --exist-ok to "
                            "write to the next free folder beside it, or another path")


def release_claim(folder: str | os.PathLike | None) -> None:
    """End this process's claim on `folder`; a folder it created and left empty (a failed run) is removed."""
    if not folder:
        return
    p = Path(folder)
    try:
        if (p / CLAIM).read_text().split()[1] != str(os.getpid()):
            return  # not ours (a run that lost the claim never writes here)
        os.unlink(p / CLAIM)
    except (OSError, IndexError):
        return
    if str(p.resolve()) in _CREATED:
        _CREATED.discard(str(p.resolve()))
        try:
            p.rmdir()  # only when empty: the run wrote nothing
        except OSError:
            pass


def new_run_folder(folder: str | os.PathLike, flag: str = "--save",
                   markers: tuple[str, ...] | None = None) -> tuple[Path, bool]:
    """The folder a new run writes to, claimed: `folder` when unused, else the next free numbered one.

    Returns (created writable folder, moved) where `moved` says it is not `folder` itself.
    """
    return claim_run_folder(folder, flag, markers, move=True)


def save_report(folder: str | os.PathLike, stem: str, payload: dict, markdown: str) -> Path:
    """A measuring command's result, `stem.json` + `stem.md`, in a new run folder (never over an earlier
    one); returns the folder. The benchmarks write their tables this way, so a rerun keeps the last."""
    from edge.io import atomic_write, atomic_write_json

    out, _ = new_run_folder(folder, "--out")
    try:
        atomic_write_json(out / f"{stem}.json", payload)
        atomic_write(out / f"{stem}.md", markdown)
    finally:
        release_claim(out)
    return out


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
    if is_used(p, TRAIN_RUN_FILES) and not exist_ok:
        held = [m for m in (*TRAIN_RUN_FILES, CLAIM) if (p / m).exists()]
        held = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
        raise OutputFolderError(f"--out {p} already holds a training run ({held}); continue it with --resume, "
                                f"or pass --exist-ok to start a new run in {next_free(p, TRAIN_RUN_FILES)}")
    new, moved = claim_run_folder(p, "--out", TRAIN_RUN_FILES, move=exist_ok)
    return new, f"note: {p} already holds a run; this one writes to {new} (--exist-ok)" if moved else None
