"""Find or make the artifact each benchmark row runs: reuse a matching export, else export one now.

A board has no torch, so `python -m benchmarks.run` there must run the artifacts shipped in
`weights/shipped/export/` (or found in the cache); a development machine exports what is
missing through the same Python functions `python -m export` and `python -m quantize.ptq` use
(never a re-implementation), into a cache folder under `--out`. An artifact is reused only when
its sidecar matches the row: format, precision, input size, architecture and — when the
checkpoint is at hand — the sha256 of the checkpoint it was made from.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import SpireEdgeError
from edge.model.targets import TARGETS

# benchmark backend -> sidecar format / export target (the exportable rows of edge.model.targets)
BACKEND_FORMAT = {t.backend: t.format for t in TARGETS.values() if t.exportable}
ENGINE_SUFFIXES = (".engine", ".plan")


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line: 'Type: first line of the message'."""
    text = str(exc).strip().splitlines()
    msg = text[0].strip() if text else ""
    if isinstance(exc, SpireEdgeError) and msg:
        out = msg
    else:
        out = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return out if len(out) <= limit else out[: limit - 1] + "…"


@contextlib.contextmanager
def quiet_fds():
    """Silence stdout/stderr at the file-descriptor level (converters log from C++, past
    sys.stdout), so the table is not buried under toolchain chatter; the text is dropped."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def artifact_size_mb(path: Path) -> float:
    """Bytes of the model files of an artifact (folder minus metadata/reports, or one file), in MB."""
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    skip = {".json", ".sh", ".txt", ".md", ".log"}
    total = sum(p.stat().st_size for p in files if p.suffix not in skip)
    return total / 1e6


@dataclass
class ArtifactMaker:
    """Resolves (backend, precision) to an artifact folder for the shipped model at `imgsz`.

    Args:
        weights: the shipped checkpoint (None on a device without it: only found artifacts run).
        imgsz: the input size of the rows.
        cache: where new exports go (`<out>/artifacts`).
        search: extra folders searched for ready artifacts (default: edge.model.zoo.export_roots()); the
            checkpoint's own `export/` sibling folder is always searched.
        calib_data / calib_split / calib_frames: PTQ calibration (None: synthetic frames).
        val_frames: frames of the PTQ fidelity report (kept small: the benchmark measures accuracy itself).
        reuse: False forces fresh exports into the cache.
    """

    weights: Path | None
    imgsz: int
    cache: Path
    search: list[Path] | None = None
    calib_data: str | None = None
    calib_split: str = "train"
    calib_frames: int = 300
    val_frames: int = 8
    reuse: bool = True
    quiet: bool = True
    log: list[str] = field(default_factory=list)
    _src: object = field(default=None, repr=False)
    _sha: str | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ source model
    def source(self):
        """export.common.Source for the checkpoint at `imgsz` (loaded once; needs torch)."""
        if self._src is None:
            if self.weights is None:
                raise SpireEdgeError("no checkpoint to export from; pass --model PATH/TO/best.pt "
                                     "(or run where the artifacts are already exported)")
            from export.common import load_source
            with self._hush():
                self._src = load_source(self.weights, self.imgsz)
        return self._src

    def checkpoint_sha(self) -> str | None:
        if self._sha is None and self.weights is not None and Path(self.weights).is_file():
            from edge.model.sidecar import file_sha256
            self._sha = file_sha256(self.weights)
        return self._sha

    # ------------------------------------------------------------------ lookup
    def _roots(self) -> list[Path]:
        roots = [Path(self.cache)]
        if self.weights is not None:  # a model set travels as best.pt + export/ (weights/shipped, weights/dense)
            roots.append(Path(self.weights).parent / "export")
        if self.search is not None:
            roots += [Path(p) for p in self.search]
        else:
            try:
                from edge.model.zoo import export_roots
                roots += export_roots()
            except ImportError:
                pass
        unique: dict[Path, Path] = {}
        for r in roots:  # each folder searched once (the checkpoint's export/ is often a zoo root too)
            unique.setdefault(r.resolve(), r)
        return list(unique.values())

    def matches(self, meta, fmt: str, precision: str) -> bool:
        if meta.format != fmt or meta.precision != precision or meta.imgsz != self.imgsz:
            return False
        sha = self.checkpoint_sha()
        src = meta.source_checkpoint or {}
        if sha is not None:
            return src.get("sha256") == sha
        return True  # no checkpoint here (a board): any artifact of the right kind is the shipped one

    def find(self, fmt: str, precision: str) -> Path | None:
        """A ready artifact folder for this row, or None."""
        if not self.reuse:
            return None
        from edge.model.zoo import find_artifacts
        for root in self._roots():
            if not root.is_dir():
                continue
            for folder, meta in find_artifacts(root):
                if self.matches(meta, fmt, precision):
                    return folder
        return None

    # ------------------------------------------------------------------ export
    def export(self, fmt: str, precision: str) -> Path:
        """Export (fp32/fp16) or quantize (int8) into the cache; returns the artifact folder."""
        from benchmarks.rows import runtime_available
        if not runtime_available("torch"):  # a board: artifacts are made on a PC
            raise SpireEdgeError(f"no {precision} {fmt} artifact at {self.imgsz}px here and no torch to export "
                                 f"one; run `python -m export --target {fmt} --precision {precision} --imgsz "
                                 f"{self.imgsz}` on a PC and copy the folder into runs/export/")
        from export.formats import FORMATS
        spec = FORMATS[fmt]
        if precision == "int8":
            return self._ptq(spec)
        fn = spec.exporter_fn()
        src = self.source()
        with self._hush():
            return Path(fn(src, self.cache, precision=precision))

    def _ptq(self, spec) -> Path:
        if self.weights is None:
            raise SpireEdgeError("INT8 needs the checkpoint to calibrate; pass --model PATH/TO/best.pt")
        from quantize.calibration import MIN_FRAMES
        from quantize.job import Int8Job
        from quantize.ptq import run_ptq

        # the loaded model, the small --quick calibration set allowed, and no fidelity report (the
        # table itself compares INT8 with FP32 on the benchmark frames)
        job = Int8Job(weights=str(self.weights), backend=spec.backend, data=self.calib_data, split=self.calib_split,
                      frames=self.calib_frames, imgsz=self.imgsz, out=str(self.cache), fidelity=False,
                      val_frames=self.val_frames, min_frames=min(self.calib_frames, MIN_FRAMES))
        with self._hush():
            paths = run_ptq(job, src=self.source())
        for p in paths or []:
            p = Path(p)
            folder = p if p.is_dir() else p.parent
            try:
                from edge.model.sidecar import read_sidecar
                meta = read_sidecar(folder, verify=False)
            except SpireEdgeError:
                continue
            if meta.format == spec.name and meta.precision == "int8":
                return folder
        raise SpireEdgeError(f"quantize.ptq produced no int8 {spec.name} artifact in {self.cache}")

    def _hush(self):
        return quiet_fds() if self.quiet else contextlib.nullcontext()

    def get(self, backend: str, precision: str) -> Path:
        """The artifact folder for a row: found, else exported now. Raises on failure."""
        if backend not in BACKEND_FORMAT:
            import difflib
            near = difflib.get_close_matches(backend, list(BACKEND_FORMAT), n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise SpireEdgeError(f"unknown backend {backend!r}; {hint}choose from {', '.join(BACKEND_FORMAT)}")
        fmt = BACKEND_FORMAT[backend]
        folder = self.find(fmt, precision)
        if folder is None:
            folder = self.export(fmt, precision)
            self.log.append(f"exported {folder}")
        else:
            self.log.append(f"reused {folder}")
        if TARGETS[fmt].engine_recipe:  # TensorRT: the engine is built on the device from the recipe
            ensure_engine(folder)
        return Path(folder)


def ensure_engine(folder: Path) -> Path:
    """A TensorRT engine in the artifact folder, built with its build_engine.sh when missing."""
    import subprocess
    folder = Path(folder)
    found = sorted(p for s in ENGINE_SUFFIXES for p in folder.glob(f"*{s}") if p.stat().st_size > 0)
    if found:
        return found[0]
    script = folder / "build_engine.sh"
    if not script.is_file():
        raise SpireEdgeError(f"{folder}: no TensorRT engine and no build_engine.sh; re-export with "
                             "`python -m export --target tensorrt` and build it on the device")
    res = subprocess.run(["bash", str(script), str(folder), "--no-compare"], cwd=folder, capture_output=True, text=True)
    found = sorted(p for s in ENGINE_SUFFIXES for p in folder.glob(f"*{s}") if p.stat().st_size > 0)
    if res.returncode != 0 or not found:
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SpireEdgeError(f"{script}: engine build failed ({tail[0][:160]}); run it by hand to see why")
    return found[0]
