"""benchmarks.run: a tiny end-to-end table (export, PTQ, failing row), and the pieces it is built from."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks import device, table
from benchmarks.measure import TimingConfig, measure
from edge.scoring import LabelledFrame
from benchmarks.rows import Row, RowSpec, apply_speedups, plan_rows

REQUIRED = ("backend", "precision", "status", "size_mb", "f1", "latency_ms_p50", "fps", "speedup", "power_w")


# ------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick run: hrpe_nano at 64 px on 2 frames of the built-in clip (+ 2 synthetic speed frames), torch + onnxruntime."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from spire.models import create_model, save_checkpoint

    from benchmarks.run import main

    tmp = tmp_path_factory.mktemp("bench")
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp / "nano.pt", create_model("hrpe_nano"), {})
    out = tmp / "out"
    argv = ["--quick", "--model", str(ckpt), "--imgsz", "64", "--frames", "2", "--official-imgsz", "64",
            "--backends", "torch", "onnxruntime", "--calib-frames", "4", "--repeats", "3",
            "--threads", "1", "--out", str(out), "--log", str(tmp / "results.log"), "--no-progress",
            "--power", "none"]
    rc = main(argv)
    return {"rc": rc, "out": out, "ckpt": ckpt, "tmp": tmp}


def test_quick_run_writes_every_output(quick_run, capsys):
    out = quick_run["out"]
    assert quick_run["rc"] == 0
    for name in ("results.json", "results.csv", "table.md", "run.json", "f1_vs_latency.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    res = json.loads((out / "results.json").read_text())
    assert res[0]["name"].startswith("torch fp32 official-SPIRE") and res[0]["model"] == "official"
    assert res[1]["name"] == "torch fp32 shipped"
    for r in res:
        assert all(k in r for k in REQUIRED), r
    log = (quick_run["tmp"] / "results.log").read_text()
    assert "python -m benchmarks.run" in log and "| onnxruntime int8 shipped | ok | IR_DRONE_154 320x256 |" in log
    run = json.loads((out / "run.json").read_text())
    assert run["threads"] == 1 and run["frames"] == 2 and "1 thread" in run["device"]


def test_failing_row_says_why_and_the_others_run(quick_run):
    from benchmarks.artifacts import ArtifactMaker
    from benchmarks.device import PowerMeter
    from benchmarks.measure import FrameSet
    from benchmarks.run import BenchConfig, run_row

    # (an unknown --backends name is refused before any work now; a row can still fail later)
    cfg = BenchConfig(model=quick_run["ckpt"], out=quick_run["tmp"] / "bad", imgsz=64, progress=False)
    sets = [FrameSet("a", _frames(2)), FrameSet("b", _frames(2), scored=False)]
    maker = ArtifactMaker(quick_run["ckpt"], 64, quick_run["tmp"] / "bad" / "artifacts", search=[])
    bad = run_row(RowSpec("bogus int8 shipped", "bogus", "int8"), cfg, maker, sets, PowerMeter("none"), "dev")
    assert [r.bench for r in bad] == ["a", "b"]
    for r in bad:  # one row per frame set, each saying why
        assert r.status.startswith("export failed: unknown backend 'bogus'") and "\n" not in r.status
        assert r.speedup is None and r.f1 is None
    res = json.loads((quick_run["out"] / "results.json").read_text())
    ok = [r for r in res if r["status"] == "ok"]
    assert {(r["backend"], r["precision"]) for r in ok} >= {
        ("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")}


def test_row_figures_are_consistent(quick_run):
    res = [r for r in json.loads((quick_run["out"] / "results.json").read_text()) if r["status"] == "ok"]
    benches = list(dict.fromkeys(r["bench"] for r in res))
    assert benches == ["IR_DRONE_154 320x256", "synthetic 64x64, speed only"]  # the real clip is scored
    for bench in benches:
        rows_b = [r for r in res if r["bench"] == bench]
        assert rows_b[0]["speedup"] == pytest.approx(1.0)
        for r in rows_b:  # speed-ups are against the first row on the same frames
            assert r["speedup"] == pytest.approx(rows_b[0]["latency_ms_p50"] / r["latency_ms_p50"])
    for r in res:
        assert 0 < r["latency_ms_p50"] <= r["latency_ms_p90"]
        assert 0 < r["infer_ms_p50"] <= r["infer_ms_p90"]
        assert r["fps"] == pytest.approx(1000.0 / r["latency_ms_p50"])
        assert r["size_mb"] > 0 and r["frames"] == 2 and r["power_w"] is None
        assert set(r["stage_ms"]) == {"read", "preprocess", "infer", "decode"}
        assert 0 <= r["decode_share"] < 1 and 0 <= r["overhead_share"] < 1
        if r["bench"] == benches[0]:
            assert all(0 <= r[k] <= 1 for k in ("p", "r", "f1"))
        else:  # synthetic frames measure speed only: accuracy is n/a, not 0
            assert all(r[k] is None for k in ("p", "r", "f1", "fa_per_pixel", "fppi"))
    md = (quick_run["out"] / "table.md").read_text().splitlines()
    speed_line = next(x for x in md if "speed only" in x)
    assert speed_line.split("|")[5:8] == [" n/a "] * 3  # P, R, F1 columns
    res = [r for r in res if r["bench"] == benches[0]]
    by = {(r["backend"], r["precision"]): r for r in res}
    # the torch row runs the same model, preprocessing and decoder as the ONNX FP32 row
    for k in ("p", "r", "f1", "fa_per_pixel"):
        assert by[("torch", "fp32")][k] == pytest.approx(by[("onnxruntime", "fp32")][k])


def test_markdown_table_has_header_and_one_line_per_row(quick_run, capsys):
    res = json.loads((quick_run["out"] / "results.json").read_text())
    md = (quick_run["out"] / "table.md").read_text().strip().splitlines()
    assert md[0].startswith("| row | status | frames | size MB |") and "speed-up" in md[0] and "device" in md[0]
    assert set(md[1]) <= set("|-:")
    assert len(md) == 2 + len(res)
    assert all(line.count("|") == md[0].count("|") for line in md)


def test_exported_artifacts_are_reused_only_when_they_match(quick_run):
    from benchmarks.artifacts import ArtifactMaker

    cache = quick_run["out"] / "artifacts"
    same = ArtifactMaker(quick_run["ckpt"], 64, cache, search=[])
    assert same.find("onnx", "fp32") is not None and same.find("onnx", "int8") is not None
    assert ArtifactMaker(quick_run["ckpt"], 96, cache, search=[]).find("onnx", "fp32") is None
    assert ArtifactMaker(quick_run["ckpt"], 64, cache, search=[], reuse=False).find("onnx", "fp32") is None
    other = quick_run["tmp"] / "other.pt"
    other.write_bytes(Path(quick_run["ckpt"]).read_bytes() + b"\0")  # another checkpoint: another sha256
    assert ArtifactMaker(other, 64, cache, search=[]).find("onnx", "fp32") is None
    model_set = quick_run["tmp"] / "set"  # best.pt + export/, as weights/dense is laid out
    shutil.copytree(cache, model_set / "export")
    shutil.copy(quick_run["ckpt"], model_set / "best.pt")
    found = ArtifactMaker(model_set / "best.pt", 64, quick_run["tmp"] / "empty", search=[]).find("onnx", "int8")
    assert found is not None and found.parent == model_set / "export"


# ------------------------------------------------------------------------------ measure()
class _FakeBackend:
    def __init__(self):
        self.calls = 0

    def infer(self, x):
        self.calls += 1
        return np.zeros((1, 1, x.shape[-1] // 4, x.shape[-1] // 4), np.float32)


class _FakePredictor:
    """Returns the GT points (shifted by `shift` px) with fixed stage timings."""

    def __init__(self, frames, shift=0.0):
        from edge.inference.preprocess import Normalization, PreprocessConfig

        self.cfg = PreprocessConfig(imgsz=32, channels=1, norm=Normalization("mean-std", (0.5,), (0.25,)),
                                    scale_up=False)
        self.gt = {f.name: f.points for f in frames}
        self.shift = shift
        self.backend = _FakeBackend()

    def predict(self, src, name=None, thr=None):
        from edge.inference.points import Points

        xy = self.gt[name] + self.shift
        return Points(xy.astype(np.float32), np.ones(len(xy), np.float32)), \
            {"read": 1.0, "preprocess": 2.0, "infer": 10.0, "decode": 0.5}


def _frames(n=3):
    rng = np.random.default_rng(0)
    return [LabelledFrame(rng.integers(0, 255, (32, 32), dtype=np.uint8), f"f{i}",
                          np.array([[5.0 + i, 7.0], [20.0, 21.0 - i]], np.float32)) for i in range(n)]


def test_measure_counts_accuracy_and_stage_shares():
    frames = _frames()
    row = measure(Row.from_spec(RowSpec("fake", "onnxruntime", "fp32")), _FakePredictor(frames), frames,
                  TimingConfig(warmup=1, min_runs=7, repeats=4), progress=False)
    assert (row.p, row.r, row.f1, row.fa_per_pixel) == (1.0, 1.0, 1.0, 0.0)
    assert row.latency_ms_p50 == pytest.approx(13.5) and row.fps == pytest.approx(1000 / 13.5)
    assert row.decode_share == pytest.approx(0.5 / 13.5) and row.overhead_share == pytest.approx(3.5 / 13.5)
    assert row.stage_ms == {"read": 1.0, "preprocess": 2.0, "infer": 10.0, "decode": 0.5}
    assert row.frames == 3 and row.infer_ms_p50 > 0 and row.power_w is None


def test_measure_scores_misses_and_false_alarms():
    frames = _frames()
    row = measure(Row.from_spec(RowSpec("fake", "onnxruntime", "int8")), _FakePredictor(frames, shift=6.0),
                  frames, TimingConfig(warmup=0, min_runs=1, repeats=1), progress=False)
    assert row.f1 == 0.0 and row.r == 0.0
    assert row.fa_per_pixel == pytest.approx(6 / (3 * 32 * 32)) and row.fppi == pytest.approx(2.0)


def test_measure_reports_power_from_a_sensor(monkeypatch):
    import edge.device.power as power

    class FiveWatts(power.Sensor):
        name, kind = "fake-5W", "power"

        def read(self):
            return 5.0

    monkeypatch.setattr(power, "detect", lambda override=None, root="/sys": (FiveWatts(), []))
    frames = _frames()
    meter = device.PowerMeter()
    row = measure(Row.from_spec(RowSpec("fake", "openvino", "int8")), _FakePredictor(frames), frames,
                  TimingConfig(warmup=0, min_runs=3, repeats=1), power=meter, progress=False)
    assert row.power_w == pytest.approx(5.0) and row.power_source == "fake-5W"
    assert row.energy_mj_per_frame is not None and row.energy_mj_per_frame > 0


def test_power_is_na_without_a_sensor(monkeypatch):
    import edge.device.power as power

    monkeypatch.setattr(power, "detect", lambda override=None, root="/sys": (None, ["rapl (absent)"]))
    meter = device.PowerMeter()
    meter.start()
    assert meter.stop() is None and meter.note == "n/a (no sensor: tried rapl (absent))"


# ------------------------------------------------------------------------------ plan, table, device
def test_plan_puts_the_official_architecture_first_and_skips_missing_runtimes():
    have = {"torch", "onnxruntime", "openvino"}
    specs = plan_rows(available=lambda b: b in have)
    assert specs[0] == RowSpec("torch fp32 official-SPIRE", "torch", "fp32", "official")
    assert specs[1].model == "shipped" and specs[1].backend == "torch"
    assert [(s.backend, s.precision) for s in specs[2:]] == [
        ("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("openvino", "fp32"), ("openvino", "int8")]
    assert not any(s.backend in ("tensorrt", "tflite") for s in specs)
    trt = plan_rows(available=lambda b: True)
    assert [(s.backend, s.precision) for s in trt if s.backend == "tensorrt"] == [("tensorrt", "fp16"), ("tensorrt", "int8")]
    # named explicitly, a missing runtime still gets rows (their status says why); precisions filter
    named = plan_rows(["tensorrt"], ["int8"], available=lambda b: b == "torch")
    assert [(s.backend, s.precision) for s in named] == [("torch", "fp32"), ("tensorrt", "int8")]
    assert plan_rows(["onnxruntime"], available=lambda b: False) == [
        RowSpec("onnxruntime fp32 shipped", "onnxruntime", "fp32"), RowSpec("onnxruntime int8 shipped", "onnxruntime", "int8")]


def test_speedups_use_the_first_row_that_ran():
    rs = [Row("a", "torch", "fp32", "official", status="export failed: x"),
          Row("b", "torch", "fp32", "shipped", status="ok", latency_ms_p50=100.0),
          Row("c", "openvino", "int8", "shipped", status="ok", latency_ms_p50=4.0),
          Row("d", "tflite", "int8", "shipped", status="run failed: y", latency_ms_p50=None)]
    apply_speedups(rs)
    assert [r.speedup for r in rs] == [None, 1.0, 25.0, None]


def test_markdown_keeps_one_line_per_row_whatever_the_status():
    rs = [Row("x", "onnxruntime", "fp32", "shipped", status="run failed: a | b\nc", f1=0.5, speedup=2.0)]
    lines = table.markdown_table(rs).splitlines()
    assert len(lines) == 3 and "run failed: a / b c" in lines[2]
    assert "| 50.0 |" in lines[2] and "| 2.0x |" in lines[2] and "n/a" in lines[2]


def test_csv_flattens_stage_times(tmp_path):
    r = Row("x", "openvino", "int8", "shipped", status="ok", stage_ms={"read": 1.0, "decode": 0.25})
    paths = table.write_results([r], tmp_path)
    header, line = paths["csv"].read_text().splitlines()
    assert "read_ms_p50" in header.split(",") and "decode_ms_p50" in header.split(",")
    assert json.loads(paths["json"].read_text())[0]["stage_ms"] == {"read": 1.0, "decode": 0.25}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_device_string_pc_and_jetson(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Intel(R) Core(TM) i7-1185G7 @ 3.00GHz\n")
    assert device.device_string(4, cpuinfo, tmp_path / "none") == "Intel(R) Core(TM) i7-1185G7 @ 3.00GHz, 4 threads"
    model = tmp_path / "model"
    model.write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\x00")

    class Out:
        stdout = "NV Power Mode: 15W\n0\n"

    monkeypatch.setattr(device.shutil, "which", lambda name: "/usr/sbin/nvpmodel")
    s = device.device_string(6, cpuinfo, model, runner=lambda *a, **k: Out())
    assert s == "NVIDIA Jetson Orin Nano Developer Kit (nvpmodel 15W), 6 threads"
    monkeypatch.setattr(device.shutil, "which", lambda name: None)
    assert device.device_string(1, cpuinfo, model) == "NVIDIA Jetson Orin Nano Developer Kit, 1 thread"


def test_cli_errors_are_one_line(tmp_path, capsys):
    from benchmarks.run import main

    assert main(["--model", str(tmp_path / "missing.pt"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "missing.pt" in err and "\n" not in err
    assert main(["--model", str(tmp_path / "missing.pt"), "--imgsz", "100"]) == 2
    assert "multiple of 32" in capsys.readouterr().err
    assert main(["--official", str(tmp_path / "nope.pth")]) == 2
    assert "nope.pth: no such file" in capsys.readouterr().err


def test_runs_without_torch_on_ready_artifacts(quick_run, tmp_path):
    """A board has no torch: the benchmark runs the shipped exports it finds (weights/export/)."""
    import os
    import shutil
    import subprocess
    import sys

    shipped = tmp_path / "weights"
    for folder in (quick_run["out"] / "artifacts").iterdir():
        if folder.name.endswith("_onnx"):
            shutil.copytree(folder, shipped / "export" / folder.name)
    code = ("import sys; sys.modules['torch'] = None\n"
            "from benchmarks.run import main\n"
            f"sys.exit(main(['--imgsz', '64', '--frames', '2', '--quick', '--backends', 'onnxruntime', "
            f"'--repeats', '2', '--threads', '1', '--out', {str(tmp_path / 'out')!r}, '--no-progress', "
            "'--power', 'none']))\n")
    env = {**os.environ, "SPIRE_EDGE_WEIGHTS": str(shipped)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(r["backend"], r["precision"], r["status"]) for r in res] == [
        ("onnxruntime", "fp32", "ok"), ("onnxruntime", "int8", "ok")] * 2  # the built-in clip, then 64² speed
    assert all(str(shipped) in r["artifact"] for r in res) and res[0]["speedup"] == pytest.approx(1.0)


def test_board_profile_sets_defaults_and_flags_win(tmp_path):
    from benchmarks.run import build_parser, config_from_args

    prof = tmp_path / "profile.json"
    prof.write_text(json.dumps({"name": "test-board", "backend": "openvino", "imgsz": 320, "threads": 3,
                                "power": "none"}))
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"x")
    cfg = config_from_args(build_parser().parse_args(["--board", str(prof), "--model", str(ckpt)]))
    assert (cfg.imgsz, cfg.threads, cfg.power, cfg.frames, cfg.log is not None) == (320, 3, "none", 100, True)
    cfg = config_from_args(build_parser().parse_args(
        ["--board", str(prof), "--model", str(ckpt), "--imgsz", "128", "--threads", "1", "--quick"]))
    assert (cfg.imgsz, cfg.threads, cfg.frames, cfg.calib_frames, cfg.log) == (128, 1, 8, 16, None)
