"""A model's deployment contract: the input size it is deployed at, read the same way everywhere.

Why: a checkpoint is trained on small crops (spire-s: 192 px) and deployed at another size (its
exports: 512 px, frames that fit padded to it, larger ones tiled). The deployed size changes
accuracy (the family's SE gate sees the whole input), so exporting, quantising, evaluating or
fine-tuning a model must use it without being told. It used to be stored nowhere and guessed by
hashing the checkpoint and searching export folders, including `./runs/export` of whatever the
current directory was, so the same command gave a 192 px model that found nothing, or scores
that depended on which folders existed.

The contract (sidecar schema 2, `edge.model.sidecar.SCHEMA_VERSION`): a model's `preprocess` (and
`codec.input_size`, `input.shape`) describe the model **as it is deployed**: for an exported
artifact the size of its static input, for a torch checkpoint the size its exports are built and
its frames are run at; the training crop size is `training.imgsz`. How frames that fit are run is
`preprocess.fit`, the decode threshold is `codec.thr`, and why that threshold was chosen is
`extra.operating_point.rule` (a record, never a second threshold).

Older checkpoints (schema 1) stored the crop size there. They are read once through
`upgrade_meta`: the deployed size is that of the FP32 exports of the very same file (matched by
sha256) in the checkpoint's own `export/` folder, else the export size its training validated at
(`--val-fit`: "as edge.run on 512 px exports"); with neither, the contract says "not known" and
callers keep their old behaviour (whole frames, as training validated).

numpy/stdlib only: `edge` never imports torch.
"""
from __future__ import annotations

import copy
from pathlib import Path

DEPLOY_SCHEMA = 2  # the first sidecar schema whose torch `preprocess.imgsz` is the deployed size


def with_input_size(meta: dict, size: int) -> dict:
    """A copy of a sidecar-shaped dict whose preprocess, codec and input/output shapes say `size`."""
    m = copy.deepcopy(dict(meta))
    size = int(size)
    m.setdefault("preprocess", {})["imgsz"] = size
    if isinstance(m.get("codec"), dict):
        m["codec"]["input_size"] = size
    inp, out = m.get("input"), m.get("output")
    if isinstance(inp, dict) and isinstance(inp.get("shape"), list) and len(inp["shape"]) == 4:
        inp["shape"] = [*inp["shape"][:2], size, size]
    if isinstance(out, dict) and isinstance(out.get("shape"), list) and len(out["shape"]) == 4:
        stride = int(out.get("stride") or 4)
        out["shape"] = [*out["shape"][:2], size // stride, size // stride]
    return m


def legacy_export_size(model_file: Path, sha256: str) -> int | None:
    """The input size of the FP32 exports of this very checkpoint in its own `export/` folder.

    Only the checkpoint's own folder is searched (never the current directory), so the answer is a
    property of the model's folder, not of where a command runs.
    """
    from edge.model.sidecar import SIDECAR_NAME, read_sidecar
    from edge.errors import SidecarError

    root = Path(model_file).parent / "export"
    if not root.is_dir():
        return None
    sizes = []
    for side in sorted(root.rglob(SIDECAR_NAME)):
        try:
            m = read_sidecar(side.parent, verify=False)
        except SidecarError:
            continue
        if (m.source_checkpoint or {}).get("sha256") == sha256 and m.precision == "fp32":
            sizes.append(int(m.imgsz))
    return max(set(sizes), key=sizes.count) if sizes else None


def validated_size(meta: dict) -> int | None:
    """The export size a schema-1 run validated at (`spire.train --val-fit`), from its training record."""
    import re

    desc = str((meta.get("training") or {}).get("validation") or "")
    hit = re.search(r"on (\d+) px exports", desc)
    return int(hit.group(1)) if hit else None


def upgrade_meta(meta: dict, model_file: str | Path | None = None) -> tuple[dict, bool]:
    """(meta in the schema-2 shape, whether its deployed size is known).

    Exported artifacts always know it (their static input). A schema-2 torch checkpoint states it.
    A schema-1 torch checkpoint is upgraded from its own exports (`legacy_export_size`); without
    any, its meta is returned as it was and the size is "not known".
    """
    m = copy.deepcopy(dict(meta))
    if m.get("format", "torch") != "torch":
        return m, True
    if int(m.get("schema_version") or 1) >= DEPLOY_SCHEMA:
        return m, True
    size = None
    if model_file is not None and Path(model_file).is_file():
        from edge.model.sidecar import file_sha256

        size = legacy_export_size(Path(model_file), file_sha256(model_file))
    if size is None:  # trained with --val-fit: its validation ran "as edge.run on N px exports"
        size = validated_size(m)
    if size is None:
        return m, False
    m = with_input_size(m, size)
    m["schema_version"] = DEPLOY_SCHEMA
    return m, True


def deployed_size(meta: dict, model_file: str | Path | None = None) -> int | None:
    """The size a model is deployed at (None: a schema-1 checkpoint without exports)."""
    m, known = upgrade_meta(meta, model_file)
    return int(m["preprocess"]["imgsz"]) if known else None
