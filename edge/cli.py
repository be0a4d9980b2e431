"""The one way every command-line tool of the package fails on a user error: one line, exit code 2.

Why: docs/ARCHITECTURE.md promises that a user error (a missing file, a bad option, a runtime
that is not installed) is `error: <message>` on stderr and exit code 2, never a traceback. Each
tool used to carry its own copy of that try/except; they all call `run_cli` now.
SPIRE_EDGE_DEBUG=1 lets the exception through, traceback and all.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Sequence

from edge.errors import SpireEdgeError

__all__ = ["run_cli", "DEBUG_ENV"]

DEBUG_ENV = "SPIRE_EDGE_DEBUG"


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """`main(argv)`'s exit code; a `SpireEdgeError` becomes `error: <message>` on stderr and exit code 2."""
    try:
        return int(main(argv) or 0)
    except SpireEdgeError as e:
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
