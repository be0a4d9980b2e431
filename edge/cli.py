"""The one way every command-line tool of the package fails on a user error: one line, exit code 2.

Why: docs/ARCHITECTURE.md promises that a user error (a missing file, a bad option, a runtime
that is not installed) is `error: <message>` on stderr and exit code 2, never a traceback. Each
tool used to carry its own copy of that try/except (and spire and quantize their own wrappers);
they all call `run_cli` now, with their parser when they have one.
SPIRE_EDGE_DEBUG=1 lets the exception through, traceback and all.
`--version` is answered here too, so every command (`python -m edge.run`, spire.train, export,
quantize.*, benchmarks.*, edge.datasets, `spire-edge ...`) prints the same version line without
each parser declaring it.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from edge.errors import SpireEdgeError

__all__ = ["run_cli", "DEBUG_ENV", "version_line"]

DEBUG_ENV = "SPIRE_EDGE_DEBUG"


def version_line(command: str) -> str:
    """'<command> (spire-edge X.Y.Z, Python A.B)': what `--version` prints."""
    from edge import __version__

    return f"{command} (spire-edge {__version__}, Python {sys.version.split()[0]})"


def _command(main) -> str:
    """The command as typed: `python -m <module>` (the __main__ module when run with -m)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    module = spec.name if spec is not None else (getattr(main, "__module__", "") or os.path.basename(sys.argv[0]))
    return f"python -m {module.removesuffix('.__main__')}"


def run_cli(main: Callable, argv: Sequence[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    """`main`'s exit code; a `SpireEdgeError` becomes `error: <message>` on stderr and exit code 2,
    Ctrl-C `error: interrupted` and exit code 130; `--version` anywhere in argv prints `version_line`
    and exits 0. With `parser`, `main` gets the parsed namespace, else the argv."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--version" in args[: args.index("--") if "--" in args else len(args)]:
        print(version_line(_command(main)))
        return 0
    try:
        return int(main(argv if parser is None else parser.parse_args(argv)) or 0)
    except SpireEdgeError as e:
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
