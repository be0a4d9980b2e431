"""Model metadata sidecars: the `metadata.json` beside every checkpoint and exported artifact.

Why: the device should need nothing but the model path. Everything needed to run a model
correctly (input size and layout, channels, normalisation, codec and decode parameters,
precision) and to trust it (source checkpoint hash, calibration, toolchain versions) travels in
one JSON file in the artifact's folder. A sidecar that does not describe the file beside it is
refused here, once, with a one-line message, instead of silently producing wrong points.

Layout rule (docs/ARCHITECTURE.md): each artifact sits in its own folder next to `metadata.json`;
the user passes the folder or the model file inside it. `model_sha256` is the hash of `model_file`
(for OpenVINO the `.xml`, for TensorRT the `.onnx` the engine is built from); `files` hashes every
file the artifact needs (the `.bin`, ONNX external data, the engine recipe and a built engine),
and all of them are checked on load (edge.model.integrity).

numpy/stdlib only: `edge` never imports torch.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata as _md
from pathlib import Path
from typing import Any

from edge.errors import SidecarError
from edge.io import atomic_write
from edge.model.targets import TARGETS

SIDECAR_NAME = "metadata.json"
SCHEMA_VERSION = 2  # 2: a torch checkpoint's preprocess is its deployed input (edge.model.contract)
READABLE_SCHEMAS = (1, 2)  # 1 reads as 2 (edge.model.contract.upgrade_meta); nothing else changed
PRECISIONS = ("fp32", "fp16", "int8")
REQUIRED_KEYS = ("schema_version", "arch", "format", "model_file", "model_sha256", "precision",
                 "input", "output", "preprocess", "codec")
# Distributions whose versions are recorded in every sidecar (missing ones are left out).
TOOLCHAIN = ("spire-edge", "torch", "numpy", "opencv-python-headless", "opencv-python", "onnx",
             "onnxruntime", "onnxscript", "openvino", "nncf", "litert-torch", "ai-edge-litert",
             "torchao", "tflite-runtime", "tensorrt", "polygraphy", "onnx-graphsurgeon")
_EXPORT_HINT = "export it with `python -m export --weights CHECKPOINT --target onnx|openvino|tflite|tensorrt`"


def now_iso() -> str:
    """Current UTC time, ISO 8601 with seconds (the `created_at` field)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def toolchain_versions() -> dict[str, str]:
    """Installed versions of the packages that shape an artifact, read without importing them."""
    out = {}
    for dist in TOOLCHAIN:
        try:
            out[dist] = _md.version(dist)
        except _md.PackageNotFoundError:
            continue
    return out


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (cached per path, size and mtime, so a reload is free)."""
    p = Path(path)
    st = p.stat()
    return _sha256_cached(str(p.resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _need(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise SidecarError(f"{where}: {msg}")


@dataclass(frozen=True)
class ModelMeta:
    """One artifact's metadata (schema_version 2; field meanings in docs/ARCHITECTURE.md and edge.model.contract).

    `input` is {name, shape [1,C,S,S], layout 'NCHW', dtype}; `output` is {name, shape
    [1,1,S/stride,S/stride], stride}; `preprocess` is PreprocessConfig.to_dict(); `codec` is
    codec.to_dict(); `calibration` is {source, frames} or None; `source_checkpoint` is
    {path, sha256} or None. `training` and `extra` are free-form. `files` is {name: sha256} of
    every file the artifact needs, model file included (edge.model.integrity; {} in older sidecars).
    """

    arch: str
    format: str
    model_file: str
    model_sha256: str
    precision: str
    input: dict
    output: dict
    preprocess: dict
    codec: dict
    arch_kwargs: dict = field(default_factory=dict)
    calibration: dict | None = None
    source_checkpoint: dict | None = None
    versions: dict = field(default_factory=toolchain_versions)
    created_at: str = field(default_factory=now_iso)
    training: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        self.validate("ModelMeta")

    # ---- validation -------------------------------------------------------------------------
    def validate(self, where: str) -> None:
        """Check types and the geometry rules; `where` names the file in the error message."""
        _need(self.schema_version in READABLE_SCHEMAS, where,
              f"schema_version {self.schema_version!r} is not one of {READABLE_SCHEMAS}; re-export the model "
              "with this spire-edge or upgrade spire-edge (`pip install -U spire-edge`)")
        _need(isinstance(self.arch, str) and bool(self.arch), where, "'arch' must be a model name")
        _need(self.format in TARGETS, where, f"'format' is {self.format!r}; expected one of {', '.join(TARGETS)}")
        _need(self.precision in PRECISIONS, where,
              f"'precision' is {self.precision!r}; expected one of {', '.join(PRECISIONS)}")
        _need(isinstance(self.model_sha256, str) and len(self.model_sha256) == 64, where,
              "'model_sha256' must be a 64-hex-digit sha256")
        for key in ("input", "output", "preprocess", "codec", "arch_kwargs", "versions", "training", "extra"):
            _need(isinstance(getattr(self, key), dict), where, f"'{key}' must be a JSON object")
        inp, out = self.input, self.output
        _need(all(k in inp for k in ("name", "shape", "layout", "dtype")), where,
              "'input' needs name, shape, layout and dtype")
        shape = inp["shape"]
        _need(isinstance(shape, list) and len(shape) == 4 and all(isinstance(v, int) and v > 0 for v in shape),
              where, f"'input.shape' is {shape!r}; expected static [1, C, S, S]")
        _need(shape[0] == 1 and shape[1] in (1, 3) and shape[2] == shape[3], where,
              f"'input.shape' is {shape!r}; expected [1, C, S, S] with C 1 or 3")
        _need(inp["layout"] == "NCHW", where, f"'input.layout' is {inp['layout']!r}; only 'NCHW' is supported")
        _need(all(k in out for k in ("name", "shape", "stride")), where, "'output' needs name, shape and stride")
        stride, s = out["stride"], shape[2]
        _need(isinstance(stride, int) and stride > 0 and s % stride == 0, where,
              f"'output.stride' {stride!r} does not divide the input size {s}")
        _need(list(out["shape"]) == [1, 1, s // stride, s // stride], where,
              f"'output.shape' is {out['shape']!r}; expected [1, 1, {s // stride}, {s // stride}] for input {s}")
        pre_sz = self.preprocess.get("imgsz", s)
        _need(pre_sz == s, where, f"'preprocess.imgsz' {pre_sz} differs from the input size {s}")
        pre_ch = self.preprocess.get("channels", shape[1])
        _need(pre_ch == shape[1], where, f"'preprocess.channels' {pre_ch} differs from the input channels {shape[1]}")
        from edge.model.integrity import check_name, check_names, sidecar_names

        check_names(self.files, where)
        for key, name in sidecar_names(self).items():  # every name a sidecar holds: one check (edge.model.integrity)
            check_name(name, where, key)
        from edge.codecs import CODECS  # (imports the registered codecs)

        _need(self.codec.get("type") in CODECS, where, f"'codec.type' is {self.codec.get('type')!r}; expected one of "
              f"{', '.join(sorted(CODECS))}; re-export the model")
        for key, need in (("calibration", ("source", "frames")), ("source_checkpoint", ("path", "sha256"))):
            v = getattr(self, key)
            _need(v is None or (isinstance(v, dict) and all(k in v for k in need)), where,
                  f"'{key}' must be null or an object with {' and '.join(need)}")
        from edge.model.sidecar_values import check_values

        check_values(self, where)  # the numbers and names in preprocess/codec, with the CLI's rules

    # ---- conversions ------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict, source: str | Path = "metadata.json") -> "ModelMeta":
        """Build and validate from a parsed sidecar; errors name `source`."""
        where = str(source)
        _need(isinstance(d, dict), where, "not a JSON object; re-export the model")
        ver = d.get("schema_version")
        _need(ver in READABLE_SCHEMAS, where,
              f"schema_version {ver!r} is not one of {READABLE_SCHEMAS}; re-export the model with this "
              "spire-edge or upgrade spire-edge (`pip install -U spire-edge`)")
        missing = [k for k in REQUIRED_KEYS if k not in d]
        _need(not missing, where, f"missing key(s) {', '.join(missing)}; re-export the model")
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: copy.deepcopy(v) for k, v in d.items() if k in names}
        unknown = sorted(set(d) - names)
        if unknown:  # keep, never drop, keys written by a newer minor version
            kw["extra"] = {**kw.get("extra", {}), **{k: copy.deepcopy(d[k]) for k in unknown}}
        for k in ("arch_kwargs", "versions", "training", "extra", "files"):
            if kw.get(k) is None:
                kw[k] = {}
        kw.setdefault("created_at", "")
        obj = cls.__new__(cls)  # bypass __post_init__ so errors name `source`, not "ModelMeta"
        for f in dataclasses.fields(cls):
            val = kw[f.name] if f.name in kw else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
            object.__setattr__(obj, f.name, val)
        obj.validate(where)
        return obj

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (a deep copy)."""
        return copy.deepcopy(dataclasses.asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def derive(self, **changes: Any) -> "ModelMeta":
        """A copy for a new artifact: fresh `created_at` and `versions` unless given."""
        changes.setdefault("created_at", now_iso())
        changes.setdefault("versions", toolchain_versions())
        return dataclasses.replace(self, **changes)

    # ---- convenience ------------------------------------------------------------------------
    @property
    def imgsz(self) -> int:
        return int(self.input["shape"][2])

    @property
    def channels(self) -> int:
        return int(self.input["shape"][1])

    @property
    def stride(self) -> int:
        return int(self.output["stride"])

    @property
    def input_name(self) -> str:
        return str(self.input["name"])

    @property
    def output_name(self) -> str:
        return str(self.output["name"])

    def preprocess_config(self):
        """The runtime's `edge.inference.preprocess.PreprocessConfig` for this model."""
        from edge.inference.preprocess import PreprocessConfig
        return PreprocessConfig.from_dict(self.preprocess)

    def build_codec(self):
        """The decoder (`edge.codecs` codec) this model was trained and exported with.

        (Named build_codec because `codec` is the sidecar's dict field.)
        """
        try:
            from edge.codecs import build_codec
        except ImportError:  # registry may live only in base.py
            from edge.codecs.base import build_codec
        return build_codec(self.codec)


def io_specs(imgsz: int, channels: int, stride: int = 4, input_name: str = "images",
             output_name: str = "heatmap", dtype: str = "float32") -> tuple[dict, dict]:
    """The `input` and `output` sidecar entries for a static (1, C, S, S) -> (1, 1, S/s, S/s) model."""
    inp = {"name": input_name, "shape": [1, int(channels), int(imgsz), int(imgsz)], "layout": "NCHW", "dtype": dtype}
    out = {"name": output_name, "shape": [1, 1, int(imgsz) // stride, int(imgsz) // stride], "stride": int(stride)}
    return inp, out


def find_sidecar(model_path: str | Path) -> Path:
    """Path of the `metadata.json` for a model folder or a model file inside one."""
    p = Path(model_path)
    if not p.exists():
        raise SidecarError(f"{p}: no such model file or folder; pass an exported artifact folder "
                           f"(e.g. runs/export/hrpe_512_fp32_onnx) or {_EXPORT_HINT}")
    folder = p if p.is_dir() else p.parent
    side = folder / SIDECAR_NAME
    if not side.is_file():
        raise SidecarError(f"{p}: no {SIDECAR_NAME} beside the model; {_EXPORT_HINT}")
    return side


def _check_passed_file(p: Path, meta: ModelMeta, side: Path) -> None:
    """A file passed by the user must be the sidecar's model (or one of its companion files)."""
    if p.is_dir() or p.name == meta.model_file or p.name == SIDECAR_NAME:
        return
    stem = Path(meta.model_file).stem
    if p.stem == stem and p.suffix in TARGETS[meta.format].companions:  # files a user may pass instead
        return
    raise SidecarError(f"{p}: {side} describes {meta.model_file!r}, not {p.name!r}; pass the artifact "
                       "folder, or re-export so each model has its own folder and metadata.json")


def read_sidecar(model_path: str | Path, verify: bool = True) -> ModelMeta:
    """Read, validate and (verify=True) check the model hash for a model folder or file."""
    p = Path(model_path)
    side = find_sidecar(p)
    try:
        d = json.loads(side.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SidecarError(f"{side}: not valid JSON ({e.msg if hasattr(e, 'msg') else e}); re-export the model") from None
    meta = ModelMeta.from_dict(d, source=side)
    _check_passed_file(p, meta, side)
    if verify:  # every file the artifact needs (edge.model.integrity), each error naming the file
        from edge.model.integrity import verify_artifact

        verify_artifact(side, meta)
    return meta


def sidecar_describing(model_file: str | Path) -> ModelMeta | None:
    """The metadata.json beside `model_file` when it describes that very file, else None (no error).

    Why: a checkpoint carries the meta it was trained with, but its sidecar is what the runtime
    reads (a decode threshold chosen after training, say); evaluating or exporting the checkpoint
    must use the same values.
    """
    p = Path(model_file)
    if not p.is_file():
        return None
    try:
        meta = read_sidecar(p, verify=False)
    except SidecarError:
        return None
    return meta if meta.model_file == p.name else None


def write_sidecar(folder: str | Path, meta: ModelMeta) -> Path:
    """Write `folder/metadata.json` atomically (temp file + os.replace); returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta.validate(str(folder / SIDECAR_NAME))
    return atomic_write(folder / SIDECAR_NAME, meta.to_json())
