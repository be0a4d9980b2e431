"""Model zoo resolver: where the shipped checkpoint and its exported artifacts live.

Why: `python -m export` and `python -m edge.run` must work with no model argument on a fresh
checkout, and a user with their own weights folder must be able to point everything at it with
one environment variable (`SPIRE_EDGE_WEIGHTS`). This module is the single place that knows the
layout: `<weights>/best.pt` (+ metadata.json) and `<weights>/export/<artifact folders>`; local
exports in `runs/export/` are found too, after the shipped ones.

Installed from a wheel there is no checkout: the default model's OpenVINO and ONNX artifacts and
weights/ladder.json travel as package data under `edge/_weights/` (copied at build time by
setup.py from weights/, so the repository keeps one copy) and are found through
importlib.resources. What the wheel leaves out (other rungs, checkpoints, TFLite/TensorRT) is
named with where to get it (`not_in_wheel`).
"""
from __future__ import annotations

import os
from pathlib import Path

from edge.errors import SidecarError, SpireEdgeError
from edge.model.sidecar import SIDECAR_NAME, ModelMeta, read_sidecar
from edge.model.targets import TARGETS, get_target

ENV_VAR = "SPIRE_EDGE_WEIGHTS"
REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT_NAME = "best.pt"
# Preference when no precision is asked for: the fastest artifact that keeps the fidelity report's
# agreement first, then the reference.
PRECISION_ORDER = ("int8", "fp32", "fp16")
# Optional file beside the artifact folders: {"<format>": "<artifact folder name>"}, written from a
# benchmark run, so the default per backend is the one measured fastest at equal accuracy (e.g.
# LiteRT INT8 of HRPE is slower than its FP32 on XNNPACK) instead of a fixed precision order.
DEFAULTS_NAME = "defaults.json"
# The package-data folder a wheel carries instead of weights/ (setup.py's build step fills it).
PACKAGE_WEIGHTS = "_weights"
# Backends tried, in order, when a model is named without one (`Predictor("spire-s")`): the first
# whose runtime is installed runs it.
BACKEND_PREFERENCE = ("openvino", "onnxruntime", "tflite")


def _weights_root() -> Path:
    """<checkout>/weights when this is a checkout, else the wheel's package data (edge/_weights)."""
    repo = REPO_ROOT / "weights"
    if (repo / "ladder.json").is_file():
        return repo
    from importlib.resources import files

    return Path(str(files("edge") / PACKAGE_WEIGHTS))


WEIGHTS_ROOT = _weights_root()
# The model ladder's short names (spire-n, spire-s, ...) -> their folders under weights/; one file,
# so the default rung and the names every command takes are stated once.
LADDER_FILE = WEIGHTS_ROOT / "ladder.json"


def from_package() -> bool:
    """Whether the models come from the wheel's package data (no checkout's weights/ folder)."""
    return LADDER_FILE.parent.name == PACKAGE_WEIGHTS


def not_in_wheel(what: str, repo_path: str) -> str:
    """The one line that says a model file is not in the wheel and where to get it."""
    return (f"{what} is not in the installed wheel (it carries only the default model's OpenVINO and ONNX "
            f"artifacts); get it from the source repository's {repo_path} and pass --model PATH")


def default_backend() -> str:
    """The first of BACKEND_PREFERENCE whose runtime is installed ('onnxruntime' when none is)."""
    from importlib.util import find_spec

    from edge.model.targets import backends

    for name in BACKEND_PREFERENCE:
        try:
            if find_spec(backends()[name].runtime_module) is not None:
                return name
        except (KeyError, ImportError, ValueError):
            continue
    return "onnxruntime"


def ladder() -> dict:
    """{'default': name, 'models': {name: folder}} from weights/ladder.json ({} when absent)."""
    import json

    try:
        d = json.loads(LADDER_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def named_weights(name: str | os.PathLike) -> Path | None:
    """The weights folder of a ladder name ('spire-s', 'spire_s'), or None for anything else."""
    key = str(name).strip().replace("_", "-").lower()
    folder = (ladder().get("models") or {}).get(key)
    if not folder:
        return None
    path = LADDER_FILE.parent / folder
    if from_package() and not path.is_dir():
        raise SidecarError(not_in_wheel(f"model {key!r}", f"weights/{folder}/"))
    return path


def named_checkpoint(spec: str | os.PathLike) -> Path:
    """--weights as the user typed it: a ladder name -> that rung's checkpoint, else the path itself."""
    folder = named_weights(spec) if not Path(spec).exists() else None
    return folder / CHECKPOINT_NAME if folder is not None else Path(spec)


def resolve_artifact(model: str | os.PathLike, fmt: str, precision: str | None = None) -> Path:
    """--model as the user typed it: a ladder name -> that rung's artifact for `fmt`, else the path."""
    folder = named_weights(model) if not Path(model).exists() else None
    if folder is None:
        return Path(model)
    return default_artifact(fmt, precision, root=folder / "export")


def weights_dir() -> Path:
    """The shipped-weights folder: $SPIRE_EDGE_WEIGHTS, else <repo>/weights/shipped."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else LADDER_FILE.parent / "shipped"


def default_checkpoint() -> Path:
    """The shipped checkpoint (`<weights>/best.pt`); one-line error when it is absent."""
    p = weights_dir() / CHECKPOINT_NAME
    if not p.is_file() and from_package() and not os.environ.get(ENV_VAR):
        raise SidecarError(not_in_wheel("the training checkpoint (best.pt)", "weights/shipped/"))
    if not p.is_file():
        raise SidecarError(f"{p}: no shipped checkpoint; pass --weights PATH/TO/best.pt, or set {ENV_VAR} "
                           "to a folder holding best.pt (train one with `python -m spire.train`)")
    return p


def export_roots() -> list[Path]:
    """Folders searched for exported artifacts, in order: shipped exports, then local runs."""
    roots = [weights_dir() / "export", Path.cwd() / "runs" / "export"]
    out = []
    for r in roots:
        if r.resolve() not in [o.resolve() for o in out]:
            out.append(r)
    return out


def normalize_format(fmt: str) -> str:
    """'onnxruntime' -> 'onnx', 'litert' -> 'tflite', ... (edge.model.targets' names and aliases); unknown
    names raise a one-line error."""
    try:
        return get_target(fmt).format
    except SpireEdgeError:
        raise SidecarError(f"unknown model format {fmt!r}; expected one of {', '.join(TARGETS)}") from None


def find_artifacts(root: str | Path | None = None) -> list[tuple[Path, ModelMeta]]:
    """Every artifact folder (one with a valid metadata.json) under `root` (default: export_roots()).

    Folders whose sidecar is unreadable are skipped here; loading one directly reports why.
    """
    roots = [Path(root)] if root is not None else export_roots()
    found: list[tuple[Path, ModelMeta]] = []
    for r in roots:
        if not r.is_dir():
            continue
        for side in sorted(r.rglob(SIDECAR_NAME)):
            try:
                found.append((side.parent, read_sidecar(side.parent, verify=False)))
            except SidecarError:
                continue
    return found


def default_artifact(fmt: str, precision: str | None = None, root: str | Path | None = None) -> Path:
    """The artifact folder to run for a format (prefers int8, then fp32, then fp16 when not asked).

    For 'torch' (a training checkpoint, run by spire's torch backend) it is the shipped checkpoint.
    """
    f = normalize_format(fmt)
    if f == "torch" and root is None:  # the checkpoint lives in <weights>/best.pt, not in export/
        return default_checkpoint()
    cands = [(p, m) for p, m in find_artifacts(root) if m.format == f]
    if precision is None:
        preferred = _measured_default(f, cands)
        if preferred is not None:
            return preferred
    order = (precision,) if precision else PRECISION_ORDER
    for prec in order:
        hit = [p for p, m in cands if m.precision == prec]
        if hit:
            return hit[0]
    where = str(root) if root is not None else " or ".join(str(r) for r in export_roots())
    want = f"{precision} " if precision else ""
    if from_package() and (root is None or Path(root).is_relative_to(LADDER_FILE.parent)):
        raise SidecarError(not_in_wheel(f"a {want}{f} artifact", "weights/shipped/export/"))
    raise SidecarError(f"{where}: no {want}{f} artifact found; export one with "
                       f"`python -m export --target {f}{' --precision ' + precision if precision else ''}` "
                       "or pass --model PATH")


def _measured_default(fmt: str, cands: list[tuple[Path, ModelMeta]]) -> Path | None:
    """The candidate named by a `defaults.json` beside it (first root that has one), if any."""
    import json
    for parent in dict.fromkeys(p.parent for p, _ in cands):
        f = parent / DEFAULTS_NAME
        if not f.is_file():
            continue
        try:
            name = json.loads(f.read_text()).get(fmt)
        except (OSError, ValueError, AttributeError):
            continue
        for p, _ in cands:
            if p.parent == parent and p.name == name:
                return p
    return None
