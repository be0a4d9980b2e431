"""`spire-edge COMMAND ...`: the one command installed with the package, dispatching to the modules.

Why: a user who pip-installed the package should not have to learn eight `python -m` module
paths. Each subcommand is a row of `COMMANDS` (data, not an if-chain): the module it runs, the
arguments it puts first, and a line of help. The module runs exactly as `python -m MODULE` would
(runpy, same argv), so both spellings behave the same and the modules stay the reference.
Commands needing torch (train, val, export, quantize) say so through their own one-line error.
"""
from __future__ import annotations

import sys
from typing import NamedTuple, Sequence


class Command(NamedTuple):
    module: str
    prefix: tuple
    help: str


COMMANDS: dict[str, Command] = {
    "predict": Command("edge.run", (), "run a model on frames, a video, a folder of videos or a camera"),
    "track": Command("edge.run", ("--track",), "predict + confirmed point tracks (ids, velocities)"),
    "val": Command("spire.evaluate", (), "score a checkpoint or an artifact on a labelled dataset [torch]"),
    "train": Command("spire.train", (), "train or fine-tune a model [torch]"),
    "export": Command("export", (), "export a checkpoint to ONNX / OpenVINO / TFLite / TensorRT [torch]"),
    "quantize": Command("quantize.ptq", (), "post-training INT8 quantisation with a fidelity report [torch]"),
    "benchmark": Command("benchmarks.run", (), "backend x precision speed and accuracy table"),
    "convert": Command("edge.datasets", ("convert",), "convert a dataset or labelling-tool export"),
    "datasets": Command("edge.datasets", (), "inspect (info) or convert a dataset"),
}


def usage() -> str:
    rows = "\n".join(f"  {name:<10} {c.help}  (python -m {c.module}{''.join(' ' + a for a in c.prefix)})"
                     for name, c in COMMANDS.items())
    return (f"usage: spire-edge COMMAND [options]   (spire-edge COMMAND --help for its options)\n\n"
            f"commands:\n{rows}\n")


def main(argv: Sequence[str] | None = None) -> int:
    import runpy

    from edge.cli import version_line

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] == "--version":
        print(version_line("spire-edge"))
        return 0
    cmd = COMMANDS.get(args[0])
    if cmd is None:
        print(f"error: unknown command {args[0]!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    saved = sys.argv
    sys.argv = [f"spire-edge {args[0]}", *cmd.prefix, *args[1:]]
    try:
        runpy.run_module(cmd.module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
