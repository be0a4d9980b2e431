"""`python -m benchmarks.faults`: run the fault-injection catalogue against the installed package.

Why: "nothing lost, nothing silently wrong" is a property of the commands a user types, so it is
measured the way a user meets it: every case of issues 16 and 26 (`benchmarks.fault_cases.CASES`)
runs black-box, as `python -m ...` subprocesses in a scratch folder (concurrent runs into one
folder, SIGKILL / SIGTERM of a child, hostile sidecars, broken label files, a 60000 x 60000 PNG,
...), and one table says per case what was expected, what was observed and the verdict:
good, bad, or deliberate (a documented choice that differs from the ideal, named in the case).

    python -m benchmarks.faults [--quick] [--only SUBSTR ...] [--timeout S] [--out runs/faults]

Writes `results.json` and `faults.md` (the table) into a new folder (runs/faults, runs/faults2, ...:
never over an earlier run). Each case has its own timeout (`--timeout` caps them); a case that
runs past it is killed and is 'bad' (a hang is a fault). Exit code 0 whether cases are good or
bad: the table is the result (2 on a usage error).
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.fault_types import VERDICTS, Case, Obs  # noqa: F401  (Case, Obs: the catalogue's types)


def expand(arg: str, w: Path, fx) -> str:
    """'{w}' -> the case folder, '{fx:NAME}' -> the fixture's path (built on first use)."""
    arg = re.sub(r"\{fx:(\w+)\}", lambda m: str(fx[m.group(1)]), str(arg))
    return arg.replace("{w}", str(w))


def _popen(argv: list[str], w: Path, umask: int | None) -> subprocess.Popen:
    pre = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.Popen([sys.executable, "-m", *argv], cwd=w, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=pre, start_new_session=True)


def _finish(procs: list, obs: Obs, deadline: float) -> None:
    """Wait for every process until `deadline`; past it the process group is killed and `timed_out` set."""
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            obs.timed_out = True
        obs.rcs.append(p.returncode)
        obs.outs.append(out)
        obs.errs.append(err)


def run_case(case: Case, root: Path, fx, timeout_cap: float | None = None) -> Obs:
    """Run one case in its own folder under `root`; never raises for the case's own failures."""
    w = root / re.sub(r"[^\w.-]+", "_", case.name)
    w.mkdir(parents=True, exist_ok=True)
    limit = min(case.timeout, timeout_cap) if timeout_cap else case.timeout
    obs = Obs(w)
    for pre in case.pre:
        subprocess.run([sys.executable, "-m", *(expand(a, w, fx) for a in pre)], cwd=w, capture_output=True,
                       timeout=limit, start_new_session=True)
    argv = [expand(a, w, fx) for a in case.argv]
    t0 = time.monotonic()
    procs = [_popen(argv, w, case.umask) for _ in range(case.copies if case.mode == "race" else 1)]
    if case.mode in ("kill", "term"):
        _signal_when_due(procs[0], case, w, fx, t0 + limit)
    _finish(procs, obs, t0 + limit)
    obs.seconds = time.monotonic() - t0
    return obs


def _signal_when_due(p: subprocess.Popen, case: Case, w: Path, fx, deadline: float) -> None:
    """SIGKILL / SIGTERM the child `after` s after start, or once `wait_for` exists (whichever is later)."""
    target = Path(expand(case.wait_for, w, fx)) if case.wait_for else None
    t0 = time.monotonic()
    while p.poll() is None and time.monotonic() < deadline:
        if time.monotonic() - t0 >= case.after and (target is None or target.exists()):
            os.kill(p.pid, signal.SIGKILL if case.mode == "kill" else signal.SIGTERM)
            return
        time.sleep(0.05)


def judge(case: Case, obs: Obs) -> tuple[str, str]:
    """(verdict, observed): the check on what the case left; a timeout or a crashing check is 'bad'."""
    if obs.timed_out and case.mode != "kill":
        seen = f"still running after {obs.seconds:.0f} s (killed)"
        return ("deliberate" if case.deliberate else "bad"), seen
    try:
        holds, seen = case.check(obs)
    except Exception as e:  # the check itself met something unexpected: that is an observation too
        holds, seen = False, f"check failed: {type(e).__name__}: {e}"
    if holds:
        return "good", seen
    return ("deliberate" if case.deliberate else "bad"), seen + (f" [{case.deliberate}]" if case.deliberate else "")


def _cell(s: str, n: int) -> str:
    s = " ".join(str(s).split()).replace("|", "/")
    return s if len(s) <= n else s[: n - 1] + "…"


def table(rows: list[dict], width: int = 100) -> str:
    """The markdown table: case, expected, observed, verdict."""
    lines = ["| case | expected | observed | verdict |", "|---|---|---|---|"]
    lines += [f"| {r['item']} {r['case']} | {_cell(r['expected'], 70)} | {_cell(r['observed'], width)} | "
              f"{r['verdict']} |" for r in rows]
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    return "\n".join(lines) + "\n\n" + ", ".join(f"{n} {v}" for v, n in counts.items()) + f" of {len(rows)} cases\n"


def select(cases, quick: bool, only: list[str] | None) -> list:
    picked = [c for c in cases if (c.quick or not quick) and (not only or any(o in c.name or o == c.item for o in only))]
    return picked


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="only the cheap cases (a few minutes)")
    p.add_argument("--only", nargs="+", help="cases whose name holds one of these strings (or item, e.g. 26.3)")
    p.add_argument("--timeout", type=float, default=None, help="cap every case's own timeout (seconds)")
    p.add_argument("--out", default="runs/faults", help="results folder (a new one beside it if used)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    return p


def faults(a: argparse.Namespace, cases=None) -> tuple[list[dict], Path | None]:
    """Run the selected cases; returns (rows, results folder or None with --list)."""
    from benchmarks.fault_cases import CASES  # noqa: PLC0415  (the catalogue loads its fixtures lazily)
    from benchmarks.fault_fixtures import Fixtures
    from edge.outputs.runfolders import check_out_path
    from edge.errors import SpireEdgeError
    from edge.outputs.runfolders import new_run_folder

    picked = select(CASES if cases is None else cases, a.quick, a.only)
    if a.list:
        for c in picked:
            print(f"{c.item:6} {c.name:34} {c.expected}")
        return [], None
    if not picked:
        raise SpireEdgeError(f"--only {' '.join(a.only or [])}: no case matches; see --list")
    check_out_path(a.out)
    out, _ = new_run_folder(a.out, "--out")
    rows = []
    with tempfile.TemporaryDirectory(prefix="spire_faults_") as tmp:
        fx = Fixtures(Path(tmp) / "fixtures")
        for k, c in enumerate(picked, 1):
            obs = run_case(c, Path(tmp) / "cases", fx, a.timeout)
            verdict, seen = judge(c, obs)
            seen = seen.replace(f"{tmp}/fixtures/", "").replace(f"{tmp}/cases/", "")  # short, run-independent
            rows.append({"case": c.name, "item": c.item, "expected": c.expected, "observed": seen,
                         "verdict": verdict, "seconds": round(obs.seconds, 2), "exit_codes": obs.rcs,
                         "stderr_tail": (obs.err or "")[-600:]})
            print(f"[{k}/{len(picked)}] {c.item} {c.name}: {verdict} ({obs.seconds:.1f} s)", file=sys.stderr)
    return rows, out


def main(argv=None) -> int:
    from edge.cli import run_cli
    from edge.io import atomic_write, atomic_write_json

    def _main(argv) -> int:
        a = build_parser().parse_args(argv)
        rows, out = faults(a)
        if out is None:
            return 0
        md = table(rows)
        print(md)
        atomic_write_json(out / "results.json", {"command": "python -m benchmarks.faults " + " ".join(argv or []),
                                                 "cases": rows})
        atomic_write(out / "faults.md", md)
        print(f"saved: {out}/results.json, {out}/faults.md")
        return 0

    return run_cli(_main, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
