"""The export targets, read from the one target table (`edge.model.targets`): the CLI, naming and dispatch.

Why: Ultralytics-style — one frozen row per target instead of flags and magic indices. The rows
live in `edge.model.targets.TARGETS` (the runtime, the benchmarks and quantize read the same rows);
here each exportable row gets its exporter function, and a typo on the command line gets a
`difflib` suggestion instead of a stack trace.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Callable

from edge.errors import SpireEdgeError
from edge.model.targets import PRECISIONS, TARGETS, Target

__all__ = ["Format", "FORMATS", "PRECISIONS", "get_format", "check_precision"]


@dataclass(frozen=True)
class Format:
    """An exportable row of `edge.model.targets.TARGETS`; every field of the row reads through (`fmt.folder(...)`)."""

    target: Target

    def __getattr__(self, key: str):
        if key == "target" or key.startswith("__"):  # not set yet (copy / unpickling)
            raise AttributeError(key)
        return getattr(self.target, key)

    @property
    def name(self) -> str:
        """`--target` value and the sidecar `format`."""
        return self.target.format

    def exporter_fn(self) -> Callable:
        """The exporter function (its module imported only now)."""
        mod, fn = self.target.exporter.split(":")
        return getattr(importlib.import_module(mod), fn)


FORMATS: dict[str, Format] = {t.format: Format(t) for t in TARGETS.values() if t.exportable}


def _choice(kind: str, value: str, options) -> str:
    close = difflib.get_close_matches(value, list(options), n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {kind} {value!r}{hint}; choose one of {', '.join(options)}"


def get_format(name: str) -> Format:
    """The table row for a target name; one-line error with a suggestion for typos."""
    key = name.strip().lower()
    if key not in FORMATS:
        raise SpireEdgeError(_choice("--target", name, FORMATS))
    return FORMATS[key]


def check_precision(fmt: Format, precision: str) -> str:
    """Validate a precision for a target (one-line error with a suggestion)."""
    p = precision.strip().lower()
    if p not in fmt.precisions:
        raise SpireEdgeError(_choice(f"--precision for {fmt.name}", precision, fmt.precisions))
    return p
