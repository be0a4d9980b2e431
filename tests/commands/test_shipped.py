"""The committed models and their exports: every artifact loads through `edge` and finds what torch finds.

Why: `weights/shipped/` is what every zero-argument command runs (the ladder's default rung); the
other rungs of the ladder (weights/ladder.json) are one argument away (`--model spire-m`). These tests read it as a user
would (Predictor on whole validation frames, tiled), and compare with the torch checkpoint through
the same read/preprocess/tile/decode path: FP32 exports give the torch points, FP16/INT8 exports
agree on most frames (their fidelity.json says by how much on the whole split), and every sidecar
names the committed checkpoint's sha256.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.model.sidecar import file_sha256, read_sidecar
from edge.model.zoo import find_artifacts
from tests.conftest import shared

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "weights" / "shipped"
_LADDER = json.loads((REPO / "weights" / "ladder.json").read_text()) if (REPO / "weights" / "ladder.json").is_file() else {}
SETS = [SHIPPED] + [REPO / "weights" / f for f in sorted(set((_LADDER.get("models") or {}).values())) if f != "shipped"]
VAL = shared("data", "sirst-v2")
RUNNABLE = {"onnx": "onnxruntime", "openvino": "openvino", "tflite": "tflite"}
ARTIFACTS = [(root, p, m) for root in SETS for p, m in find_artifacts(root / "export") if m.format in RUNNABLE]


def _val_frames(n: int = 4) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The first `n` target-bearing frames of sirst-v2/val (a few sizes, tiled at 512)."""
    from edge.datasets import open_dataset

    ds = open_dataset(VAL, split="val")
    out = []
    for i in range(len(ds)):
        s = ds[i]
        if len(s.points):
            out.append((s.name, s.frame, np.asarray(s.points, np.float32)))
        if len(out) == n:
            break
    return out


@pytest.fixture(scope="module")
def frames():
    if not VAL.is_dir():
        pytest.skip(f"{VAL}: the shared validation frames are not there (they belong in ../shared beside the checkout)")
    return _val_frames()


@pytest.fixture(scope="module")
def torch_points(frames):
    """Per model set, the torch checkpoint's points on `frames` (computed once per set)."""
    from edge.codecs import build_codec
    from edge.inference.preprocess import PreprocessConfig
    from export.common import load_source
    from spire.torch_backend import torch_predictor

    cache: dict[tuple, list] = {}

    def points(root: Path, imgsz: int, mode: str = "auto") -> list:
        if (root, imgsz, mode) not in cache:  # the same path the artifact takes: tiles, or native whole frames
            src = load_source(root / "best.pt", imgsz=imgsz)
            pred = torch_predictor(src.model, PreprocessConfig.from_dict(src.preprocess), build_codec(dict(src.codec)),
                                   mode=mode, imgsz=imgsz, threads=1)
            cache[root, imgsz, mode] = [pred.predict(f, name)[0] for name, f, _ in frames]
        return cache[root, imgsz, mode]
    return points


@pytest.mark.parametrize("root", SETS, ids=[r.name for r in SETS])
def test_shipped_set_is_complete_and_consistent(root):
    meta = read_sidecar(root / "best.pt")  # verifies best.pt against its sha256
    assert (root / "log.csv").is_file()
    have = {(m.format, m.precision) for _, m in find_artifacts(root / "export")}
    for fmt in ("onnx", "openvino", "tflite"):
        assert {(fmt, "fp32"), (fmt, "int8")} <= have, f"shipped {fmt} fp32+int8 missing: {sorted(have)}"
    assert ("tensorrt", "fp32") in have
    sha = file_sha256(root / "best.pt")
    for folder, m in find_artifacts(root / "export"):
        read_sidecar(folder)  # model file matches its sidecar
        assert m.source_checkpoint and m.source_checkpoint.get("sha256") == sha, folder.name
        assert m.arch == meta.arch and m.preprocess["norm"] == meta.preprocess["norm"], folder.name
        if m.precision == "int8":  # INT8 decodes at its own validation operating point (fidelity report)
            fid = json.loads((folder / "fidelity.json").read_text())
            assert {"fp32_f1", "int8_f1", "identical_frames", "mean_shift_px"} <= set(fid)
            op = (m.extra or {}).get("operating_point")
            if op:  # a threshold set for the whole folder on validation, replacing the report's own pick
                assert op["replaces"] == pytest.approx(fid["int8_thr"]) and m.codec["thr"] == op["thr"], folder.name
            else:
                assert m.codec["thr"] == pytest.approx(fid["int8_thr"]), folder.name
        else:
            assert m.codec["thr"] == pytest.approx(meta.codec["thr"]), folder.name


@pytest.mark.parametrize("root", SETS, ids=[r.name for r in SETS])
def test_plain_commands_rebuild_what_ships(root):
    """`python -m export` / `quantize.ptq` on a shipped checkpoint with no --imgsz build at the size
    its exports have (not its 192 px training crops), and every shipped INT8 artifact keeps exactly
    the FP32 layers and calibration its architecture's recipe names, so the plain PTQ command rebuilds it."""
    from export.common import load_source
    from quantize.ptq import backend_recipe

    src = load_source(root / "best.pt")
    sizes = {m.imgsz for _, m in find_artifacts(root / "export") if m.precision == "fp32"}
    assert sizes == {src.imgsz}
    backend = {"onnx": "onnxruntime"}
    for folder, m in find_artifacts(root / "export"):
        if m.precision == "int8":
            scope, method = backend_recipe(src, backend.get(m.format, m.format), None, None)
            assert list(scope) == list(m.extra["ignored_scope"]), folder.name
            assert m.extra.get("calibrate_method") in (None, method), folder.name


def test_deployed_size_is_the_contract_of_that_file_not_of_the_working_directory(tmp_path, monkeypatch):
    """A schema-1 checkpoint reads its deployed size from the exports of that very file in its own
    folder; another file in the folder, or exports under ./runs/export of the cwd, give nothing."""
    import json
    import shutil

    from edge.model.contract import deployed_size

    meta = json.loads((SHIPPED / "metadata.json").read_text())
    assert meta["schema_version"] == 2 and deployed_size(meta, SHIPPED / "best.pt") == 512  # stated
    meta["schema_version"] = 1  # the old shape, whose record names no export size: only its exports can tell
    meta["training"]["validation"] = "native resolution, padded to 32"
    assert deployed_size(meta, SHIPPED / "best.pt") == 512
    shutil.copy(SHIPPED / "best.pt", tmp_path / "best.pt")
    assert deployed_size(meta, tmp_path / "best.pt") is None  # no exports beside it
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    shutil.copytree(SHIPPED / "export", tmp_path / "runs" / "export")
    assert deployed_size(meta, tmp_path / "best.pt") is None  # the cwd's exports are not the model's contract
    shutil.copytree(SHIPPED / "export", tmp_path / "export")
    (tmp_path / "other.pth").write_bytes(b"not the described checkpoint")
    assert deployed_size(meta, tmp_path / "best.pt") == 512 and deployed_size(meta, tmp_path / "other.pth") is None


@pytest.mark.parametrize("root,folder,meta", ARTIFACTS, ids=[f"{r.name}/{p.name}" for r, p, _ in ARTIFACTS])
def test_shipped_artifact_finds_what_torch_finds(root, folder, meta, frames, torch_points):
    from edge.inference.predictor import Predictor

    pred = Predictor(folder, backend=RUNNABLE[meta.format], threads=1)
    same, found_same = 0, 0
    for (name, f, gt), ref in zip(frames, torch_points(root, meta.imgsz, "native" if pred.mode == "native" else
                                                         "auto" if pred.fits_native else "static")):
        got, _ = pred.predict(f, name)
        if len(got) == len(ref) and (len(ref) == 0 or _max_pair_dist(got.xy, ref.xy) <= 0.5):
            same += 1
        found_same += _found(got.xy, gt) == _found(ref.xy, gt)
    if meta.precision == "fp32":
        assert same == len(frames), f"{folder.name}: FP32 points differ from torch on {len(frames) - same} frame(s)"
    else:  # FP16 / INT8: the same targets found (points may shift by a fraction of a pixel)
        assert found_same >= len(frames) - 1, f"{folder.name}: finds torch's targets on {found_same}/{len(frames)}"


def _found(pred_xy: np.ndarray, gt: np.ndarray, max_dist: float = 5.0) -> tuple[bool, ...]:
    """Which ground-truth targets have a prediction within `max_dist` px."""
    if len(pred_xy) == 0:
        return tuple(False for _ in gt)
    d = np.linalg.norm(gt[:, None, :] - pred_xy[None, :, :], axis=-1)
    return tuple(bool(v) for v in (d.min(axis=1) <= max_dist))


def _max_pair_dist(a: np.ndarray, b: np.ndarray) -> float:
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    return float(max(d.min(axis=1).max(), d.min(axis=0).max()))
