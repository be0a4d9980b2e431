"""File modes that honour the umask, for files and folders written through temp names.

Why: atomic writes go through `tempfile.mkstemp` (mode 0600) and artifact folders through
`tempfile.mkdtemp` (0700), then `os.replace` them into place, so every sidecar, checkpoint,
summary and model folder ended up readable by its owner only: a model folder copied to a board
by another user could not be read. After creating a temp file or folder, the writers here give
it the mode a plain `open()` / `mkdir()` would have given: 0o666 / 0o777 minus the umask.

stdlib only (edge never imports torch).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["current_umask", "chmod_new_file", "chmod_new_dir", "chmod_tree"]


def current_umask() -> int:
    """The process umask, read from /proc where it can be (no change, thread-safe), else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def chmod_new_file(path: str | os.PathLike) -> None:
    """Give a file made by mkstemp the mode open() would have given it (0o666 & ~umask)."""
    os.chmod(path, 0o666 & ~current_umask())


def chmod_new_dir(path: str | os.PathLike) -> None:
    """Give a folder made by mkdtemp the mode mkdir() would have given it (0o777 & ~umask)."""
    os.chmod(path, 0o777 & ~current_umask())


def chmod_tree(folder: str | os.PathLike) -> None:
    """chmod_new_dir on `folder` and its sub-folders; files keep their mode unless it is 0600 from mkstemp.

    Used on a staged artifact folder before it replaces the old one: toolchains write their
    files with open() (already umask-honouring); only the temp folder itself and files written
    through mkstemp carry the owner-only mode. Executable bits (build_engine.sh) are kept.
    """
    root = Path(folder)
    chmod_new_dir(root)
    mask = current_umask()
    for p in root.rglob("*"):
        if p.is_symlink():
            continue
        if p.is_dir():
            chmod_new_dir(p)
        elif p.is_file() and (p.stat().st_mode & 0o777) == 0o600:
            os.chmod(p, 0o666 & ~mask)
