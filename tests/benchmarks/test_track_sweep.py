"""benchmarks.track --sweep-thr: the operating point is chosen by its rule, stored in sidecars that
still load, and used by `edge.run --track` unless --conf / --tracker say otherwise."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.track_data import ClipData
from benchmarks.track_sweep import MISS_KINDS, SweepConfig, choose, classify_misses, sweep_rows, tracker_grid, \
    tracking_entry
from edge.tracking.track_settings import track_settings, tracking_entry as stored_entry
from edge.tracking.tracker import TrackerConfig

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "weights" / "shipped"


def _row(thr, recall, fppi, f1=0.5, m=3, n=5, b=0.0):
    return {"kind": "tracks", "thr": thr, "recall": recall, "precision": 0.9, "f1": f1, "fppi": fppi,
            "birth_hits": m, "birth_window": n, "birth_score": b, "merge_px": 0.0}


def test_choose_maximises_recall_within_the_false_point_budget():
    rows = [_row(0.85, 0.80, 0.010), _row(0.5, 0.90, 0.030), _row(0.6, 0.86, 0.012, m=2, n=3),
            _row(0.6, 0.86, 0.011, f1=0.6, m=3, n=4), _row(0.7, 0.84, 0.009)]
    best = choose(rows, 0.012)
    assert (best["thr"], best["birth_hits"], best["birth_window"]) == (0.6, 3, 4)  # recall tie: higher F1
    assert choose(rows, 0.001) is None
    e = tracking_entry(best, TrackerConfig(), "rule text")
    assert e["thr"] == 0.6 and e["tracker"] == {"birth_window": 4} and e["rule"] == "rule text"


def test_grid_skips_birth_floors_at_or_below_the_threshold():
    sc = SweepConfig(thresholds=(0.5,), mn=((2, 3),), birth=(0.0, 0.4, 0.5, 0.7), merge=(0.0,))
    assert [c.birth_score for c in tracker_grid(sc, 0.5, TrackerConfig())] == [0.0, 0.7]
    assert SweepConfig.parse("0.85,0.5", "2/3,4/6", "0,0.7", "0,20").mn == ((2, 3), (4, 6))
    assert SweepConfig.parse(None, None, None, "0,20").merge == (0.0, 20.0)


def _clip(tmp_path, n=30):
    """One synthetic clip: a target moving right, a faint stretch (score 0.3) and two-frame clutter."""
    rng = np.random.default_rng(0)
    gt = [np.array([[20.0 + 2 * i, 40.0]], np.float32) for i in range(n)]
    xy, sc = [], []
    for i, g in enumerate(gt):
        pts, s = [g[0] + rng.normal(0, 0.3, 2)], [0.9 if i < 10 or i >= 20 else 0.3]
        if i % 4 < 2:  # clutter that stays two frames: 2 of 3 confirms it unless births need 0.85
            pts.append(np.array([100.0 + 10 * (i // 4), 150.0]) + rng.normal(0, 0.3, 2))
            s.append(0.4)
        xy.append(np.array(pts, np.float32))
        sc.append(np.array(s, np.float32))
    labels = tmp_path / "labels"
    labels.mkdir(exist_ok=True)
    (labels / "c.csv").write_text("frame,cx,cy,w,h,cls\n" + "".join(
        f"{i},{g[0, 0]},{g[0, 1]},4,4,drone\n" for i, g in enumerate(gt)))
    return ClipData("c", np.arange(n), gt, xy, sc, np.zeros((n, 2)), np.zeros(n), (240, 320))


def test_sweep_rows_are_filters_of_one_decode_and_tracks_bridge_a_faint_stretch(tmp_path):
    clip = _clip(tmp_path)
    sc = SweepConfig(thresholds=(0.85, 0.25), mn=((2, 3),), birth=(0.0, 0.85), merge=(0.0,))
    frame_rows, track_rows = sweep_rows([clip], sc, TrackerConfig())
    assert frame_rows[0]["recall"] == pytest.approx(20 / 30) and frame_rows[0]["fppi"] == 0
    assert frame_rows[1]["recall"] == 1.0 and frame_rows[1]["fp"] == 16
    hyst = [r for r in track_rows if r["thr"] == 0.25 and r["birth_score"] == 0.85][0]
    assert hyst["recall"] > frame_rows[0]["recall"] and hyst["fppi"] == 0  # continued through, no clutter born
    best = choose(track_rows, frame_rows[0]["fppi"])
    assert best["thr"] == 0.25 and best["birth_score"] == 0.85
    res = __import__("benchmarks.track", fromlist=["run_tracker"]).run_tracker(
        [clip], TrackerConfig(birth_hits=2, birth_window=3), 0.85)[0]
    kinds = classify_misses([clip], res, 0.85, tmp_path, 0.05)
    assert set(kinds) == set(MISS_KINDS) and kinds["below_op_thr"] == 10 and kinds["lost_at_birth"] == 1


def _copy_shipped_openvino(tmp_path) -> Path:
    ship = tmp_path / "shipped"
    (ship / "export").mkdir(parents=True)
    shutil.copy(SHIPPED / "metadata.json", ship / "metadata.json")
    art = SHIPPED / "export" / "spire_s_512_int8_openvino_model"
    shutil.copytree(art, ship / "export" / art.name)
    return ship / "export" / art.name


def test_written_entry_keeps_sidecars_loading_and_drives_settings(tmp_path):
    from edge.model.sidecar import read_sidecar
    from quantize.pick import set_tracking_point

    art = _copy_shipped_openvino(tmp_path)
    entry = {"thr": 0.6, "tracker": {"birth_hits": 2, "birth_window": 3}, "rule": "test rule"}
    sides = set_tracking_point(art.parent, entry)
    assert len(sides) == 2
    read_sidecar(art)  # verifies every model file's hash: editing the JSON keeps it loading
    assert json.loads((art / "metadata.json").read_text())["extra"]["operating_point"]["tracking"] == entry
    assert stored_entry(art) == entry
    s = track_settings(stored_entry(art), None, [])
    assert s.conf == 0.6 and (s.config.birth_hits, s.config.birth_window) == (2, 3) and "operating point" in s.source
    s = track_settings(stored_entry(art), 0.9, ["birth_hits=3"])
    assert s.conf == 0.9 and (s.config.birth_hits, s.config.birth_window) == (3, 3) and "--conf" in s.source
    s = track_settings(None, None, [])
    assert s.conf is None and s.config == TrackerConfig()


def test_shipped_sidecars_agree_on_the_tracking_point():
    """Every shipped sidecar carries the same tracking entry (or none yet)."""
    sides = [SHIPPED / "metadata.json", *sorted((SHIPPED / "export").glob("*/metadata.json"))]
    entries = [json.loads(p.read_text()).get("extra", {}).get("operating_point", {}).get("tracking") for p in sides]
    assert all(e == entries[0] for e in entries)
    if entries[0] is not None:
        assert 0 < entries[0]["thr"] <= 1 and entries[0]["rule"]
        TrackerConfig.from_pairs([f"{k}={v}" for k, v in entries[0]["tracker"].items()])


def test_edge_run_track_uses_the_stored_point_unless_conf(tmp_path, capsys):
    from edge import run as edge_run

    art = _copy_shipped_openvino(tmp_path)
    from quantize.pick import set_tracking_point

    set_tracking_point(art.parent, {"thr": 0.6, "tracker": {"birth_hits": 2, "birth_window": 3}, "rule": "r"})
    base = ["--model", str(art), "--backend", "openvino", "--track", "--frames", "6", "--quiet", "--warmup", "0"]
    assert edge_run.main([*base, "--save", str(tmp_path / "a")]) == 0
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert s["conf"] == 0.6 and s["tracker"]["config"]["birth_hits"] == 2
    assert "tracking operating point" in capsys.readouterr().err
    assert edge_run.main([*base, "--conf", "0.85", "--tracker", "birth_hits=3", "--save", str(tmp_path / "b")]) == 0
    s = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert s["conf"] == 0.85 and s["tracker"]["config"]["birth_hits"] == 3 and "--conf" in s["tracker"]["settings"]


def test_a_new_per_frame_threshold_keeps_the_tracking_point(tmp_path):
    from quantize.pick import set_operating_point, set_tracking_point

    art = _copy_shipped_openvino(tmp_path)
    entry = {"thr": 0.5, "tracker": {}, "rule": "r"}
    set_tracking_point(art.parent, entry)
    set_operating_point(art.parent, 0.8, "another per-frame pick")
    assert stored_entry(art) == entry
    with pytest.raises(Exception, match="rule"):
        set_tracking_point(art.parent, {"thr": 0.5, "tracker": {}, "rule": " "})
