"""Nothing a user made is lost or silently wrong (issue 16): run folders, integrity, calibration, one-line errors.

Each test is one case of the issue and failed before its fix. Kept fast: the committed 512² ONNX /
OpenVINO exports are copied and run on a few frames (no export, no torch where it can be avoided);
training uses hrpe_nano on the 6-frame NUAA fixture of tests/spire/test_train.py at 64 px.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import run as edge_run
from tests.conftest import shared

REPO = Path(__file__).resolve().parents[2]
EXPORTS = REPO / "weights" / "shipped" / "export"


def _shipped(fmt: str, precision: str) -> tuple[Path, str]:
    """(folder, model file stem) of the committed artifact of a format and precision (whichever model ships)."""
    from edge.model.zoo import find_artifacts

    for folder, meta in find_artifacts(EXPORTS):
        if meta.format == fmt and meta.precision == precision:
            return Path(folder), Path(meta.model_file).stem
    raise LookupError(f"{EXPORTS}: no committed {precision} {fmt} artifact")


try:
    ONNX32, ONNX32_STEM = _shipped("onnx", "fp32")
    OV8, OV8_STEM = _shipped("openvino", "int8")
    OV32, OV32_STEM = _shipped("openvino", "fp32")
    TRT32, TRT32_STEM = _shipped("tensorrt", "fp32")
except LookupError as e:  # a checkout without the committed weights: a skip with the reason, not a collection error
    pytest.skip(str(e), allow_module_level=True)
NUAA = shared("data", "nuaa-sirst")
needs_nuaa = pytest.mark.skipif(not (NUAA / "images").is_dir(), reason="NUAA-SIRST fixture data not present")


def _run(capsys, *argv):
    rc = edge_run.main([*map(str, argv), "--quiet", "--warmup", "0"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--model", "hrpe_nano", "--data", str(data), "--imgsz", "64", "--batch", "2", "--eval-every", "1",
            "--out", str(out), "--threads", "1", "--quiet", *extra]


@pytest.fixture(scope="module")
def nuaa(tmp_path_factory):
    from tests.spire.test_train import make_fixture

    return make_fixture(tmp_path_factory.mktemp("rel_nuaa") / "data")


# ------------------------------------------------------------------------ 1. training run folders
@needs_nuaa
def test_train_never_overwrites_a_run(nuaa, tmp_path, capsys):
    from edge.cli import run_cli
    from spire.train import main

    out = tmp_path / "run"
    assert run_cli(main, _train_args(nuaa, out, "--epochs", "1")) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert run_cli(main, _train_args(nuaa, out, "--epochs", "1")) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "already holds a training run" in line and "--resume" in line and "--exist-ok" in line
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # untouched
    assert run_cli(main, _train_args(nuaa, out, "--epochs", "1", "--exist-ok")) == 0
    assert f"writes to {tmp_path / 'run2'}" in capsys.readouterr().err
    assert (tmp_path / "run2" / "best.pt").is_file()
    assert json.loads((tmp_path / "run2" / "train_args.json").read_text())["out"] == str(tmp_path / "run2")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


@needs_nuaa
@pytest.mark.parametrize("sig, rc", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_train_exit_code_after_a_signal(nuaa, tmp_path, sig, rc):
    """A real `python -m spire.train` process, signalled once it has written its first epoch.

    Run as its own process: signalling the pytest process itself crashed the session (SIGSEGV)
    once TensorFlow (LiteRT tests) had installed its handlers in it.
    """
    import subprocess
    import sys
    import time

    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "spire.train",
                             *_train_args(nuaa, out, "--epochs", "10000", "--eval-every", "10000")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        t_end = time.monotonic() + 240
        while not (out / "last.pt").is_file() and proc.poll() is None and time.monotonic() < t_end:
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        proc.send_signal(sig)
        got = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert got == rc and (out / "last.pt").is_file()


# ------------------------------------------------------------------------ 2. edge.run --save
def test_run_save_never_mixes_two_runs(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()  # new and empty: written directly
    rc, stdout, _ = _run(capsys, "--model", ONNX32, "--frames", 2, "--save", out, "--overlay-every", 1)
    assert rc == 0 and (out / "summary.json").is_file() and f"saved: {out}/summary.json" in stdout
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    rc, stdout, err = _run(capsys, "--model", ONNX32, "--frames", 1, "--save", out)
    assert rc == 0 and f"saved in {tmp_path / 'out2'}" in err and f"saved: {tmp_path / 'out2'}/summary.json" in stdout
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    assert json.loads((tmp_path / "out2" / "summary.json").read_text())["frames"] == 1
    rc, _, err = _run(capsys, "--model", ONNX32, "--frames", 1, "--save", out)
    assert rc == 0 and f"saved in {tmp_path / 'out3'}" in err


# ------------------------------------------------------------------------ 6. one-line errors
@pytest.mark.parametrize("case", ["file", "under_a_file"])
def test_run_save_to_a_file_or_unwritable_path(tmp_path, capsys, case):
    f = tmp_path / "notes.txt"
    f.write_text("mine\n")
    target = f if case == "file" else f / "sub"
    rc, _, err = _run(capsys, "--model", ONNX32, "--frames", 1, "--save", target)
    line = _one_error_line(err)
    assert rc == 2 and "--save" in line and str(target) in line
    assert f.read_text() == "mine\n"


@pytest.mark.parametrize("argv, needle", [(["--threads", "-4"], "--threads -4"), (["--threads", "0"], "--threads 0"),
                                          (["--conf", "-1"], "--conf -1.0"), (["--conf", "35"], "--conf 35.0"),
                                          (["--frames", "0"], "--frames 0"), (["--raw16", "0", "5"], "--raw16 0 5")])
def test_run_refuses_impossible_numbers(capsys, argv, needle):
    rc, _, err = _run(capsys, "--model", ONNX32, *argv)
    assert rc == 2 and needle in _one_error_line(err)


def test_predictor_refuses_impossible_numbers():
    from edge.argcheck import ArgumentError
    from edge.inference.predictor import Predictor

    with pytest.raises(ArgumentError, match="threads -4"):
        Predictor(ONNX32, threads=-4)
    with pytest.raises(ArgumentError, match="conf -1"):
        Predictor(ONNX32, conf=-1)


def test_mask_of_another_aspect_is_refused_same_aspect_rescaled(tmp_path, capfd):
    from edge.datasets import open_dataset

    root = tmp_path / "nuaa"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    img = np.full((64, 96), 30, np.uint8)
    for name, mask_hw in (("same", (32, 48)), ("other", (64, 64)), ("exact", (64, 96))):
        cv2.imwrite(str(root / "images" / f"{name}.png"), img)
        m = np.zeros(mask_hw, np.uint8)
        m[10:13, 20:23] = 255
        cv2.imwrite(str(root / "masks" / f"{name}_pixels0.png"), m)
    (root / "train.txt").write_text("same\nother\nexact\n")
    ds = open_dataset(root, split="train")
    capfd.readouterr()
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")  # no Python warning (with its source line) for either
        same, other = ds[0], ds[1]
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(ln.startswith("warning: ") for ln in err), err
    assert "rescaled" in err[0] and same.labelled and len(same.points) == 1
    assert "another aspect ratio" in err[1] and not other.labelled and len(other.points) == 0
    ds[0], ds[1]  # said once per file
    assert capfd.readouterr().err == ""


def test_truncated_video_prints_why_it_stopped(tmp_path, capsys):
    from benchmarks.fault_fixtures import noise_video

    path = noise_video(tmp_path / "clip.avi", "MJPG", 10.0, 30)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    rc, stdout, _ = _run(capsys, "--model", ONNX32, "--source", path, "--save", tmp_path / "o")
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert rc == 0 and 0 < s["frames"] < 30
    assert f"stopped: {s['stop_reason']}" in stdout and s["stop_reason"] != "end of source"


# ------------------------------------------------------------------------ 4. model integrity
def _copy(src: Path, dst: Path) -> Path:
    return Path(shutil.copytree(src, dst))


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_openvino_bin_is_checked_in_one_line(tmp_path, capsys, damage):
    art = _copy(OV8, tmp_path / "ov")
    meta = json.loads((art / "metadata.json").read_text())
    assert set(meta["files"]) == {f"{OV8_STEM}.xml", f"{OV8_STEM}.bin"}  # the committed sidecar
    b = art / f"{OV8_STEM}.bin"
    if damage == "truncated":
        b.write_bytes(b.read_bytes()[:1000])
    else:
        b.unlink()
    rc, _, err = _run(capsys, "--backend", "openvino", "--model", art, "--frames", 1)
    line = _one_error_line(err)
    assert rc == 2 and f"{OV8_STEM}.bin" in line and ("sha256" in line if damage == "truncated" else "missing" in line)


def test_old_sidecars_are_checked_on_what_they_list(tmp_path):
    """A sidecar without `files` (written before it existed): model_sha256, the .bin's weights_sha256, the .bin."""
    from edge.errors import SidecarError
    from edge.model.sidecar import read_sidecar

    art = _copy(OV32, tmp_path / "ov")
    d = json.loads((art / "metadata.json").read_text())
    del d["files"]
    (art / "metadata.json").write_text(json.dumps(d, indent=2) + "\n")
    read_sidecar(art)
    b = art / f"{OV32_STEM}.bin"
    b.write_bytes(b.read_bytes()[:-4])
    with pytest.raises(SidecarError, match=rf"sha256 of {OV32_STEM}\.bin"):
        read_sidecar(art)
    del d["extra"]["weights_sha256"]
    (art / "metadata.json").write_text(json.dumps(d, indent=2) + "\n")
    b.unlink()
    with pytest.raises(SidecarError, match=rf"'{OV32_STEM}\.bin' is missing"):
        read_sidecar(art)


def test_onnx_external_data_is_listed_and_checked(tmp_path):
    import onnx

    from edge.errors import SidecarError
    from edge.model.integrity import hash_files, needed_files
    from edge.inference.predictor import Predictor
    from edge.model.sidecar import read_sidecar, write_sidecar

    art = tmp_path / "ext"
    art.mkdir()
    m = onnx.load(str(ONNX32 / f"{ONNX32_STEM}.onnx"))
    onnx.save_model(m, str(art / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="m.onnx.data", size_threshold=1024)
    names = needed_files(art, "onnx", "m.onnx")
    assert names == ["m.onnx", "m.onnx.data"]
    files = hash_files(art, names)
    write_sidecar(art, read_sidecar(ONNX32).derive(model_file="m.onnx", model_sha256=files["m.onnx"], files=files))
    pts, _ = Predictor(art, threads=1).predict(np.full((64, 64), 40, np.uint8))
    (art / "m.onnx.data").write_bytes((art / "m.onnx.data").read_bytes()[:-8])
    with pytest.raises(SidecarError, match=r"sha256 of m\.onnx\.data") as e:
        Predictor(art, threads=1)
    assert "\n" not in str(e.value)


def test_tensorrt_engine_hash_recorded_by_the_recipe_and_checked(tmp_path):
    from edge.errors import SidecarError
    from edge.model.sidecar import read_sidecar

    art = _copy(TRT32, tmp_path / "trt")
    assert set(read_sidecar(art).files) == {f"{TRT32_STEM}.onnx", "build_engine.sh"}
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "trtexec").write_text('#!/bin/bash\nfor a in "$@"; do case "$a" in --saveEngine=*) '
                                  'printf "plan-bytes" > "${a#--saveEngine=}";; esac; done\n')
    (fake / "trtexec").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "TRT_VERSION": "10.3.0"}
    import subprocess

    r = subprocess.run(["bash", str(REPO / "boards" / "jetson" / "build_engine.sh"), str(art), "--no-compare"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    engine = art / f"{TRT32_STEM}.engine"
    assert engine.name in read_sidecar(art).files  # recorded, and it verifies
    engine.write_bytes(b"plan-byte")
    with pytest.raises(SidecarError, match=rf"sha256 of {TRT32_STEM}\.engine"):
        read_sidecar(art)
    engine.unlink()  # copied to another Jetson without its engine: fine until the backend needs one
    read_sidecar(art)


# ------------------------------------------------------------------------ 5. calibration sanity, fidelity gate
def _calib(frames, mode="mean-std"):
    from edge.inference.preprocess import Normalization, PreprocessConfig
    from quantize.calibration import CalibFrame, CalibrationSource

    cfg = PreprocessConfig(64, 1, Normalization(mode, (0.39,), (0.23,)), "center", False)
    return CalibrationSource([CalibFrame(f"f{i}", f, False) for i, f in enumerate(frames)], cfg, "mine", "train",
                             progress=False)


def _scene(seed, lo=0, hi=255):
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(100, 60, (64, 64)), lo, hi).astype(np.uint8)


def test_degenerate_calibration_sets_are_refused(capsys):
    from edge.errors import DatasetError
    from quantize.sanity import check_calibration

    real = [_scene(i) for i in range(12)]
    assert len(check_calibration(_calib(real))) == 12
    with pytest.raises(DatasetError, match="12 of 12 frames are constant or near-constant"):
        check_calibration(_calib([np.zeros((64, 64), np.uint8)] * 12))
    low = [(100 + _scene(i) // 50).astype(np.uint8) for i in range(12)]  # 6 grey levels of contrast
    with pytest.raises(DatasetError, match="too little contrast"):
        check_calibration(_calib(low))
    bright = [np.clip(_scene(i).astype(int) + 150, 0, 255).astype(np.uint8) for i in range(12)]
    with pytest.raises(DatasetError, match="differs badly from the model's training frames"):
        check_calibration(_calib(bright))
    capsys.readouterr()
    kept = check_calibration(_calib(real + [np.full((64, 64), 7, np.uint8)] * 2))  # a few dead frames: dropped
    assert len(kept) == 12 and "dropped 2 constant" in capsys.readouterr().err


def test_ptq_refuses_all_black_calibration_frames(tmp_path, capsys):
    from quantize.ptq import main

    from benchmarks.fault_fixtures import black_calibration

    root = black_calibration(tmp_path / "black")
    rc = main(["--data", str(root), "--frames", "8", "--backend", "onnxruntime", "--no-fidelity", "--imgsz", "64",
               "--out", str(tmp_path / "q")])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = _one_error_line("\n".join(ln for ln in err.splitlines() if ln.startswith("error: ")))
    assert rc == 2 and "8 of 8 frames are constant" in line and not (tmp_path / "q").exists()


def test_fidelity_gate_fails_beyond_the_tolerance(tmp_path, monkeypatch):
    import dataclasses

    import quantize.ptq as ptq
    from quantize.job import Int8Job, Int8Run
    from quantize.sanity import FidelityGateError, check_drop

    rep = {"fp32_f1": 0.875, "int8_f1": 0.455, "frames": 50, "val_source": "val", "int8_thr": 0.4}
    assert check_drop({**rep, "int8_f1": 0.86}, "x", 2.0) is None
    folder = tmp_path / "m_512_int8_onnx"

    def stage(*a, **k):  # the quantizer and the fidelity run: an artifact and its report
        folder.mkdir(exist_ok=True)
        (folder / "fidelity.json").write_text(json.dumps(rep))
        return folder, dict(rep)

    monkeypatch.setattr(ptq, "stage_int8", stage)
    monkeypatch.setattr(ptq, "RECIPES", {"onnxruntime": None})
    run = Int8Run(Int8Job(max_drop=2.0, out=str(tmp_path)), None, {}, object(), work=tmp_path)
    with pytest.raises(FidelityGateError, match=r"INT8 F1 0\.455 is 42\.0 points \(x0\.01\) below FP32 0\.875.*--allow-drop"):
        ptq._one(run, "onnxruntime", None, (), "MinMax")
    assert (folder / "fidelity.json").is_file()  # kept for inspection
    allow = dataclasses.replace(run, job=Int8Job.from_args(ptq._parser().parse_args(["--allow-drop"])))
    assert ptq._one(allow, "onnxruntime", None, (), "MinMax") == folder  # --allow-drop
    a = ptq._parser().parse_args([])
    assert a.max_drop == 2.0 and not a.allow_drop and ptq._parser().parse_args(["--allow-drop"]).allow_drop


def test_benchmark_unknown_backend_fails_fast_and_all_failed_rows_exit_nonzero(tmp_path, capsys):
    import time

    from benchmarks.rows import Row
    from benchmarks.run import exit_code, main

    t0 = time.perf_counter()
    assert main(["--backend", "nosuch", "--quick", "--out", str(tmp_path / "b")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--backends nosuch: unknown backend" in line and time.perf_counter() - t0 < 5
    assert not (tmp_path / "b").exists()
    assert main(["--precisions", "int4", "--quick", "--out", str(tmp_path / "b")]) == 2
    assert "--precisions int4: unknown precision" in capsys.readouterr().err
    ok = Row("torch fp32 official-SPIRE", "torch", "fp32", "official", status="ok")
    bad = [Row(f"openvino {p} shipped", "openvino", p, "shipped", status="export failed: x") for p in ("fp32", "int8")]
    assert exit_code([ok, *bad]) == 1 and "every benchmark row failed" in capsys.readouterr().err
    assert exit_code([ok, bad[0], Row("openvino int8 shipped", "openvino", "int8", "shipped", status="ok")]) == 0


# ------------------------------------------------------------------------ 6. the umask is honoured
def test_outputs_and_artifact_folders_honour_the_umask(tmp_path, capsys):
    from edge.model.sidecar import read_sidecar, write_sidecar
    from export.common import staged_folder
    from spire.cli import write_json

    old = os.umask(0o027)
    try:
        with staged_folder(tmp_path / "art") as t:
            shutil.copy(ONNX32 / f"{ONNX32_STEM}.onnx", t)
            write_sidecar(t, read_sidecar(ONNX32))
        write_json(tmp_path / "summary.json", {"a": 1})
        rc, _, _ = _run(capsys, "--model", ONNX32, "--frames", 1, "--save", tmp_path / "run")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert rc == 0 and mode(tmp_path / "art") == 0o750
    assert mode(tmp_path / "art" / "metadata.json") == 0o640 and mode(tmp_path / "summary.json") == 0o640
    assert mode(tmp_path / "run" / "summary.json") == 0o640 and mode(tmp_path / "run") == 0o750


# ------------------------------------------------------------------------ 7. bit depth
SIRST_V2 = REPO.parent / "shared" / "data" / "sirst-v2"


def _same(a, b, tol=1e-3) -> bool:
    if len(a) != len(b):
        return False
    return len(a) == 0 or float(np.abs(np.sort(a.xy, 0) - np.sort(b.xy, 0)).max()) <= tol


@pytest.mark.skipif(not (SIRST_V2 / "images" / "Misc_419.png").is_file(), reason="sirst-v2 frames not present")
def test_8_and_16_bit_of_one_scene_give_the_same_points():
    """Misc_419's 16-bit version (v*64 + 1000) gave hrpe_lite another point than its 8-bit one (the AGC stretched it)."""
    from edge.inference.predictor import Predictor
    from edge.inference.preprocess import percentile_agc

    v = cv2.imread(str(SIRST_V2 / "images" / "Misc_419.png"), cv2.IMREAD_GRAYSCALE)
    raw = v.astype(np.uint16) * 64 + 1000
    cam = Predictor(ONNX32, threads=1, raw16=(64, 1000))  # the camera's own raw -> 8-bit map
    a, b = cam(v), cam(raw)
    assert len(a) > 0 and _same(a, b, 0.0) and np.array_equal(a.scores, b.scores)
    # without the map, the exact rule: 16 bits go through the AGC, blind to gain and offset
    agc = Predictor(ONNX32, threads=1)
    c = agc(raw)
    assert _same(c, agc(v.astype(np.uint16) * 16 + 30000)) and _same(c, agc(percentile_agc(v)))


# ------------------------------------------------------------------------ soak (smoke test of the tool)
def test_soak_loops_edge_run_and_reports_per_minute(tmp_path, capsys):
    from benchmarks.soak import build_parser, soak

    src = tmp_path / "clip"
    src.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / f"f{i}.png"), _scene(i)[:48, :64])
    a = build_parser().parse_args(["--minutes", "0.05", "--minute-s", "1", "--source", str(src), "--model",
                                   str(ONNX32), "--threads", "1"])
    rep = soak(a)
    assert len(rep.minutes) >= 2 and rep.passes >= 2  # the source is reopened at its end
    assert all(m.rss_mb > 0 and m.frames > 0 for m in rep.minutes)
    assert rep.minutes[-1].total_frames == sum(m.frames for m in rep.minutes)
    v = rep.verdict()
    assert {"rss_mb_per_20k", "p99_ratio", "rss_ok", "p99_ok"} <= set(v)


def test_run_latencies_stay_bounded_on_a_long_run():
    """edge.run kept every latency in lists (~160 B a frame, percentiles over all of them every 25 frames)."""
    from edge.outputs.latency import LatencyLog
    from edge.outputs import RunStats

    st = RunStats()
    log = st.latency["total"]
    assert isinstance(log, LatencyLog)
    vals = np.random.default_rng(0).lognormal(2, 0.5, 60000)
    for v in vals[:1000]:
        st.add({"read": 0.0, "preprocess": 0.0, "infer": float(v), "decode": 0.0}, 0)
    assert st.summary()["latency_ms"]["total"]["p99"] == round(float(np.percentile(vals[:1000], 99)), 4)  # exact
    for v in vals[1000:]:
        log.append(v)
    assert log.hist is not None and len(log.values) == 0 and len(log) == 60000  # bounded from here on
    for q in (50, 99):
        assert log.percentile(q) == pytest.approx(np.percentile(vals, q), rel=3e-3)


def test_run_scoring_keeps_counts_not_frames():
    """edge.run's labelled scoring kept every frame (~1.4 KB each) and re-matched all of them every 25 frames."""
    import tracemalloc

    from edge.metrics import PointMetrics
    from edge.inference.points import Points
    from edge.scoring import RunScores

    kept, run = PointMetrics(), RunScores()
    rng = np.random.default_rng(0)
    frames = []
    for i in range(300):
        gt = rng.uniform(0, 300, (i % 3, 2))
        frames.append((Points(np.asarray(gt + rng.normal(0, 2, gt.shape), np.float32),
                              np.full(len(gt), 0.7, np.float32)), gt))
    for pts, gt in frames:
        kept.update(pts, gt, (256, 320))
    tracemalloc.start()
    for i, (pts, gt) in enumerate(frames):
        if i == 100:
            base = tracemalloc.get_traced_memory()[0]
        run.update(pts, gt, (256, 320), clip="c")
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    want, got = kept.compute(), run.compute()
    assert {k: v for k, v in got.items() if k != "loc_error_px"} == {k: v for k, v in want.items() if k != "loc_error_px"}
    assert got["loc_error_px"] == pytest.approx(want["loc_error_px"])
    assert run.clips_report()["clips"]["c"]["tp"] == want["tp"] and len(run) == 300
    assert grown < 4000  # 200 more frames, nothing kept per frame (PointMetrics keeps ~1 KB each)
    with pytest.raises(ValueError, match="own threshold"):
        run.overall.compute(0.5)


def test_train_and_benchmark_refuse_negative_threads(tmp_path, capsys):
    from benchmarks.run import main as bench
    from edge.cli import run_cli
    from spire.train import main as train

    assert run_cli(train, ["--data", str(tmp_path), "--threads", "-4", "--out", str(tmp_path / "r")]) == 2
    assert "--threads -4" in _one_error_line(capsys.readouterr().err) and not (tmp_path / "r").exists()
    assert bench(["--threads", "-4", "--quick", "--out", str(tmp_path / "b")]) == 2
    assert "--threads -4" in _one_error_line(capsys.readouterr().err)
