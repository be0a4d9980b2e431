"""quantize.release: the rung's settings as data, every format of the target table, an atomic swap."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantize import release as rel


def _run(tmp: Path) -> Path:
    run = tmp / "run"
    run.mkdir()
    for f in rel.RUN_FILES:
        (run / f).write_text(f)
    return run


def _data(tmp: Path) -> Path:
    for d in ("sirst-v2",):
        (tmp / "data" / d).mkdir(parents=True)
    return tmp / "data"


def test_settings_refuse_unknown_keys_with_the_file_named(tmp_path):
    p = tmp_path / "release.json"
    p.write_text(json.dumps({"thr": 0.8, "thr_rul": "typo"}))
    with pytest.raises(rel.ReleaseError, match=r"release.json: unknown key\(s\) thr_rul"):
        rel.ReleaseSettings.load(p)
    p.write_text(json.dumps({"thr": 0.8, "fit": "pad"}))
    assert rel.ReleaseSettings.load(p).thr == 0.8


def test_release_runs_every_format_and_recipe_then_swaps_in(tmp_path, monkeypatch):
    cmds = []

    def step(cmd, what, log):
        cmds.append(cmd)
        if "export" in cmd and "--out" in cmd:
            Path(cmd[cmd.index("--out") + 1]).mkdir(exist_ok=True)
        return True

    monkeypatch.setattr(rel, "_step", step)
    dst = tmp_path / "weights" / "rung"
    dst.mkdir(parents=True)
    (dst / "MODEL_CARD.md").write_text("card")
    (dst / "lineage").mkdir()
    (dst / "lineage" / "stage1_log.csv").write_text("history")
    (dst / "old.txt").write_text("old set")
    rel.release(_run(tmp_path), dst, rel.ReleaseSettings(thr=0.7, thr_rule="why", fit="pad"), _data(tmp_path))
    exported = {(c[c.index("--target") + 1], c[c.index("--precision") + 1]) for c in cmds if "--target" in c}
    assert {(t.format, "fp32") for t in rel.TARGETS.values() if t.exporter} | {("tflite", "fp16")} == exported
    assert {c[c.index("--backend") + 1] for c in cmds if "quantize.ptq" in c} == set(rel.RECIPES)
    picks = [c for c in cmds if "quantize.pick" in c]
    assert len(picks) == 2 and "0.7" in picks[0] and cmds.index(picks[0]) < min(
        i for i, c in enumerate(cmds) if "quantize.ptq" in c)  # threshold set before PTQ scores it
    assert (dst / "MODEL_CARD.md").read_text() == "card" and not (dst / "old.txt").exists()
    assert (dst / "lineage" / "stage1_log.csv").read_text() == "history"  # the rung's history stays
    assert json.loads((dst / "release.json").read_text())["thr"] == 0.7


def test_a_failed_required_step_leaves_the_rung_as_it_was(tmp_path, monkeypatch):
    monkeypatch.setattr(rel, "_step", lambda cmd, what, log: not ("quantize.ptq" in cmd and "openvino" in cmd))
    dst = tmp_path / "weights" / "rung"
    dst.mkdir(parents=True)
    (dst / "best.pt").write_text("the shipped one")
    with pytest.raises(rel.ReleaseError, match="int8 openvino failed"):
        rel.release(_run(tmp_path), dst, rel.ReleaseSettings(), _data(tmp_path))
    assert (dst / "best.pt").read_text() == "the shipped one"
    assert [p.name for p in dst.parent.iterdir() if p.name.startswith(".")] == []  # no staged folder left


def test_missing_run_files_are_one_line(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(rel.ReleaseError, match="pass a finished spire.train run"):
        rel.release(tmp_path / "run", tmp_path / "dst", rel.ReleaseSettings(), _data(tmp_path))


def test_several_calibration_roots_go_to_every_ptq_step_and_each_must_exist(tmp_path, monkeypatch):
    cmds = []
    monkeypatch.setattr(rel, "_step", lambda cmd, what, log: cmds.append(cmd) or True)
    data, run = _data(tmp_path), _run(tmp_path)
    settings = rel.ReleaseSettings(calib_data=["sirst-v2", "ir-drone"])
    with pytest.raises(rel.ReleaseError, match="ir-drone: no such dataset"):
        rel.release(run, tmp_path / "dst", settings, data)
    (data / "ir-drone").mkdir()
    rel.release(run, tmp_path / "dst", settings, data)
    for c in (c for c in cmds if "quantize.ptq" in c):
        i = c.index("--data")
        assert c[i + 1:i + 3] == [str(data / "sirst-v2"), str(data / "ir-drone")] and c[i + 3] == "--split"
