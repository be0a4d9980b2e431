"""What every exporter shares: the source model, its sidecar, atomic folders, golden checks.

Why: each format's exporter should be a short pure function (torch module in, artifact folder
out). Loading the checkpoint, fixing the static input size, building the sidecar, staging the
artifact in a temp folder so a failed export never leaves half an artifact (or clobbers the last
good one), and comparing outputs against torch are the same for every format, so they live here.
"""
from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from edge.errors import SpireEdgeError
from edge.inference.preprocess import PreprocessConfig
from edge.model.sidecar import ModelMeta, file_sha256, io_specs, toolchain_versions
from edge.model.targets import TARGETS
from edge.model.zoo import default_checkpoint

log = logging.getLogger("export")
GOLDEN_SEED = 0
FP32_TOL = 1e-3  # max |runtime - torch| relative to the heatmap's range: a real mismatch is >> this


class ExportError(SpireEdgeError):
    """An export whose toolchain failed or whose artifact does not reproduce the torch model."""


@dataclass
class Source:
    """The torch model being exported plus everything its sidecar needs.

    `preprocess` and `codec` are already set to the export size; `model` is in eval mode.
    """

    model: object
    arch: str
    arch_kwargs: dict
    imgsz: int
    channels: int
    stride: int
    preprocess: dict
    codec: dict
    checkpoint: dict | None = None
    training: dict = field(default_factory=dict)
    weights: Path | None = None
    operating_point: dict | None = None  # why codec.thr is what it is (the sidecar's record), carried to exports

    def example_input(self, seed: int = GOLDEN_SEED) -> np.ndarray:
        """A fixed float32 (1, C, S, S) input for golden-output checks (normalised-scale noise)."""
        rng = np.random.default_rng(seed)
        return rng.standard_normal((1, self.channels, self.imgsz, self.imgsz)).astype(np.float32)

    def torch_output(self, x: np.ndarray) -> np.ndarray:
        import torch
        with torch.inference_mode():
            return self.model(torch.from_numpy(x)).float().numpy()


def round_imgsz(imgsz: int, multiple: int = 32) -> int:
    """Round a requested size up to a multiple of 32 (printing why), as edge compilers need."""
    s = int(imgsz)
    if s <= 0:
        raise ExportError(f"--imgsz {imgsz}: must be a positive multiple of {multiple}")
    r = -(-s // multiple) * multiple
    if r != s:
        print(f"export: --imgsz {s} rounded up to {r} (static input shapes must be a multiple of {multiple})")
    return r


def _load_module(weights: Path):
    """(model, ckpt dict) from a spire checkpoint, or an official SPIRE .pth as a fallback."""
    from spire.models import CheckpointError, load_checkpoint
    try:
        return load_checkpoint(weights)
    except CheckpointError as e:
        if "no 'arch' entry" not in str(e):
            raise
        from spire.models import load_official
        model = load_official(weights).eval()
        return model, {"arch": getattr(model, "arch", "hrpe"), "arch_kwargs": {}, "meta": {}}


def load_source(weights: str | Path | None = None, imgsz: int | None = None) -> Source:
    """Load a checkpoint (default: the shipped one; a ladder name or a path) for export.

    `imgsz` None: the size the model is deployed at (its contract, `edge.model.contract`: the shipped
    spire-s was trained on 192 px crops and is deployed at 512; a checkpoint fine-tuned from it
    inherits 512), so exporting or quantising a model by name gives what ships. A model whose
    deployed size is not known (an old checkpoint without exports) keeps its own size.
    """
    from spire.models.checkpoint import resolve_checkpoint

    weights = resolve_checkpoint(default_checkpoint() if weights is None else weights)
    model, ckpt = _load_module(weights)
    model.eval()
    meta = dict(ckpt.get("meta") or {})
    if imgsz is None and ckpt.get("deployed"):
        imgsz = int(meta["preprocess"]["imgsz"])
        print(f"export: {weights} at {imgsz} px, the size it is deployed at (--imgsz to change)", file=sys.stderr)
    return source_from_model(model, meta=meta, imgsz=imgsz, weights=weights,
                             arch=ckpt.get("arch"), arch_kwargs=ckpt.get("arch_kwargs"))


def source_from_model(model, meta: dict | None = None, imgsz: int | None = None, weights: Path | None = None,
                      arch: str | None = None, arch_kwargs: dict | None = None) -> Source:
    """A Source for an in-memory model (`model.cfg` gives defaults; `meta` overrides them)."""
    meta = meta or {}
    cfg = getattr(model, "cfg", None)
    if cfg is None and not meta.get("preprocess"):
        raise ExportError("the model has no .cfg and the checkpoint no sidecar meta; build it with "
                          "spire.models.create_model or save it with spire.models.save_checkpoint")
    pre = dict(meta.get("preprocess") or {
        "imgsz": cfg.input_size, "channels": cfg.in_chans, "norm": dict(cfg.norm),
        "letterbox": cfg.letterbox, "scale_up": cfg.scale_up})
    size = round_imgsz(imgsz) if imgsz else int(pre.get("imgsz") or cfg.input_size)
    pre["imgsz"] = size
    pre = PreprocessConfig.from_dict(pre).to_dict()
    stride = int(getattr(cfg, "stride", None) or meta.get("output", {}).get("stride", 4))
    codec = dict(meta.get("codec") or cfg.codec_cfg(size))
    codec["input_size"] = size
    codec.setdefault("stride", stride)
    codec = _normalise_codec(codec)
    ck = None
    if weights is not None and Path(weights).is_file():
        ck = {"path": str(weights), "sha256": file_sha256(weights)}
    return Source(model=model.eval(), arch=str(arch or getattr(model, "arch", "model")),
                  arch_kwargs=dict(arch_kwargs if arch_kwargs is not None else getattr(model, "arch_kwargs", {})),
                  imgsz=size, channels=int(pre["channels"]), stride=stride, preprocess=pre, codec=codec,
                  checkpoint=ck, training=dict(meta.get("training") or {}), weights=weights,
                  operating_point=(meta.get("extra") or {}).get("operating_point"))


def _normalise_codec(codec: dict) -> dict:
    """Round-trip the codec dict through edge.codecs when it is available (validates it)."""
    try:
        from edge.codecs import build_codec
    except ImportError:
        return codec
    return build_codec(codec).to_dict()


def make_meta(src: Source, fmt: str, precision: str, folder: Path, model_file: str,
              io_names: tuple[str, str] = ("images", "heatmap"),
              calibration: dict | None = None, extra: dict | None = None) -> ModelMeta:
    """The sidecar for an artifact whose files already sit in `folder` (`files` hashes all of them).

    `io_names`: the model's (input, output) tensor names, as its runtime reports them."""
    from edge.model.integrity import hash_files, needed_files

    inp, out = io_specs(src.imgsz, src.channels, src.stride, *io_names)
    return ModelMeta(arch=src.arch, arch_kwargs=dict(src.arch_kwargs), format=fmt, model_file=model_file,
                     model_sha256=file_sha256(Path(folder) / model_file), precision=precision, input=inp,
                     output=out, preprocess=dict(src.preprocess), codec=dict(src.codec),
                     calibration=calibration, source_checkpoint=src.checkpoint,
                     training=dict(src.training),
                     extra={**({"operating_point": src.operating_point} if src.operating_point else {}), **(extra or {})},
                     files=hash_files(folder, needed_files(folder, fmt, model_file)))


@contextlib.contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """Yield a temp folder beside `final`; on success it replaces `final` atomically.

    On any error the temp folder is removed and an existing `final` is left untouched. The temp
    folder's name holds the pid, so one left by a killed process is removed by the next export
    into the same parent. (`python -m export` never replaces a folder: it builds in a work folder
    and places the result, see export.exporter; PTQ/QAT replace their own INT8 folder.)
    """
    from edge.io import remove_stale_temps, temp_prefix

    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final.parent)  # what killed exports left here (their process is gone)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(final.name), suffix=".tmp", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    from edge.fileperm import chmod_tree

    chmod_tree(tmp)  # mkdtemp made it 0700: the folder a user copies to a board gets the umask's mode
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def compare(ref: np.ndarray, got: np.ndarray, precision: str, what: str) -> dict:
    """Golden check: max |got - ref| (absolute and relative to ref's range); fp32 must match."""
    got = np.asarray(got, np.float32).reshape(ref.shape)
    diff = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    rng = float(np.ptp(ref)) or 1.0
    rel = diff / max(rng, 1e-6)
    report = {"golden_max_abs_diff": diff, "golden_rel_diff": rel, "golden_seed": GOLDEN_SEED}
    if precision == "fp32" and rel > FP32_TOL:
        raise ExportError(f"{what}: fp32 output differs from torch by {diff:.3g} ({rel:.2%} of the heatmap "
                          "range); the toolchain changed the model — report it, or export another target")
    log.info("%s: golden max|diff| %.3g (%.3g%% of range)", what, diff, 100 * rel)
    return report


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the toolchains' progress chatter and deprecation noise (their errors still raise)."""
    if os.environ.get("SPIRE_EDGE_DEBUG"):
        yield
        return
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._export", "torch.export", "absl")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in Path(p).rglob("*") if f.is_file()) if Path(p).is_dir() else Path(p).stat().st_size


def timed(name: str) -> Callable:
    """Decorator for exporters: log the wall time and artifact size, wrap toolchain crashes."""
    def deco(fn: Callable[..., Path]) -> Callable[..., Path]:
        @functools.wraps(fn)
        def wrapper(*a, **k) -> Path:
            t0 = time.perf_counter()
            print(f"export {name}: starting with {_toolchain(name)}")
            try:
                path = fn(*a, **k)
            except SpireEdgeError:
                raise
            except Exception as e:  # toolchain crash: one line for the user, chained for debugging
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
                raise ExportError(f"export {name} failed: {type(e).__name__}: {first}; rerun with "
                                  "SPIRE_EDGE_DEBUG=1 for the traceback") from e
            dt = time.perf_counter() - t0
            print(f"export {name}: done in {dt:.1f} s, {dir_size(path) / 1e6:.2f} MB -> {path}")
            return path
        return wrapper
    return deco


def _toolchain(name: str) -> str:
    v = toolchain_versions()
    keys = TARGETS[name].toolchain if name in TARGETS else ()
    return ", ".join(f"{k} {v[k]}" for k in keys if k in v) or "?"
