"""Board profiles: `--board NAME` reads boards/NAME/profile.json so one flag sets a device's known-good defaults.

A profile records what works on that board (backend, precision, input size, threads, power
sensor); explicit command-line flags still win. `SPIRE_EDGE_BOARDS` points at another boards
folder, and a path to a profile.json works in place of a name.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import SpireEdgeError

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_BOARDS = "_boards"  # an installed wheel's copy of boards/*/profile.json (setup.py)
KNOWN_KEYS = ("backend", "precision", "imgsz", "threads", "power")


def boards_dir() -> Path:
    """$SPIRE_EDGE_BOARDS, else the checkout's boards/, else the installed package's profiles."""
    env = os.environ.get("SPIRE_EDGE_BOARDS")
    if env:
        return Path(env).expanduser()
    repo = REPO_ROOT / "boards"
    if repo.is_dir():
        return repo
    from importlib.resources import files

    return Path(str(files("edge") / PACKAGE_BOARDS))


def list_boards(root: str | Path | None = None) -> list[str]:
    """Names of the boards that have a profile.json."""
    root = Path(root) if root else boards_dir()
    return sorted(p.parent.name for p in root.glob("*/profile.json"))


@dataclass(frozen=True)
class BoardProfile:
    """Defaults for one board; None leaves the runtime's own default."""

    name: str
    backend: str | None = None
    precision: str | None = None
    imgsz: int | None = None
    threads: int | None = None
    power: str | None = None
    extra: dict = field(default_factory=dict)

    def as_defaults(self) -> dict:
        """{flag: value} for the keys the profile sets."""
        return {k: getattr(self, k) for k in KNOWN_KEYS if getattr(self, k) is not None}


def _check_choices(path: Path, d: dict) -> None:
    """A profile's backend and precision must be ones the runtime knows (they were a KeyError traceback)."""
    from edge.backends import BACKENDS
    from edge.model.sidecar import PRECISIONS

    for key, known, allowed in (("backend", BACKENDS, sorted(BACKENDS)), ("precision", PRECISIONS, PRECISIONS)):
        if d.get(key) is not None and (not isinstance(d[key], str) or d[key] not in known):
            raise SpireEdgeError(f"{path}: '{key}' is {d[key]!r}; choose one of {', '.join(allowed)}; fix the file")


def load_board(name: str, root: str | Path | None = None) -> BoardProfile:
    """Read boards/<name>/profile.json (or a profile.json path); one-line error when absent or bad."""
    p = Path(name)
    path = p if p.suffix == ".json" and p.is_file() else (Path(root) if root else boards_dir()) / name / "profile.json"
    if not path.is_file():
        known = ", ".join(list_boards(root)) or "none"
        raise SpireEdgeError(f"{path}: no such board profile; choose one of: {known} (or pass a profile.json path)")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SpireEdgeError(f"{path}: not valid JSON ({e}); fix the file or restore it from git") from None
    if not isinstance(d, dict):
        raise SpireEdgeError(f"{path}: expected a JSON object with {', '.join(KNOWN_KEYS)}; fix the file")
    try:
        imgsz = int(d["imgsz"]) if d.get("imgsz") is not None else None
        threads = int(d["threads"]) if d.get("threads") is not None else None
    except (TypeError, ValueError):
        raise SpireEdgeError(f"{path}: imgsz and threads must be integers; fix the file") from None
    _check_choices(path, d)
    power = d.get("power")
    if isinstance(power, dict):  # {"sensor": "ina3221", ...} style
        power = power.get("sensor") or power.get("source")
    return BoardProfile(name=d.get("name", path.parent.name), backend=d.get("backend"),
                        precision=d.get("precision"), imgsz=imgsz, threads=threads,
                        power=str(power) if power is not None else None,
                        extra={k: v for k, v in d.items() if k not in KNOWN_KEYS})
