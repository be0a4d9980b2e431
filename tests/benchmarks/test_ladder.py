"""The model ladder's short names: every command takes `spire-s` for that rung's checkpoint or artifact."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge.model import zoo

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_ladder(tmp_path, monkeypatch):
    """weights/ladder.json naming one rung whose folder holds a real checkpoint and one ONNX export."""
    src = REPO / "weights" / "shipped"
    onnx = [p for p, m in zoo.find_artifacts(src / "export") if m.format == "onnx" and m.precision == "fp32"]
    if not (src / "best.pt").is_file() or not onnx:
        pytest.skip("no committed checkpoint with an FP32 ONNX export in weights/shipped")
    rung = tmp_path / "weights" / "rung-x"
    (rung / "export").mkdir(parents=True)
    shutil.copy(src / "best.pt", rung / "best.pt")
    shutil.copytree(onnx[0], rung / "export" / onnx[0].name)
    ladder = tmp_path / "weights" / "ladder.json"
    ladder.write_text(json.dumps({"default": "spire-x", "models": {"spire-x": "rung-x"}}))
    monkeypatch.setattr(zoo, "LADDER_FILE", ladder)
    return rung, onnx[0].name


def test_names_resolve_to_the_rung_folder_with_either_spelling(fake_ladder):
    rung, _ = fake_ladder
    assert zoo.named_weights("spire-x") == rung and zoo.named_weights("spire_x") == rung
    assert zoo.named_weights("spire-unknown") is None and zoo.named_weights("runs/x/best.pt") is None


def test_a_name_is_a_checkpoint_for_torch_commands_and_an_artifact_for_the_runtime(fake_ladder):
    from spire.models.checkpoint import resolve_checkpoint

    rung, art = fake_ladder
    assert resolve_checkpoint("spire-x") == rung / "best.pt"
    assert zoo.resolve_artifact("spire-x", "onnx") == rung / "export" / art
    with pytest.raises(Exception, match="openvino"):
        zoo.resolve_artifact("spire-x", "openvino")      # that rung has no OpenVINO export: one line says so
    assert zoo.resolve_artifact("some/path", "onnx") == Path("some/path")  # paths pass through


def test_committed_ladder_names_exist_and_the_default_is_the_shipped_folder():
    lad = zoo.ladder()
    if not lad:
        pytest.skip("weights/ladder.json not committed")
    for name, folder in lad["models"].items():
        assert (zoo.LADDER_FILE.parent / folder / "best.pt").is_file(), name
    assert lad["models"][lad["default"]] == "shipped"
