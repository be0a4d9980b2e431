"""The Python API and the user-facing contracts of issue 25: `from edge import Predictor`, ladder names,
Points/Results rows, frames.csv one row per detection, the score range, F1 as a fraction, --version,
the `spire-edge` entry point and folders of videos (--workers)."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO

ENV = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}


def _py(*args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=timeout)


@pytest.fixture(scope="module")
def demo_frame():
    """The built-in clip's first frame (RGB) and its labelled target."""
    from edge.demo import demo_video

    cap = cv2.VideoCapture(str(demo_video()))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    return bgr[:, :, ::-1].copy(), np.array([116.5, 143.5])


# --------------------------------------------------------------------------- import + Predictor
def test_import_edge_is_lazy_and_torch_free():
    code = ("import sys, time; t = time.perf_counter(); import edge; dt = time.perf_counter() - t; "
            "lazy = 'edge.inference.predictor' not in sys.modules; from edge import Predictor, Tracker, Points, Results; "
            "print(dt, lazy, 'torch' in sys.modules, Predictor.__module__, Tracker.__module__)")
    r = _py("-c", code)
    assert r.returncode == 0, r.stderr
    dt, lazy, torch, pmod, tmod = r.stdout.split()
    assert float(dt) < 0.5 and lazy == "True" and torch == "False"
    assert (pmod, tmod) == ("edge.inference.predictor", "edge.tracking.tracker")


def test_predictor_takes_a_ladder_name_and_is_callable(demo_frame):
    from edge import Points, Predictor
    from edge.model import zoo

    frame, target = demo_frame
    model = Predictor("spire-s")
    default = zoo.named_weights(zoo.ladder()["default"])
    assert Path(model.model_path).parent == default / "export"  # the default rung's artifact
    assert model.backend.name == zoo.default_backend()
    pts = model(frame)
    assert isinstance(pts, Points) and len(pts) >= 1
    assert np.linalg.norm(pts.sorted().xy[0] - target) < 3.0
    n = Predictor("spire_n")  # the rung --model spire-n runs; it used to raise SidecarError
    assert "spire-n" in str(n.model_path) or "spire_n" in str(n.model_path)


def test_predictor_runs_a_checkpoint_where_torch_is_installed(demo_frame):
    pytest.importorskip("torch")
    from edge import Predictor
    from edge.model import zoo

    frame, target = demo_frame
    for spec in (zoo.named_checkpoint("spire-s"), "spire-s"):
        model = Predictor(spec, backend="torch") if spec == "spire-s" else Predictor(spec)
        assert model.backend.name == "torch" and Path(model.model_path).name == "best.pt"
    pts = model(frame)
    assert len(pts) and np.linalg.norm(pts.sorted().xy[0] - target) < 3.0


def test_predictor_unknown_name_is_one_line():
    from edge import Predictor
    from edge.errors import SpireEdgeError

    with pytest.raises(SpireEdgeError) as e:
        Predictor("spire-xl")
    assert "spire-xl" in str(e.value) and "\n" not in str(e.value)


def test_default_backend_prefers_openvino_then_onnxruntime(monkeypatch):
    import importlib.util

    from edge.model import zoo

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "openvino" else real(n, *a))
    assert zoo.default_backend() == "onnxruntime"
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None)
    assert zoo.default_backend() == "onnxruntime"  # nothing installed: the named error comes from the backend


def test_package_data_mode_names_what_the_wheel_leaves_out(tmp_path, monkeypatch):
    from edge.model import zoo
    from edge.errors import SidecarError

    wd = tmp_path / zoo.PACKAGE_WEIGHTS
    shutil.copytree(zoo.LADDER_FILE.parent / "shipped" / "export" / "spire_s_512_int8_onnx",
                    wd / "shipped" / "export" / "spire_s_512_int8_onnx")
    shutil.copy(zoo.LADDER_FILE, wd / "ladder.json")
    monkeypatch.setattr(zoo, "LADDER_FILE", wd / "ladder.json")
    monkeypatch.delenv(zoo.ENV_VAR, raising=False)
    assert zoo.from_package() and zoo.default_artifact("onnx").name == "spire_s_512_int8_onnx"
    for call, needle in ((lambda: zoo.named_weights("spire-m"), "weights/spire-m/"),
                         (lambda: zoo.default_artifact("tflite"), "weights/shipped/export/"),
                         (zoo.default_checkpoint, "best.pt")):
        with pytest.raises(SidecarError, match="not in the installed wheel") as e:
            call()
        assert needle in str(e.value) and "--model PATH" in str(e.value)


# --------------------------------------------------------------------------- Points / Results
def test_points_records_and_json():
    from edge import Points

    p = Points(np.array([[1.25, 2.5], [3, 4]]), np.array([1.5, 0.4]))
    rec = p.to_records()
    assert rec == [{"x": 1.25, "y": 2.5, "score": 1.5}, {"x": 3.0, "y": 4.0, "score": pytest.approx(0.4)}]
    assert json.loads(p.to_json())[0] == rec[0] and Points.empty().to_json() == "[]"
    with pytest.raises(ValueError):
        Points(np.array([[np.nan, 1.0]]))


def test_results_rows_and_csv(tmp_path):
    from edge import Points, Results, Tracker
    from edge.outputs.results import DETECTION_FIELDS, TRACK_FIELDS
    from edge.tracking.track_outputs import TrackPoints

    r = Results()
    r.add(0, "a", Points(np.array([[10.0, 20.0], [30.0, 40.0]]), np.array([1.59, 0.5])))
    r.add(1, "b", Points.empty())
    r.add(2, "c", Points(np.array([[11.0, 21.0]]), np.array([2.05])))
    assert len(r) == 3 and r.fields == DETECTION_FIELDS
    rows = list(csv.DictReader(io.StringIO(r.to_csv(tmp_path / "d.csv"))))
    assert [(x["frame"], x["name"], float(x["x"]), float(x["score"])) for x in rows] == \
        [("0", "a", 10.0, 1.59), ("0", "a", 30.0, 0.5), ("2", "c", 11.0, 2.05)]
    assert (tmp_path / "d.csv").read_text() == r.to_csv() and len(json.loads(r.to_json())) == 3
    with pytest.raises(TypeError):
        r.add(3, "d", [[1, 2]])
    tr = Tracker()
    t = Results()
    for i in range(4):
        tracks = tr.update(Points(np.array([[50.0 + i, 60.0]]), np.array([0.9])), frame_id=i)
        t.add(i, f"f{i}", TrackPoints.of(tracks))
    assert t.fields == DETECTION_FIELDS + TRACK_FIELDS
    assert {rec["track_id"] for rec in t.to_records()} == {1}


# --------------------------------------------------------------------------- scores and thresholds
def test_score_range_is_one_rule_for_conf_and_the_decoder(demo_frame):
    from edge import Predictor
    from edge.argcheck import ArgumentError, check_conf
    from edge.codecs.base import SCORE_RANGE, check_threshold

    lo, hi = SCORE_RANGE
    assert check_threshold(1.5) == 1.5 and check_conf(2) == 2.0 and check_threshold(hi) == hi
    for bad in (0, -1, hi * 1.01, 35, float("nan"), "x"):
        with pytest.raises(ArgumentError, match="score threshold"):
            check_threshold(bad, "--conf")
    model = Predictor("spire-s", conf=1.5)  # above 1: accepted, as scores above 1 are emitted
    assert model.conf == 1.5
    frame, _ = demo_frame
    scores = Predictor("spire-s")(frame, thr=1e-3).scores  # every candidate the decoder emits
    assert len(scores) and lo < scores.min() and scores.max() <= hi


# --------------------------------------------------------------------------- F1 as a fraction
def test_f1_printed_as_a_fraction(capsys):
    pytest.importorskip("torch")
    from quantize.fidelity import summary_line
    from spire.evaluate import print_report

    h = {"precision": 0.8, "recall": 0.5, "f1": 0.6154, "fppi": 0.1}
    print_report({"images": 2, "targets": 2, "resolution": "native", "threshold": 0.35, "max_dist": 5, "tp": 1,
                  "fp": 0, "fn": 1, "precision": 0.8, "recall": 0.5, "f1": 0.6154, "fa_per_pixel": 0.0,
                  "basicirstd": {"pd": 0.5, "false_points_per_frame": 0.0}, "hungarian": h})
    out = capsys.readouterr().out
    assert "F1 0.6154" in out and "61.54" not in out
    rep = {"fp32_f1": 0.9, "int8_f1": 0.875, "int8_precision": 0.9, "int8_recall": 0.85, "int8_fa_per_pixel": 0.0,
           "frames": 3, "val_source": "x", "identical_frames": 1.0, "mean_shift_px": 0.0}
    assert "F1 0.9000 -> 0.8750" in summary_line(rep, "int8")


# --------------------------------------------------------------------------- --version, spire-edge
@pytest.mark.parametrize("module", ["edge.run", "edge.datasets", "benchmarks.run", "spire.train", "quantize.ptq"])
def test_version_on_every_command(module):
    from edge import __version__

    r = _py("-m", module, "--version")
    assert r.returncode == 0 and r.stdout.strip() == f"python -m {module} (spire-edge {__version__}, Python " \
        f"{sys.version.split()[0]})", r.stderr


def test_spire_edge_entry_point(tmp_path, capsys):
    from edge import cli_main

    want = {"predict": "edge.run", "track": "edge.run", "val": "spire.evaluate", "train": "spire.train",
            "export": "export", "quantize": "quantize.ptq", "benchmark": "benchmarks.run", "convert": "edge.datasets"}
    assert {k: cli_main.COMMANDS[k].module for k in want} == want
    assert cli_main.COMMANDS["track"].prefix == ("--track",) and cli_main.COMMANDS["convert"].prefix == ("convert",)
    assert "[options.entry_points]" in (REPO / "setup.cfg").read_text() and \
        "spire-edge = edge.cli_main:main" in (REPO / "setup.cfg").read_text()
    assert cli_main.main(["bogus"]) == 2 and "unknown command 'bogus'" in capsys.readouterr().err
    rc = cli_main.main(["track", "--source", "synthetic", "--frames", "3", "--quiet", "--warmup", "0",
                        "--save", str(tmp_path / "t")])
    assert rc == 0 and "tracker" in json.loads((tmp_path / "t" / "summary.json").read_text())


# --------------------------------------------------------------------------- folders of videos
@pytest.fixture()
def archive(tmp_path):
    from edge.demo import demo_labels, demo_video

    d = tmp_path / "archive"
    d.mkdir()
    shutil.copy(demo_video(), d / "flight_a.mp4")
    shutil.copy(demo_labels(), d / "flight_a.csv")  # labelled: scored
    shutil.copy(demo_video(), d / "flight_b.mp4")  # unlabelled
    return d


@pytest.mark.parametrize("workers", [1, 2])
def test_folder_of_videos_each_file_and_one_summary(archive, tmp_path, workers):
    out = tmp_path / f"out{workers}"
    r = _py("-m", "edge.run", "--source", str(archive), "--frames", "6", "--workers", str(workers), "--save",
            str(out), "--quiet", "--warmup", "0", timeout=300)
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["files"] == 2 and s["failed"] == 0 and s["workers"] == workers and s["frames"] == 12
    assert [f["file"] for f in s["per_file"]] == ["flight_a.mp4", "flight_b.mp4"]
    assert s["metrics"]["labelled_files"] == 1 and s["metrics"]["tp"] + s["metrics"]["fn"] == 6
    assert 0 <= s["metrics"]["f1"] <= 1
    for stem in ("flight_a", "flight_b"):
        rows = list(csv.DictReader(open(out / stem / "frames.csv")))
        assert rows and set(rows[0]) == {"frame", "name", "x", "y", "score"}
        assert json.loads((out / stem / "summary.json").read_text())["frames"] == 6


def test_workers_need_a_folder_of_videos():
    r = _py("-m", "edge.run", "--source", "synthetic", "--workers", "2", "--frames", "1")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--workers 2" in r.stderr
