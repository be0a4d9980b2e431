"""`python -m edge.run`: outputs, bad frames, crash/Ctrl-C safety, errors, boards, labelled metrics."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import run as edge_run
from tests.conftest import IMGSZ as S
from tests.conftest import spots


@pytest.fixture(scope="module")
def model(fake_model):
    """The numpy fake target's artifact (tests/conftest.py): edge.run end to end without torch or a runtime."""
    return fake_model


def _run(capsys, *argv):
    rc = edge_run.main([*map(str, argv), "--quiet", "--warmup", "1"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_synthetic_run_writes_all_outputs(model, tmp_path, capsys):
    rc, out, _ = _run(capsys, "--model", model, "--source", "synthetic", "--frames", 4, "--save", tmp_path,
                      "--overlay-every", 2)
    assert rc == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["frames"] == 4 and s["skipped"] == 0 and s["fps"] > 0
    for stage in ("read", "preprocess", "infer", "decode"):
        assert set(s["latency_ms"][stage]) >= {"p50", "p90", "p99"}
        assert s["latency_ms"][stage]["p50"] <= s["latency_ms"][stage]["p99"]
    # power is measured where the host has a sensor (a board) and is null where it has none: either way
    # the three keys agree (host-independent; a board with a sensor must pass too)
    assert (s["power_source"] is None) == (s["power_w"] is None) == (s["energy_mj_per_frame"] is None)
    assert set(s["metrics"]) >= {"precision", "recall", "f1", "fa_per_pixel", "fppi"}  # the clip is labelled
    lines = (tmp_path / "frames.jsonl").read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    assert [r["frame_id"] for r in recs] == [0, 1, 2, 3] and all({"x", "y", "score"} <= set(p) for r in recs for p in r["points"])
    assert set(recs[0]["latency_ms"]) == {"read", "preprocess", "infer", "decode", "total"}
    rows = list(csv.DictReader(open(tmp_path / "frames_summary.csv")))
    assert len(rows) == 4 and int(rows[0]["n_points"]) == len(recs[0]["points"])
    dets = list(csv.DictReader(open(tmp_path / "frames.csv")))  # one row per detection
    assert len(dets) == sum(len(r["points"]) for r in recs) and list(dets[0]) == ["frame", "name", "x", "y", "score"]
    assert [float(d["x"]) for d in dets if d["frame"] == "0"] == [round(p["x"], 3) for p in recs[0]["points"]]
    assert sorted(p.name for p in tmp_path.glob("overlay_*.png")) == ["overlay_000000.png", "overlay_000002.png"]
    assert ("power: n/a (no sensor: tried rapl" in out) == (s["power_source"] is None)
    assert "FPS" in out and "p50/p90/p99" in out
    assert "metrics: P " in out


def test_bad_frames_are_skipped_and_counted(model, tmp_path, capsys):
    src = tmp_path / "frames"
    src.mkdir()
    cv2.imwrite(str(src / "a_good.png"), spots(48, 60, [(30, 20)]))
    (src / "b_corrupt.png").write_bytes(os.urandom(300))
    (src / "c_empty.png").write_bytes(b"")
    cv2.imwrite(str(src / "d_nan.tiff"), np.full((20, 20), np.nan, np.float32))
    cv2.imwrite(str(src / "e_good.png"), spots(48, 60, [(10, 30)]))
    rc, out, err = _run(capsys, "--model", model, "--source", src, "--save", tmp_path / "out")
    assert rc == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["frames"] == 2 and s["skipped"] == 3
    assert s["skipped_names"] == ["b_corrupt.png", "c_empty.png", "d_nan.tiff"]
    for name in ("b_corrupt.png", "c_empty.png", "d_nan.tiff"):
        assert name in err
    assert "NaN" in err
    recs = [json.loads(x) for x in (tmp_path / "out" / "frames.jsonl").read_text().splitlines()]
    assert [r.get("skipped", False) for r in recs] == [False, True, True, True, False]
    assert abs(recs[0]["points"][0]["x"] - 30) < 1.5 and "metrics" not in s  # plain folder: no labels


def test_nan_array_frame_raises_frame_error(model):
    from edge.errors import FrameError
    from edge.inference.predictor import Predictor

    p = Predictor(model)
    bad = np.zeros((30, 30), np.float32)
    bad[3, 3] = np.nan
    with pytest.raises(FrameError, match="cam#7: contains NaN"):
        p.predict(bad, "cam#7")
    with pytest.raises(FrameError, match="wrong shape"):
        p.predict(np.zeros((4, 4, 2), np.uint8), "x")


@pytest.mark.parametrize("exc, rc", [(RuntimeError("backend exploded"), None), (KeyboardInterrupt(), 130)])
def test_summary_valid_after_crash_or_ctrl_c(model, tmp_path, capsys, monkeypatch, exc, rc):
    from edge.inference.predictor import Predictor

    real = Predictor.predict
    calls = {"n": 0}

    def flaky(self, frame, name=None):
        calls["n"] += 1
        if calls["n"] == 4:
            raise exc
        return real(self, frame, name)

    monkeypatch.setattr(Predictor, "predict", flaky)
    argv = ["--model", model, "--source", "synthetic", "--frames", 10, "--save", tmp_path, "--summary-every", 2]
    if rc is None:
        with pytest.raises(RuntimeError, match="exploded"):
            _run(capsys, *argv)
    else:
        assert _run(capsys, *argv)[0] == rc
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["frames"] == 3 and s["latency_ms"]["infer"]["p50"] is not None
    assert s["stop_reason"].startswith("error: RuntimeError" if rc is None else "interrupted")
    lines = (tmp_path / "frames.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(x)["frame_id"] == i for i, x in enumerate(lines))


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_killed_process_leaves_complete_lines_and_summary(model, tmp_path, sig):
    import signal
    import subprocess
    import sys
    import time

    src = tmp_path / "many"
    src.mkdir()
    png = cv2.imencode(".png", spots(48, 60, [(30, 20)]))[1].tobytes()
    for i in range(3000):
        (src / f"f{i:05d}.png").write_bytes(png)
    out = tmp_path / "out"
    # `python -m edge.run`, with the fake target registered first (it is a row of this test process only)
    run = ("import sys; from tests.conftest import register_fake_target; register_fake_target(); "
           "from edge.run import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", run, "--model", str(model), "--source", str(src),
                             "--save", str(out), "--quiet", "--overlay-every", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        p = out / "frames.jsonl"
        if p.exists() and p.read_text().count("\n") >= 20:
            break
        time.sleep(0.05)
    proc.send_signal(getattr(signal, sig))
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == (143 if sig == "SIGTERM" else 130), stdout  # 128 + the signal, as spire.train
    s = json.loads((out / "summary.json").read_text())
    lines = (out / "frames.jsonl").read_text().splitlines()
    assert 20 <= s["frames"] < 3000 and s["stop_reason"].startswith("interrupted")
    assert len(lines) == s["frames"] and all(json.loads(x)["frame_id"] == i for i, x in enumerate(lines))
    assert "frames %d, skipped 0" % s["frames"] in stdout


def test_missing_sidecar_is_one_line_error(model, tmp_path, capsys):
    import shutil

    shutil.copy(model / "model.npy", tmp_path / "model.npy")
    rc, out, err = _run(capsys, "--model", tmp_path / "model.npy")
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "metadata.json" in lines[0] and "export" in lines[0]


def test_default_model_comes_from_the_zoo(model, tmp_path, capsys, monkeypatch):
    """No --model: the artifact for the backend's format under $SPIRE_EDGE_WEIGHTS/export."""
    import shutil

    shutil.copytree(model, tmp_path / "weights" / "export" / model.name)
    monkeypatch.setenv("SPIRE_EDGE_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.chdir(tmp_path)
    rc, out, _ = _run(capsys, "--backend", "numpy", "--frames", 2, "--save", tmp_path / "o")
    assert rc == 0
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["model"].endswith(model.name)
    rc, _, err = _run(capsys, "--backend", "openvino", "--frames", 1)
    assert rc == 2 and "no openvino artifact" in err


def test_board_profile_sets_defaults_flags_win(model, tmp_path, capsys, monkeypatch):
    from edge.device.boards import load_board

    board = tmp_path / "boards" / "pi5"
    board.mkdir(parents=True)
    (board / "profile.json").write_text(json.dumps({"backend": "numpy", "precision": "fp32", "imgsz": S,
                                                    "threads": 3, "power": "none"}))
    monkeypatch.setenv("SPIRE_EDGE_BOARDS", str(tmp_path / "boards"))
    assert load_board("pi5").threads == 3
    rc, out, _ = _run(capsys, "--model", model, "--board", "pi5", "--threads", 1, "--frames", 2, "--save", tmp_path / "o")
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert rc == 0 and s["threads"] == 1 and s["backend"] == "numpy"
    assert "disabled by --power none" in json.dumps(s["power_tried"])
    rc, _, err = _run(capsys, "--model", model, "--board", "nosuchboard")
    assert rc == 2 and "no such board profile; choose one of: pi5" in err


def test_video_source_and_a_stalled_stream(model, tmp_path, capsys):
    from edge.sources import open_source

    path = tmp_path / "clip.mp4"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (80, 48))
    for i in range(6):
        vw.write(cv2.cvtColor(spots(48, 80, [(20 + 5 * i, 24)], seed=i), cv2.COLOR_GRAY2BGR))
    vw.release()
    rc, out, _ = _run(capsys, "--model", model, "--source", path, "--save", tmp_path / "o", "--overlay-every", 1)
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert rc == 0 and s["frames"] == 6 and s["source_kind"] == "video"
    assert cv2.VideoCapture(str(tmp_path / "o" / "annotated.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 6
    assert not list((tmp_path / "o").glob("*.png"))  # a video gets annotated.mp4, not overlay PNGs

    class Stalling:  # delivers 2 frames, then nothing
        def __init__(self):
            self.n, self.reads = 0, 0

        def read(self):
            self.reads += 1
            self.n += 1
            return (True, np.zeros((8, 8, 3), np.uint8)) if self.n <= 2 else (False, None)

        def get(self, prop):
            return 0

        def release(self):
            pass

    src = open_source(str(path))
    src.cap.release()
    src.cap, src.count, src.kind, src.retry_wait_s = Stalling(), 0, "camera", 0.0
    items = list(src)
    assert len(items) == 2 and src.stopped_early and src.cap.reads == 2 + 1 + src.retries


def test_labelled_dataset_metrics_agree_with_spire_evaluate(model, tmp_path, capsys):
    """edge.run on a dataset folder scores like spire's evaluation: the same Predictor, decoded low for the
    PR sweep and cut at the codec's threshold afterwards (edge.scoring.score), gives the same counts."""
    pytest.importorskip("torch")
    from edge.datasets import open_dataset
    from edge.metrics import PointMetrics
    from edge.inference.predictor import Predictor
    from edge.scoring import score
    from spire.data import Reporter, iter_eval_frames

    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    frames = {"f1": ([(20, 20), (40, 30)], [(20, 20), (40, 30)]),   # 2 TP
              "f2": ([(30, 25)], [(30, 25), (10, 40)]),             # TP + FN (unlit target)
              "f3": ([(15, 15), (45, 35)], [(15, 15)])}             # TP + FP (unlabelled spot)
    for name, (lit, gt) in frames.items():
        cv2.imwrite(str(root / "images" / f"{name}.png"), spots(48, 60, lit))
        mask = np.zeros((48, 60), np.uint8)
        for x, y in gt:
            mask[y - 1:y + 2, x - 1:x + 2] = 255
        cv2.imwrite(str(root / "masks" / f"{name}_pixels0.png"), mask)
    rc, out, _ = _run(capsys, "--model", model, "--source", root, "--save", tmp_path / "o")
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert rc == 0 and s["source_kind"] == "dataset"
    assert (s["metrics"]["tp"], s["metrics"]["fp"], s["metrics"]["fn"]) == (4, 1, 1)

    pred = Predictor(model, threads=1)
    evals = list(iter_eval_frames(open_dataset(root, split="all"), Reporter(enabled=False)))
    ref = score(pred, evals, metrics=PointMetrics(), thr=0.05, progress=False).metrics
    assert pred.codec.thr == pytest.approx(0.3)  # the sweep's threshold was an argument, the codec is untouched
    want = ref.compute(pred.codec.thr)
    for k in ("precision", "recall", "f1", "fa_per_pixel", "fppi"):
        assert s["metrics"][k] == pytest.approx(want[k], abs=1e-9), k
    assert f"P {want['precision']:.4f}  R(Pd) {want['recall']:.4f}  F1 {want['f1']:.4f}" in out
