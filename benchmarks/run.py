"""`python -m benchmarks.run`: one table of backend × precision with accuracy, speed and power.

Why: the claims that matter on a device — "INT8 OpenVINO is 20× faster than the published
SPIRE network at no loss of accuracy", "decode is free" — are only believable measured side by
side in one run, on the same frames, with the same pipeline, threads pinned and stated. Each
row exports (or reuses) its artifact, runs it through `edge.inference.predictor`, and scores it with
`edge.metrics`; a row that fails says why and the others still run.

    python -m benchmarks.run                               # the built-in IR clip (accuracy + speed) and 512² speed
    python -m benchmarks.run --quick                       # CI smoke test (256 px, 8 frames)
    python -m benchmarks.run --data DATA/sirst-v2 --split val --frames 100 --imgsz 512
    python -m benchmarks.run --board jetson-orin-nano      # defaults from boards/<name>/profile.json
    python -m benchmarks.run --ladder --data VAL_ROOT ...  # one row per model size (benchmarks.ladder)
"""
from __future__ import annotations

import argparse
import gc
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.artifacts import ArtifactMaker, artifact_size_mb, one_line
from benchmarks.device import PowerMeter, default_threads, device_string
from benchmarks.measure import FrameSet, TimingConfig, frame_sets, measure, state_dict_mb, torch_predictor
from benchmarks.rows import BACKEND_PRECISIONS, Row, RowSpec, apply_speedups, plan_rows
from benchmarks.table import append_log, markdown_table, plot_f1_latency, write_results
from edge.cli import run_cli
from edge.errors import SpireEdgeError
from edge.model.zoo import named_checkpoint

OFFICIAL_ENV = "SPIRE_OFFICIAL_WEIGHTS"
OFFICIAL_GLOB = "SPIRE-SIRST4-512-*.pth"
DEFAULT_LOG = Path(__file__).resolve().parent / "results.log"


@dataclass(frozen=True)
class BenchConfig:
    """Everything one benchmark run depends on (written to run.json beside the results)."""

    model: Path | None
    out: Path
    imgsz: int = 512
    frames: int = 100
    data: str | None = None
    split: str = "val"
    backends: list[str] | None = None
    precisions: list[str] | None = None
    threads: int = 1
    timing: TimingConfig = field(default_factory=TimingConfig)
    official: Path | None = None
    official_imgsz: int = 512
    with_official: bool = True
    calib_data: str | None = None
    calib_split: str = "train"
    calib_frames: int = 300
    power: str | None = None
    reuse: bool = True
    log: Path | None = None
    progress: bool = True
    verbose: bool = False


def find_official(explicit: str | None) -> Path | None:
    """The official SIRST4 checkpoint: --official, $SPIRE_OFFICIAL_WEIGHTS, or a shared checkout beside the repo."""
    if explicit:
        return Path(explicit)
    if os.environ.get(OFFICIAL_ENV):
        return Path(os.environ[OFFICIAL_ENV])
    repo = Path(__file__).resolve().parents[1]
    for folder in (repo / "weights" / "official", repo.parent / "shared" / "weights" / "spire-official"):
        hits = sorted(folder.glob(OFFICIAL_GLOB)) if folder.is_dir() else []
        if hits:
            return hits[0]
    return None


def default_model() -> Path | None:
    """The shipped checkpoint when it exists (None: run only ready artifacts, as on a board)."""
    from edge.model.zoo import default_checkpoint
    try:
        return default_checkpoint()
    except SpireEdgeError:
        return None


# ---------------------------------------------------------------------------------------- rows
def _official_predictor(cfg: BenchConfig, row: Row):
    """SPIRE's faithful HRPE (official SIRST4 weights, else random init) letterboxed to 512."""
    from export.common import source_from_model
    from spire.models import create_model, load_official

    if cfg.official is not None and cfg.official.is_file():
        model = load_official(cfg.official)
        row.note = f"official weights {cfg.official.name}"
    else:
        model = create_model("hrpe").eval()
        row.name += " (random init)"
        row.note = "official weights not found (--official PATH): same architecture, random init"
    src = source_from_model(model, imgsz=cfg.official_imgsz)
    row.arch, row.imgsz, row.size_mb = "hrpe", src.imgsz, state_dict_mb(model)
    row.artifact = str(cfg.official) if cfg.official else None
    return torch_predictor(src, cfg.threads, mode="resize")


def _prepare(spec: RowSpec, cfg: BenchConfig, maker: ArtifactMaker, row: Row):
    """Export or load what a row runs; returns a function that builds its predictor."""
    if spec.model == "official":
        predictor = _official_predictor(cfg, row)
        return lambda: predictor
    if spec.backend == "torch":
        src = maker.source()
        row.arch, row.imgsz, row.size_mb = src.arch, src.imgsz, state_dict_mb(src.model)
        row.artifact = str(cfg.model)
        return lambda: torch_predictor(src, cfg.threads, mode="auto")
    folder = maker.get(spec.backend, spec.precision)
    row.artifact, row.size_mb = str(folder), artifact_size_mb(folder)

    def load():
        from edge.inference.predictor import Predictor
        p = Predictor(folder, backend=spec.backend, threads=cfg.threads)
        row.arch, row.imgsz = p.meta.arch, p.size
        return p
    return load


def run_row(spec: RowSpec, cfg: BenchConfig, maker: ArtifactMaker, sets: list[FrameSet], power: PowerMeter,
            device: str) -> list[Row]:
    """Export/load once, then measure one row per frame set; failures become statuses, never exceptions."""
    rows = [Row.from_spec(spec, threads=cfg.threads, device=device, bench=fs.label) for fs in sets]
    first = rows[0]
    try:
        made = _prepare(spec, cfg, maker, first)
    except Exception as e:  # noqa: BLE001 - a failing row must not stop the table
        for row in rows:
            row.status = f"export failed: {one_line(e)}"
        return rows
    predictor = None
    try:
        predictor = made()
        for row, fs in zip(rows, sets):
            for k in ("name", "arch", "imgsz", "size_mb", "artifact", "note"):
                setattr(row, k, getattr(first, k))
            try:
                measure(row, predictor, fs.frames, cfg.timing, power, progress=cfg.progress, scored=fs.scored)
                row.status = "ok"
            except Exception as e:  # noqa: BLE001
                row.status = f"run failed: {one_line(e)}"
    except Exception as e:  # noqa: BLE001 - loading failed: every row of this spec says so
        for row in rows:
            row.status = f"run failed: {one_line(e)}"
    finally:
        predictor = made = None
        gc.collect()
    return rows


# ---------------------------------------------------------------------------------------- report
def goals(rows: list[Row], speed_rows: list[Row] | None = None) -> list[str]:
    """The issue's goals, checked on this run's rows (lines to print and store).

    Accuracy comes from `rows` (the scored frames), speed-ups from `speed_rows` (the frames at the
    model's input size; default: `rows`).
    """
    speed_rows = rows if speed_rows is None else speed_rows
    ok = {(r.backend, r.precision, r.model): r for r in rows if r.ok}
    fast = {(r.backend, r.precision, r.model): r for r in speed_rows if r.ok}
    first = next((r for r in speed_rows if r.ok), None)
    out = []
    ov8, ov8_acc = fast.get(("openvino", "int8", "shipped")), ok.get(("openvino", "int8", "shipped"))
    if ov8 and first:
        off = ok.get(("torch", "fp32", "official"))
        acc = (f"; F1 {ov8_acc.f1:.3f} vs official {off.f1:.3f} on {ov8_acc.bench}"
               if ov8_acc and off and ov8_acc.f1 is not None and off.f1 is not None else "")
        out.append(f"openvino int8 e2e speed-up over '{first.name}' on {ov8.bench}: {ov8.speedup:.1f}x "
                   f"(goal >= 20x at 512){acc}")
    for backend in BACKEND_PRECISIONS:
        a, b = ok.get((backend, "fp32", "shipped")), ok.get((backend, "int8", "shipped"))
        fa, fb = fast.get((backend, "fp32", "shipped")), fast.get((backend, "int8", "shipped"))
        if a and b and a.f1 is not None and b.f1 is not None:
            speed = ""
            if fa and fb:
                infer = (f"{fa.infer_ms_p50 / fb.infer_ms_p50:.2f}x faster in inference (goal >= 3x), "
                         if fa.infer_ms_p50 and fb.infer_ms_p50 else "")
                speed = f"; int8 {infer}{fa.latency_ms_p50 / fb.latency_ms_p50:.2f}x end to end"
            out.append(f"{backend}: int8 F1 - fp32 F1 = {100 * (b.f1 - a.f1):+.2f} points (goal >= -0.5){speed}")
    shares = [r for r in rows + [r for r in speed_rows if r not in rows]
              if r.ok and r.decode_share is not None and r.backend != "torch"]
    if shares:
        worst_d = max(shares, key=lambda r: r.decode_share)
        worst_o = max(shares, key=lambda r: r.overhead_share)
        out.append(f"decode share of frame time: max {100 * worst_d.decode_share:.2f}% ({worst_d.name}; goal <= 1%)")
        out.append(f"runtime overhead (all but infer): max {100 * worst_o.overhead_share:.1f}% "
                   f"({worst_o.name}; goal <= 10%)")
    return out


def run(cfg: BenchConfig, command: str = "") -> list[Row]:
    """Plan, measure and write everything; returns the rows."""
    device = device_string(cfg.threads)
    specs = plan_rows(cfg.backends, cfg.precisions, official=cfg.with_official)
    if not specs:
        raise SpireEdgeError("no rows to run: none of the requested backends is installed; "
                             "pip install 'spire-edge[onnx]' (or [openvino], [tflite])")
    sets = frame_sets(cfg.data, cfg.split, cfg.frames, cfg.imgsz)
    maker = ArtifactMaker(cfg.model, cfg.imgsz, cfg.out / "artifacts", calib_data=cfg.calib_data,
                          calib_split=cfg.calib_split, calib_frames=cfg.calib_frames,
                          val_frames=min(cfg.frames, 8), reuse=cfg.reuse, quiet=not cfg.verbose)
    power = PowerMeter(cfg.power)
    where = "; ".join(f"{len(fs.frames)} frames of {fs.label}" for fs in sets)
    print(f"benchmarks: {len(specs)} rows x {len(sets)} frame sets ({where}); {device}", file=sys.stderr)
    per_set: list[list[Row]] = [[] for _ in sets]
    try:
        for spec in specs:
            t0 = time.perf_counter()
            got = run_row(spec, cfg, maker, sets, power, device)
            for group, row in zip(per_set, got):
                group.append(row)
            status = ", ".join(dict.fromkeys(r.status for r in got))
            print(f"  {got[0].name}: {status} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    finally:
        power.close()
    rows = [r for group in per_set for r in group]  # the scored frames' rows first, then speed-only
    apply_speedups(rows)
    meta = {"command": command, "device": device, "threads": cfg.threads, "frames": len(sets[0].frames),
            "source": where, "frame_sets": [{"label": fs.label, "frames": len(fs.frames), "scored": fs.scored}
                                            for fs in sets],
            "imgsz": cfg.imgsz, "official_imgsz": cfg.official_imgsz,
            "timing": vars(cfg.timing), "power": power.note, "artifacts": maker.log,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "goals": goals(per_set[0], per_set[-1])}
    try:
        from edge.model.sidecar import toolchain_versions
        meta["versions"] = toolchain_versions()
    except ImportError:
        pass
    paths = write_results(rows, cfg.out, meta)
    plot = plot_f1_latency(rows, cfg.out / "f1_vs_latency.png")
    print(markdown_table(rows))
    print(f"\npower: {power.note}")
    for line in meta["goals"]:
        print(f"goal: {line}")
    if cfg.log is not None:
        paths["log"] = append_log(rows, cfg.log, command)
    if plot is None:
        print("plot: skipped (matplotlib is not installed)")
    written = ", ".join(str(p) for p in [*paths.values(), plot] if p is not None)
    print(f"wrote: {written}")
    return rows


# ---------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="checkpoint (.pt) of the model to benchmark (default: the shipped one)")
    p.add_argument("--data", nargs="+", metavar="ROOT",
                   help="labelled dataset root (any edge.datasets layout, ir-drone clips too), or 'synthetic'; "
                   "default: the built-in IR clip (accuracy at 320x256) plus synthetic --imgsz frames (speed only); "
                   "with --ladder: the validation roots, each scored on its own")
    p.add_argument("--split", default="val", help="split of --data to measure on (default: val)")
    p.add_argument("--ladder", action="store_true",
                   help="one row per model of the ladder (weights/ladder.json) instead of per backend: val accuracy on "
                   "every --data root, params, GMAC, --backends/--precisions latency (default openvino int8) and "
                   "the speed-up over the official architecture in torch (benchmarks.ladder)")
    p.add_argument("--rungs", nargs="+", metavar="NAME", help="with --ladder: these ladder names only")
    p.add_argument("--frame-stride", type=int, default=10,
                   help="with --ladder: every k-th frame of video-clip roots (as edge.run --frame-stride)")
    p.add_argument("--backends", nargs="+", metavar="B",
                   help=f"backends ({', '.join(BACKEND_PRECISIONS)}; default: every installed one)")
    p.add_argument("--precisions", nargs="+", metavar="P", help="precisions (fp32 fp16 int8; default: all)")
    p.add_argument("--imgsz", type=int, help="model input size (default 512; --quick 256)")
    p.add_argument("--board", help="board profile name (boards/<NAME>/profile.json): imgsz, threads, power")
    p.add_argument("--frames", type=int, help="benchmark frames (default 100; --quick 8)")
    p.add_argument("--quick", action="store_true", help="CI smoke test: 256 px, 8 frames, few repeats")
    p.add_argument("--out", default="runs/benchmarks", help="output folder (default runs/benchmarks)")
    p.add_argument("--threads", type=int, help="CPU threads pinned for every runtime (default: all cores)")
    p.add_argument("--repeats", type=int, help="infer-only repeats (default 50; --quick 10)")
    p.add_argument("--warmup", type=int, help="warm-up predictions per row (default 3; --quick 2)")
    p.add_argument("--official", help=f"official SPIRE SIRST4 .pth (default: ${OFFICIAL_ENV} or a shared checkout)")
    p.add_argument("--official-imgsz", type=int, default=512, help="letterbox size of the official row (512)")
    p.add_argument("--no-official", action="store_true", help="leave out the official-architecture row")
    p.add_argument("--calib-data", help="PTQ calibration dataset (default: --data, split --calib-split)")
    p.add_argument("--calib-split", default="train", help="PTQ calibration split (default train)")
    p.add_argument("--calib-frames", type=int, help="PTQ calibration frames (default 300; --quick 16)")
    p.add_argument("--power", help="power sensor: auto | none | rapl | ina3221 | tegrastats | pi5-pmic | ...")
    p.add_argument("--no-reuse", action="store_true", help="re-export every artifact instead of reusing matches")
    p.add_argument("--log", help=f"results log to append to (default {DEFAULT_LOG} for full runs; '' disables)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--verbose", action="store_true", help="show the exporters' and quantizers' own output")
    return p


def config_from_args(a: argparse.Namespace) -> BenchConfig:
    board = {}
    if a.board:
        from edge.device.boards import load_board
        board = load_board(a.board).as_defaults()
    quick = a.quick
    if a.data and len(a.data) > 1 and not a.ladder:
        raise SpireEdgeError(f"--data {' '.join(a.data)}: one root per backend table; several are scored side by "
                             "side with --ladder")
    data = None if a.ladder or not a.data else a.data[0]
    unknown = [b for b in a.backends or () if b not in BACKEND_PRECISIONS]
    unknown += [p for p in a.precisions or () if p not in ("fp32", "fp16", "int8")]
    if unknown:  # before any export or measurement: a typo must not cost the run
        what = "backend" if unknown[0] in (a.backends or ()) else "precision"
        known = ", ".join(BACKEND_PRECISIONS) if what == "backend" else "fp32, fp16, int8"
        raise SpireEdgeError(f"--{what}s {unknown[0]}: unknown {what}; choose from {known}")
    imgsz = a.imgsz or board.get("imgsz") or (256 if quick else 512)
    if imgsz % 32:
        raise SpireEdgeError(f"--imgsz {imgsz}: must be a multiple of 32 (edge compilers need static shapes)")
    frames = a.frames or (8 if quick else 100)
    from edge.outputs.runfolders import check_out_path

    check_out_path(a.out, "--out")  # before any export or measurement: the results must have somewhere to go
    if a.log:
        check_out_path(Path(a.log).parent, "--log")
    from edge.argcheck import check_threads

    threads = check_threads(a.threads) or board.get("threads") or default_threads()
    timing = TimingConfig(warmup=a.warmup if a.warmup is not None else (2 if quick else 3),
                          min_runs=max(frames, 8 if quick else 20),
                          repeats=a.repeats or (10 if quick else 50))
    if a.log is not None:
        log = Path(a.log) if a.log else None
    else:
        log = None if quick else DEFAULT_LOG
    if a.official and not Path(a.official).is_file():
        raise SpireEdgeError(f"{a.official}: no such file; pass the official SPIRE-SIRST4-512-*.pth "
                             "(or leave --official out to use a random-init row of the same architecture)")
    model = named_checkpoint(a.model) if a.model else default_model()  # a path or a ladder name
    if model is not None and not model.exists():
        raise SpireEdgeError(f"{model}: no such checkpoint; pass --model PATH/TO/best.pt")
    return BenchConfig(
        model=model, out=Path(a.out), imgsz=int(imgsz), frames=int(frames), data=data, split=a.split,
        backends=a.backends, precisions=a.precisions, threads=int(threads), timing=timing,
        official=find_official(a.official), official_imgsz=a.official_imgsz, with_official=not a.no_official,
        calib_data=a.calib_data or (data if data != "synthetic" else None), calib_split=a.calib_split,
        calib_frames=a.calib_frames or (16 if quick else 300), power=a.power or board.get("power"),
        reuse=not a.no_reuse, log=log, progress=not a.no_progress, verbose=a.verbose)


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = "python -m benchmarks.run " + " ".join(shlex.quote(x) for x in (sys.argv[1:] if argv is None else argv))
    cfg = config_from_args(args)
    if args.ladder:
        from benchmarks.ladder import run_ladder

        from edge.argcheck import check_count

        check_count(args.frame_stride, "--frame-stride", 1)
        rungs = run_ladder(cfg, list(args.data or ()), args.frame_stride, args.rungs, command.strip())
        return 0 if any(r.ok for r in rungs if r.checkpoint) else 1
    rows = run(cfg, command.strip())
    return exit_code(rows)


def exit_code(rows: list[Row]) -> int:
    """0 when a row of the model under test was measured; 1 (said on stderr) when every one failed.

    The official-architecture row is the speed reference, not the benchmark: it alone succeeding is a failure.
    """
    tested = [r for r in rows if r.model != "official"] or rows
    if any(r.ok for r in tested):
        return 0
    print(f"error: every benchmark row failed ({len(tested)} of the model under test; see the status column)",
          file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
