"""The types of the fault catalogue: a `Case` (what to run, what must hold) and its `Obs` (what happened).

Why a module of their own: `benchmarks.fault_cases` (the catalogue, as data) and `benchmarks.faults`
(the runner) both need them; here neither imports the other's module to get them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

VERDICTS = ("good", "bad", "deliberate")


@dataclass(frozen=True)
class Case:
    """One fault: the command(s) to run and what must hold afterwards.

    argv: `python -m` arguments; "{w}" is the case's own scratch folder, "{fx:NAME}" a fixture
    (benchmarks.fault_fixtures). `pre`: commands run first, unchecked (a first run into a folder).
    mode: 'run' | 'race' (`copies` at the same moment) | 'kill' (SIGKILL) | 'term' (SIGTERM), the
    signal sent `after` seconds after start, or as soon as `wait_for` (a path template) exists.
    check(obs) -> (holds, observed text). `deliberate`: the documented reason when not holding is
    a choice (verdict 'deliberate' instead of 'bad').
    """

    name: str
    item: str
    expected: str
    argv: tuple
    check: Callable
    mode: str = "run"
    pre: tuple = ()
    copies: int = 1
    after: float = 0.0
    wait_for: str = ""
    quick: bool = False
    timeout: float = 120.0
    umask: int | None = None
    deliberate: str = ""


@dataclass
class Obs:
    """What running a case produced: one entry per process (a race has several)."""

    w: Path
    rcs: list = field(default_factory=list)
    outs: list = field(default_factory=list)
    errs: list = field(default_factory=list)
    seconds: float = 0.0
    timed_out: bool = False

    @property
    def rc(self):
        return self.rcs[0] if self.rcs else None

    @property
    def err(self) -> str:
        return self.errs[0] if self.errs else ""

    @property
    def out(self) -> str:
        return self.outs[0] if self.outs else ""
