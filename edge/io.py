"""Atomic file writes: the one helper every writer of sidecars, summaries, logs, reports and checkpoints uses.

Why: a run killed at any moment (Ctrl-C, OOM, a lost session) must never leave half a JSON or
checkpoint behind, so each file is written to a temp name in its own folder and moved over the
target with `os.replace`. Written once here because the copies drifted: one left its temp file
behind on error, and all of them gave the file mkstemp's owner-only mode instead of what a plain
`open()` gives (0o666 minus the umask, `edge.fileperm`).

stdlib only (edge never imports torch; `torch.save(obj, f)` writes into `atomic_open(path, "wb")`).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from edge.fileperm import chmod_new_file

__all__ = ["atomic_open", "atomic_write", "atomic_write_json", "temp_prefix", "remove_stale_temps"]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8",
                newline: str | None = None) -> Iterator[IO]:
    """Yield a file open on a temp file beside `path`; it replaces `path` when the block ends cleanly.

    On any error (KeyboardInterrupt included) the temp file is removed and `path` is left as it was.
    The parent folder is created; the file gets the umask's mode, like `open()`.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if "b" in mode:
            f = os.fdopen(fd, mode)
        else:
            f = os.fdopen(fd, mode, encoding=encoding, newline=newline)
        with f:
            yield f
        chmod_new_file(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write(path: str | os.PathLike, data: str | bytes, newline: str | None = None) -> Path:
    """Write text or bytes to `path` atomically; returns the path."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w", newline=newline) as f:
        f.write(data)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any, default: Callable | None = None,
                      allow_nan: bool = True, indent: int | None = 2) -> Path:
    """`json.dump(obj)` + a final newline to `path` atomically; returns the path."""
    with atomic_open(path) as f:
        json.dump(obj, f, indent=indent, default=default, allow_nan=allow_nan)
        f.write("\n")
    return Path(path)


def temp_prefix(name: str) -> str:
    """The prefix of a hidden temp file or folder beside `name` that names its process: `.NAME.PID.`.

    Why the pid: a process killed while staging (SIGKILL, power loss) leaves its temp folder
    behind, and only a name that says whose it was lets the next run remove it safely
    (`remove_stale_temps`) without touching one that a live process is still writing.
    """
    return f".{name}.{os.getpid()}."


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove `.NAME.PID.*.tmp` files and folders in `folder` whose process is gone; returns what went."""
    import re
    import shutil

    gone = []
    folder = Path(folder)
    if not folder.is_dir():
        return gone
    for p in folder.iterdir():
        m = re.fullmatch(r"\..+\.(\d+)\.[^.]+\.tmp", p.name)
        if not m or _alive(int(m.group(1))):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        gone.append(p)
    return gone


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process (EPERM): alive
        return True
    return True
