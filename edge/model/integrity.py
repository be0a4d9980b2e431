"""Every file an artifact needs, hashed at export and checked on load, each error naming the file.

Why: a model is more than its main file. An OpenVINO IR is `.xml` + `.bin`, an ONNX model may keep
its weights in external data files, a TensorRT artifact is an ONNX + the recipe that builds the
engine on the device, and the engine itself once built. The sidecar's `model_sha256` covered the
main file only, so a missing or truncated `.bin` got past the sidecar and crashed the runtime with
a long traceback. The sidecar now carries `files` ({relative name: sha256}) for every file the
artifact needs, and `verify_artifact` checks all of them before a runtime is touched.

Backward compatible: sidecars written before `files` existed are checked on what they list —
`model_sha256`, and for OpenVINO the `extra.weights_sha256` of the `.bin` — and the files their
format always needs (the `.bin` beside an `.xml`) must at least exist.

TensorRT engines (`.engine` / `.plan`) are built on the device after export: `build_engine.sh`
adds the engine's sha256 to `files` when it builds one. A listed engine that is not there is no
error here (the artifact was copied to a new device and must be rebuilt; the TensorRT backend says
so when it needs one); a listed engine that is there must match.

stdlib only (edge never imports torch; onnx is imported only when an exporter lists ONNX data files).
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

from edge.errors import SidecarError
from edge.model.targets import TARGETS

__all__ = ["ENGINE_SUFFIXES", "needed_files", "onnx_data_files", "hash_files", "verify_artifact", "check_names",
           "check_name", "is_inside_name", "sidecar_names"]

ENGINE_SUFFIXES = (".engine", ".plan")
RECIPE = "build_engine.sh"


def onnx_data_files(path: str | Path) -> list[str]:
    """Names (relative to the model's folder) of the external data files an ONNX model reads.

    Needs the `onnx` package (present wherever models are exported); without it, none are listed.
    """
    try:
        import onnx
        from onnx.external_data_helper import _get_all_tensors
    except ImportError:
        return []
    model = onnx.load(str(path), load_external_data=False)
    names = set()
    for t in _get_all_tensors(model):
        if t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL:
            for kv in t.external_data:
                if kv.key == "location":
                    names.add(str(PurePosixPath(kv.value)))
    return sorted(names)


def needed_files(folder: str | Path, fmt: str, model_file: str) -> list[str]:
    """Every file of an artifact folder that running (or, for TensorRT, building) it needs; model file first."""
    folder = Path(folder)
    names = [model_file]
    if fmt == "openvino" and model_file.endswith(".xml"):
        names.append(Path(model_file).with_suffix(".bin").name)
    if fmt in ("onnx", "tensorrt") and model_file.endswith(".onnx"):
        names += onnx_data_files(folder / model_file)
    if fmt in TARGETS and TARGETS[fmt].engine_recipe:  # TensorRT: the recipe and the engine it built
        if (folder / RECIPE).is_file():
            names.append(RECIPE)
        names += sorted(p.name for s in ENGINE_SUFFIXES for p in folder.glob(f"*{s}") if p.is_file())
    return list(dict.fromkeys(names))


def hash_files(folder: str | Path, names: list[str]) -> dict[str, str]:
    """{name: sha256} of files inside `folder` (one-line error for a missing one)."""
    from edge.model.sidecar import file_sha256

    folder = Path(folder)
    out = {}
    for n in names:
        p = folder / n
        if not p.is_file():
            raise SidecarError(f"{p}: the artifact needs this file but it is not there; re-export the model")
        out[n] = file_sha256(p)
    return out


def is_inside_name(name) -> bool:
    """A relative name that stays inside the artifact folder: no absolute path, no '..', no backslash, no '~'."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name or name.startswith("~"):
        return False
    pp = PurePosixPath(name)
    return not pp.is_absolute() and ".." not in pp.parts and pp.name not in ("", ".")


def check_name(name, where: str, key: str) -> str:
    """THE check for every file name a sidecar holds (`model_file`, `files`, `extra.weights_file`).

    Why one function: `extra.weights_file` was hashed without the check `files` and `model_file`
    got, so a sidecar could make the runtime read (and print the size and hash prefix of) any file
    on the device. Every name the runtime may open goes through here first.
    """
    if not is_inside_name(name):
        raise SidecarError(f"{where}: '{key}' is {name!r}; it must name a file inside the artifact folder "
                           "(no absolute path, no '..'); re-export the model")
    return name


def check_names(files, where: str) -> None:
    """`files` must map names inside the folder (`check_name`) to sha256 hex digests."""
    if not isinstance(files, dict):
        raise SidecarError(f"{where}: 'files' must map file names inside the artifact folder to sha256 hex "
                           "digests; re-export the model")
    for k, v in files.items():
        check_name(k, where, f"files[{k!r}]" if isinstance(k, str) else "files")
        if not (isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)):
            raise SidecarError(f"{where}: 'files' must map file names inside the artifact folder to sha256 hex "
                               f"digests ({k!r} -> {str(v)[:20]!r}); re-export the model")


def sidecar_names(meta) -> dict[str, object]:
    """{key: name} of every file name the sidecar holds, for `check_name`."""
    names = {"model_file": meta.model_file}
    names.update({f"files[{k!r}]": k for k in (getattr(meta, "files", None) or {})})
    extra = meta.extra if isinstance(meta.extra, dict) else {}
    if "weights_file" in extra:
        names["extra.weights_file"] = extra["weights_file"]
    return names


def listed_files(meta) -> dict[str, str]:
    """What a sidecar vouches for: `files`, else (older sidecars) the model file and the OpenVINO .bin."""
    listed = dict(getattr(meta, "files", None) or {})
    listed.setdefault(meta.model_file, meta.model_sha256)
    extra = meta.extra or {}
    if extra.get("weights_file") and isinstance(extra.get("weights_sha256"), str):
        listed.setdefault(check_name(extra["weights_file"], "metadata.json", "extra.weights_file"),
                          extra["weights_sha256"])
    return listed


def verify_artifact(side: Path, meta) -> None:
    """Check that every file the sidecar `side` lists is beside it with its sha256; SidecarError names the file."""
    from edge.model.sidecar import file_sha256

    folder = Path(side).parent
    for key, name in sidecar_names(meta).items():  # (ModelMeta.validate did this; a hand-built meta too)
        check_name(name, str(side), key)
    listed = listed_files(meta)
    if listed.get(meta.model_file) != meta.model_sha256:
        raise SidecarError(f"{side}: 'files' and 'model_sha256' disagree on {meta.model_file}; re-export the model")
    for name, sha in listed.items():
        p = folder / name
        what = "model file" if name == meta.model_file else "file"
        if not p.is_file():
            if Path(name).suffix in ENGINE_SUFFIXES:
                continue  # built on the device; the TensorRT backend asks for a build when it needs one
            raise SidecarError(f"{side}: {what} {name!r} is missing from {folder}; copy the whole artifact "
                               "folder or re-export it")
        digest = file_sha256(p)
        if digest != sha:
            raise SidecarError(f"{side}: sha256 of {name} is {digest[:12]}…, the sidecar says {sha[:12]}… "
                               f"({p.stat().st_size} bytes: truncated, replaced or edited); copy the artifact "
                               "folder again or re-export it so files and metadata.json match")
    for name in needed_files_on_load(meta):
        if name not in listed and not (folder / name).is_file():
            raise SidecarError(f"{side}: file {name!r} is missing from {folder} (a {meta.format} model needs it "
                               f"beside {meta.model_file}); copy the whole artifact folder or re-export it")


def needed_files_on_load(meta) -> list[str]:
    """Companions a format always needs, checked to exist even when an old sidecar does not list them."""
    if meta.format == "openvino" and meta.model_file.endswith(".xml"):
        return [Path(meta.model_file).with_suffix(".bin").name]
    return []
