"""INT8: calibration data, per-backend PTQ artifacts, TensorRT rules, graph rewrites, QAT, errors.

Models are tiny (a 3-conv blob detector for point agreement, hrpe_nano for the HRPE graph) at
64 px with 8 calibration frames, so the whole file runs in well under a minute on 2 cores.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from edge.errors import BackendUnavailable, DatasetError, SpireEdgeError  # noqa: E402
from edge.inference.preprocess import Normalization, PreprocessConfig  # noqa: E402
from edge.scoring import LabelledFrame  # noqa: E402
from tests.conftest import nuaa_subset, shared  # noqa: E402

NUAA = shared("data", "nuaa-sirst")
S = 64
NORM = Normalization("mean-std", (0.45,), (0.25,))
CFG = PreprocessConfig(S, 1, NORM, "center", False)


class BlobNet(torch.nn.Module):
    """Stride-4 centre-surround detector: peaks on small bright targets (and some clutter)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv1 = torch.nn.Conv2d(1, 8, 3, 2, 1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, 2, 1)
        self.final_layer = torch.nn.Conv2d(8, 1, 1)
        with torch.no_grad():
            for m in (self.conv1, self.conv2, self.final_layer):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.02)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.01)  # biases must stay legal for TensorRT
            k = -torch.ones(3, 3) / 8
            k[1, 1] = 1.0
            self.conv1.weight[0, 0] = k
            self.conv2.weight[0] = 0
            self.conv2.weight[0, 0] = 1 / 3
            self.final_layer.weight[0] = 0
            self.final_layer.weight[0, 0] = 1.0
            self.final_layer.bias[0] = -0.1

    def forward(self, x):
        return self.final_layer(torch.relu(self.conv2(torch.relu(self.conv1(x)))))


def blob_source():
    from export.common import source_from_model

    meta = {"preprocess": CFG.to_dict(),
            "codec": {"type": "gaussian", "input_size": S, "stride": 4, "thr": 0.5, "vr": 0.2, "top_k": 8}}
    return source_from_model(BlobNet().eval(), meta=meta, arch="blobnet", arch_kwargs={})


def available(backend: str) -> bool:
    from quantize.recipes import RECIPES

    return all(importlib.util.find_spec(m) is not None for m, _ in RECIPES[backend].needs)


@pytest.fixture(scope="module")
def nuaa_fixture(tmp_path_factory):
    """A 10-frame NUAA-layout copy (train list only)."""
    if not NUAA.is_dir():
        pytest.skip(f"{NUAA}: NUAA-SIRST not present (the shared data belong in ../shared beside the checkout)")
    names = (NUAA / "train.txt").read_text().split()[:10]
    return nuaa_subset(tmp_path_factory.mktemp("nuaa"), names,
                       {"train": names, "tiny": names[:3], "test": names[:8]})


# ------------------------------------------------------------------------------ calibration
def test_calibration_real_frames_runtime_preprocess(nuaa_fixture):
    from quantize.calibration import calibration_source

    src = calibration_source(nuaa_fixture, "train", frames=8, cfg=CFG, progress=False)
    assert len(src) == 8
    flags = [f.targets > 0 for f in src.frames]
    assert flags == sorted(flags, reverse=True) and flags[0]  # target-bearing frames first
    assert all(f.frame.shape[0] <= S and f.frame.shape[1] <= S for f in src.frames)  # native S×S crops
    assert all(f.native for f in src.frames)  # NUAA frames are larger than 64: cut, never scaled
    a, b = list(src), list(src)  # re-iterable, deterministic
    assert all(x.shape == (1, 1, S, S) and x.dtype == np.float32 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert src.info() == {"source": str(nuaa_fixture), "frames": 8, "split": "train",
                          "target_frames": sum(flags)}
    # the crop around a target keeps a bright peak: the input is not a flat background
    assert max(float(x.max()) for x in a) > 1.0


def test_several_calibration_roots_share_the_frames_equally(nuaa_fixture, tmp_path):
    """A model that runs on two kinds of frames is calibrated on both: each root gives its share."""
    from quantize.calibration import calibration_source

    names = (NUAA / "train.txt").read_text().split()[10:16]
    other = nuaa_subset(tmp_path / "other", names, {"train": names})
    src = calibration_source([nuaa_fixture, other], "train", frames=9, cfg=CFG, progress=False)
    picked = [f.name for f in src.frames]
    assert len(picked) == 9 and sum(n in names for n in picked) == 4  # 5 + 4: the first root takes the remainder
    assert src.info()["source"] == f"{nuaa_fixture}+{other}"
    with pytest.raises(DatasetError, match="test"):
        calibration_source([nuaa_fixture, other], "test", frames=8, cfg=CFG, progress=False)


def test_calibration_errors_are_one_line(nuaa_fixture, capsys):
    from quantize.calibration import calibration_source

    with pytest.raises(DatasetError, match="test set") as e:
        calibration_source(nuaa_fixture, "test", frames=8, cfg=CFG, progress=False)
    assert "\n" not in str(e.value)
    with pytest.raises(DatasetError, match="at least 8") as e:
        calibration_source(nuaa_fixture, "tiny", frames=8, cfg=CFG, progress=False)
    assert str(nuaa_fixture) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(DatasetError, match="--frames 3"):
        calibration_source(None, frames=3, cfg=CFG)
    src = calibration_source(None, frames=8, cfg=CFG, progress=False)
    err = capsys.readouterr().err
    assert "no --data given" in err and "synthetic" in err
    assert src.info()["source"] == "synthetic" and len(src) == 8


def test_ort_reader_rewinds():
    from quantize.calibration import calibration_source, ort_reader

    r = ort_reader(calibration_source(None, frames=8, cfg=CFG, progress=False))
    first = [r.get_next() for _ in range(9)]
    assert first[-1] is None and all(d["images"].shape == (1, 1, S, S) for d in first[:-1])
    r.rewind()
    assert np.array_equal(r.get_next()["images"], first[0]["images"]) and len(r) == 8


# ------------------------------------------------------------------------------ PTQ artifacts
BACKENDS = [b for b in ("onnxruntime", "openvino", "tflite", "tensorrt") if available(b)]


@pytest.fixture(scope="module")
def ptq_run(tmp_path_factory):
    from quantize.job import Int8Job
    from quantize.ptq import run_ptq

    out = tmp_path_factory.mktemp("ptq")
    job = Int8Job(backend=",".join(BACKENDS), frames=8, val_frames=16, out=str(out), bench_runs=0, threads=1,
                  max_drop=None)
    folders = run_ptq(job, src=blob_source())
    return {b: f for b, f in zip(BACKENDS, folders)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_ptq_artifact_loads_and_agrees_with_fp32(ptq_run, backend):
    from edge.backends import load_backend
    from edge.model.sidecar import read_sidecar

    folder = ptq_run[backend]
    fmt = {"onnxruntime": "onnx"}.get(backend, backend)
    assert folder.name == f"blobnet_{S}_int8_{fmt}" + ("_model" if fmt == "openvino" else "")
    meta = read_sidecar(folder)
    assert meta.precision == "int8" and meta.format == fmt
    assert meta.calibration["source"] == "synthetic" and meta.calibration["frames"] == 8
    rep = json.loads((folder / "fidelity.json").read_text())
    for k in ("fp32_f1", "int8_f1", "identical_frames", "mean_shift_px", "fp32_precision", "int8_recall",
              "int8_fa_per_pixel"):
        assert k in rep
    assert rep["frames"] == 16 and rep["fp32_tp"] > 0  # the reference really finds targets
    assert rep["int8_thr_source"] == "fp32 sidecar" and meta.codec["thr"] == rep["int8_thr"] == rep["fp32_thr"]
    assert rep["identical_frames"] >= 0.7 and rep["mean_shift_px"] < 0.25
    assert abs(rep["fp32_f1"] - rep["int8_f1"]) <= 0.1
    if backend != "tensorrt":  # the runtime loads it and returns the heatmap shape
        be = load_backend(folder, threads=1)
        y = be.infer(np.zeros((1, 1, S, S), np.float32))
        assert np.asarray(y).size == (S // 4) ** 2


def test_ptq_follows_the_architecture_recipe_unless_told(capsys):
    """The plain command gives the INT8 model that ships: the rung's FP32 layers and calibration
    statistic come from its ModelCfg.int8; --ignored-scope / --calibrate-method override it."""
    from export.common import source_from_model
    from quantize.ptq import backend_recipe
    from spire.models import create_model

    s_src = source_from_model(create_model("spire_s"), imgsz=S)
    assert backend_recipe(s_src, "openvino", None, None) == (("gate", "neck", "conv1"), "MinMax")
    assert "keeps gate, neck, conv1 in FP32" in capsys.readouterr().out
    n_src = source_from_model(create_model("spire_n"), imgsz=S)
    assert backend_recipe(n_src, "openvino", None, None)[0] == ("gate", "neck")
    assert backend_recipe(n_src, "onnxruntime", None, None) == ((), "Percentile")
    assert backend_recipe(n_src, "openvino", [], None)[0] == ()  # `--ignored-scope` alone: none
    assert backend_recipe(n_src, "tensorrt", ["blocks.0"], "Entropy") == (("blocks.0",), "Entropy")
    assert backend_recipe(blob_source(), "openvino", None, None) == ((), "MinMax")  # no recipe: defaults


def test_histogram_calibration_keeps_what_fits_in_memory(monkeypatch, capsys):
    """Percentile holds every activation: the plain command calibrates on an evenly spaced subset
    that fits (and says so) instead of failing; MinMax keeps every frame."""
    import quantize.onnx_int8 as oi
    from quantize.calibration import calibration_source
    from quantize.ptq import fit_histogram

    source = calibration_source(None, "train", 8, CFG, 0, 1)
    monkeypatch.setattr(oi, "histogram_frame_budget", lambda onnx32: 3)
    sub = fit_histogram(source, "model.onnx", "Percentile")
    assert len(sub) == 3 and sub.info()["frames"] == 3
    assert [f.frame is source.frames[i].frame for f, i in zip(sub.frames, (0, 3, 7))] == [True] * 3
    assert "3 of 8 frames" in capsys.readouterr().err
    assert fit_histogram(source, "model.onnx", "MinMax") is source
    with pytest.raises(SpireEdgeError, match="--frames 3"):
        oi._check_histogram_memory("model.onnx", 8, "Percentile")


def test_ptq_writes_the_recipe_it_used_into_the_sidecar(tmp_path):
    from edge.model.sidecar import read_sidecar
    from export.common import source_from_model
    from quantize.job import Int8Job
    from quantize.ptq import run_ptq
    from spire.models import create_model

    torch.manual_seed(0)
    src = source_from_model(create_model("spire_s").eval(), imgsz=S)
    job = Int8Job(backend="openvino", frames=8, out=str(tmp_path), bench_runs=0, threads=1, fidelity=False)
    (folder,) = run_ptq(job, src=src)
    assert read_sidecar(folder).extra["ignored_scope"] == ["gate", "neck", "conv1"]


def test_ptq_int8_is_really_int8(ptq_run):
    import onnx
    from onnx import numpy_helper

    from quantize.onnx_int8 import qdq_counts

    if "onnxruntime" in ptq_run:
        path = next(ptq_run["onnxruntime"].glob("*.onnx"))
        m = onnx.load(str(path))
        counts = qdq_counts(m)
        assert counts.get("QuantizeLinear", 0) >= 2 and counts.get("DequantizeLinear", 0) >= 3
        inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
        zps = [inits[n.input[2]].dtype for n in m.graph.node if n.op_type == "QuantizeLinear"]
        assert set(zps) == {np.dtype(np.uint8)}  # unsigned activations: the fast x86 path
        float_convs = [n for n in m.graph.node if n.op_type == "Conv" and n.input[1] in inits]
        assert len(float_convs) == 1 and float_convs[0].output[0] == "heatmap"  # only the 1×1 head is float
    if "openvino" in ptq_run:
        from quantize.openvino_int8 import fake_quantize_count

        assert fake_quantize_count(next(ptq_run["openvino"].glob("*.xml"))) >= 2
    if "tflite" in ptq_run:
        from export.tflite import interpreter

        it = interpreter(next(ptq_run["tflite"].glob("*.tflite")))
        assert it.get_input_details()[0]["dtype"] == np.int8  # full-integer
        assert it.get_output_details()[0]["dtype"] == np.float32  # float head keeps a float output
    if "tensorrt" in ptq_run:
        from quantize.tensorrt_int8 import check_trt_rules

        folder = ptq_run["tensorrt"]
        assert check_trt_rules(next(folder.glob("*.onnx"))) == []
        assert (folder / "build_engine.sh").is_file()


# ------------------------------------------------------------------------------ TensorRT rules
def test_symmetrize_qdq_meets_tensorrt_rules(tmp_path):
    import onnx
    import onnxruntime as ort

    from export.onnx import build_onnx
    from quantize.calibration import calibration_source, ort_reader
    from quantize.onnx_int8 import quantize_onnx
    from quantize.tensorrt_int8 import check_trt_rules, symmetrize_qdq

    src = blob_source()
    fp32, _ = build_onnx(src, tmp_path, "fp32.onnx")
    u8 = quantize_onnx(fp32, tmp_path / "u8.onnx", ort_reader(calibration_source(None, frames=8, cfg=CFG, progress=False)))
    bad = check_trt_rules(u8)
    assert any("uint8" in b for b in bad)
    sym = symmetrize_qdq(onnx.load(str(u8)))
    assert check_trt_rules(sym) == []
    onnx.save(sym, str(tmp_path / "sym.onnx"))
    x = np.random.default_rng(0).standard_normal((1, 1, S, S)).astype(np.float32)
    a = ort.InferenceSession(str(u8)).run(None, {"images": x})[0]
    b = ort.InferenceSession(str(tmp_path / "sym.onnx")).run(None, {"images": x})[0]
    assert np.abs(a - b).max() < 0.1 * np.abs(a).max()  # same model, one bit coarser activations


# ------------------------------------------------------------------------------ graph rewrite
def test_int8_graph_rewrite_is_exact_on_hrpe(tmp_path):
    import onnx

    from export.common import source_from_model
    from export.onnx import build_onnx
    from quantize.graph_opt import optimize_for_int8
    from spire.models import create_model

    src = source_from_model(create_model("hrpe_nano").eval(), imgsz=S, arch="hrpe_nano")
    fp32, _ = build_onnx(src, tmp_path, "fp32.onnx")
    rep = optimize_for_int8(str(fp32), str(tmp_path / "g.onnx"))
    assert rep["shuffles"] > 0 and rep["pools"] > 0 and rep["max_abs_diff"] <= 1e-5
    g = onnx.load(str(tmp_path / "g.onnx"))
    ops = {n.op_type for n in g.graph.node}
    assert "Transpose" not in ops and "ReduceMean" not in ops and "Gather" in ops
    # --ignored-scope by module path reaches every op of the module, not only its convolutions
    from quantize.onnx_int8 import expand_scope

    hit = set(expand_scope(g, ("stage2",)))
    kinds = {n.op_type for n in g.graph.node if n.name in hit}
    assert {"Conv", "Mul", "Concat", "Sigmoid"} <= kinds
    assert not any(n.name in hit for n in g.graph.node if n.input and n.input[0] == "images")


# ------------------------------------------------------------------------------ errors
def test_unknown_backend_and_missing_runtime(monkeypatch):
    from quantize.recipes import check_runtime, resolve_backends

    with pytest.raises(SpireEdgeError, match="did you mean 'openvino'") as e:
        resolve_backends("openvin")
    assert "\n" not in str(e.value)
    assert resolve_backends("all") == ["onnxruntime", "openvino", "tflite", "tensorrt"]
    monkeypatch.setitem(sys.modules, "nncf", None)  # import nncf -> ImportError
    with pytest.raises(BackendUnavailable, match=r"pip install 'spire-edge\[openvino\]'") as e:
        check_runtime("openvino")
    assert "\n" not in str(e.value)


def test_cli_error_is_one_line(capsys, tmp_path):
    from quantize.ptq import main

    assert main(["--weights", str(tmp_path / "none.pt"), "--backend", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown --backend 'bogus'")


def test_int8_command_lines_build_the_job_whose_fields_are_their_defaults():
    """Defaults are written once, in Int8Job / QatOptions: a bare command line gives the default job,
    --no-fidelity / --allow-drop / --ignored-scope become its fields."""
    import dataclasses

    from quantize import ptq, qat
    from quantize.job import Int8Job, QatOptions

    assert Int8Job.from_args(ptq._parser().parse_args([])) == Int8Job()
    args = ["--no-fidelity", "--allow-drop", "--ignored-scope", "--data", "d"]
    job = Int8Job.from_args(ptq._parser().parse_args(args))
    assert job == Int8Job(fidelity=False, max_drop=None, ignored_scope=(), data=("d",))  # --data takes roots
    a = qat._parser().parse_args(["--weights", "w", "--data", "d", "e", "--epochs", "3"])
    assert Int8Job.from_args(a, qat.QAT_JOB) == dataclasses.replace(qat.QAT_JOB, weights="w", data=("d", "e"))
    assert QatOptions.from_args(a) == QatOptions(epochs=3)


# ------------------------------------------------------------------------------ QAT
def test_qat_tiny_exports_real_qdq(nuaa_fixture, tmp_path):
    import onnx
    import onnxruntime as ort

    from quantize import qat
    from quantize.job import Int8Job, QatOptions
    from spire.models import create_model, save_checkpoint

    ck = tmp_path / "nano.pt"
    save_checkpoint(ck, create_model("hrpe_nano"), {})
    net = qat._fake_quant_model(create_model("hrpe_nano").eval(), 1, S)
    assert qat._count_fake_quant(net) > 10  # fake quantization is in the training graph
    job = Int8Job(weights=str(ck), data=(str(nuaa_fixture),), out=str(tmp_path / "qat"), backend="onnxruntime",
                  imgsz=S, val_frames=2, bench_runs=0, threads=1, max_drop=None)
    folders = qat.run_qat(job, QatOptions(epochs=1, batch=2, steps=2, max_val_frames=2, quiet=True))
    path = next(folders[0].glob("*.onnx"))
    m = onnx.load(str(path))
    assert sum(n.op_type == "QuantizeLinear" for n in m.graph.node) > 10
    y = ort.InferenceSession(str(path)).run(None, {"images": np.zeros((1, 1, S, S), np.float32)})[0]
    assert y.shape == (1, 1, S // 4, S // 4) and np.isfinite(y).all()
    meta = json.loads((folders[0] / "metadata.json").read_text())
    assert meta["calibration"]["method"] == "qat" and meta["extra"]["qat"]["epochs"] == 1
    assert (tmp_path / "qat" / "log.csv").is_file()


@pytest.mark.skipif(not available("tflite"), reason="litert-torch not installed")
def test_tflite_int8_of_hrpe_is_full_integer_and_tracks_fp32(tmp_path):
    """LiteRT INT8 comes from the AI Edge Quantizer on the checked FP32 .tflite: int8 input and
    weights, float output (head kept float), and a map that tracks FP32 (checked inside)."""
    from export.common import source_from_model
    from export.tflite import interpreter
    from quantize.calibration import calibration_source
    from quantize.tflite_int8 import quantize_tflite
    from spire.models import create_model

    src = source_from_model(create_model("hrpe_nano").eval(), imgsz=S, arch="hrpe_nano")
    cs = calibration_source(None, frames=8, cfg=PreprocessConfig.from_dict(src.preprocess), progress=False)
    path = quantize_tflite(src.model, cs, tmp_path / "nano_int8.tflite")  # raises when INT8 drifts
    it = interpreter(path)
    assert it.get_input_details()[0]["dtype"] == np.int8
    assert it.get_output_details()[0]["dtype"] == np.float32
    kinds = {str(d["dtype"]) for d in it.get_tensor_details()}
    assert "<class 'numpy.int8'>" in kinds
    assert not list(tmp_path.glob("*.tmp"))


def test_fidelity_repicks_the_int8_threshold_on_labelled_frames(monkeypatch, tmp_path):
    """An INT8 map that peaks at half of FP32's keeps every target once its threshold is re-picked."""
    from edge.inference.points import Points
    from quantize import fidelity

    class FakePredictor:
        def __init__(self, path, threads=None):
            self.scale = 0.5 if "int8" in str(path) else 1.0
            self.conf = 0.6

        def predict(self, frame, name, thr=None):
            k = int(name)
            xy = np.array([[10.0 + k, 20.0], [50.0, 40.0 + k]], np.float32)
            sc = np.array([0.9, 0.3], np.float32) * self.scale  # a target and a clutter peak
            keep = sc >= (self.conf if thr is None else thr)
            return Points(xy[keep], sc[keep]), {"infer": 1.0}

    monkeypatch.setattr(fidelity, "Predictor", FakePredictor)
    frames = [LabelledFrame(np.zeros((64, 64), np.uint8), str(k), np.array([[10.0 + k, 20.0]], np.float32))
              for k in range(6)]
    vals = fidelity.ValSet("fixture", "val", [f.name for f in frames], lambda i: frames[i])
    rep = fidelity.fidelity_report("fp32_model", "int8_model", vals, bench_runs=0)
    assert rep["fp32_f1"] == 1.0 and rep["int8_f1"] == 1.0 and rep["identical_frames"] == 1.0
    assert 0.15 < rep["int8_thr"] <= 0.45 and rep["fp32_thr"] == 0.6 and rep["int8_thr_source"] == "validation"
    off = fidelity.fidelity_report("fp32_model", "int8_model", vals, bench_runs=0, retune_thr=False)
    assert off["int8_f1"] == 0.0  # FP32's threshold on the half-scale map finds nothing


def test_recheck_cli_errors_are_one_line(tmp_path, capsys):
    from quantize.recheck import main

    (tmp_path / "a").mkdir()
    assert main(["--fp32", str(tmp_path / "a"), "--int8", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "metadata.json" in err[0]


def _fake_artifact(root: Path, name: str, fmt: str, precision: str, report: dict | None = None) -> Path:
    """A folder with a model file, a valid sidecar and (INT8) a fidelity report: what quantize.pick reads."""
    from edge.model.sidecar import ModelMeta, file_sha256, io_specs, write_sidecar

    folder = root / name
    folder.mkdir(parents=True)
    f = folder / f"{name}.bin"
    f.write_bytes(name.encode())
    inp, out = io_specs(64, 1, stride=4)
    write_sidecar(folder, ModelMeta(arch="spire_m", format=fmt, model_file=f.name, model_sha256=file_sha256(f),
                                    precision=precision, input=inp, output=out,
                                    preprocess={"imgsz": 64, "channels": 1}, codec={"type": "prps", "input_size": 64, "thr": 0.5}))
    if report is not None:
        (folder / "fidelity.json").write_text(json.dumps(report))
    return folder


def test_pick_ships_the_better_int8_and_writes_measured_defaults(tmp_path):
    from edge.model import zoo
    from quantize.pick import main

    exp, qat = tmp_path / "export", tmp_path / "qat"
    for fmt in ("onnx", "openvino", "tflite"):
        _fake_artifact(exp, f"m_fp32_{fmt}", fmt, "fp32")
    _fake_artifact(exp, "m_int8_onnx", "onnx", "int8", {"fp32_f1": 0.88, "int8_f1": 0.80, "speedup": 3.0})
    _fake_artifact(exp, "m_int8_openvino", "openvino", "int8", {"fp32_f1": 0.88, "int8_f1": 0.878, "speedup": 3.5})
    _fake_artifact(exp, "m_int8_tflite", "tflite", "int8", {"fp32_f1": 0.88, "int8_f1": 0.90, "speedup": 0.8})
    _fake_artifact(qat, "m_int8_onnx", "onnx", "int8", {"fp32_f1": 0.88, "int8_f1": 0.879, "speedup": 2.9})
    _fake_artifact(qat, "m_int8_openvino", "openvino", "int8", {"fp32_f1": 0.88, "int8_f1": 0.85, "speedup": 3.4})
    assert main([str(exp), "--qat", str(qat)]) == 0
    assert json.loads((exp / "m_int8_onnx" / "fidelity.json").read_text())["int8_f1"] == 0.879  # QAT won
    assert json.loads((exp / "m_int8_onnx" / "fidelity_ptq.json").read_text())["int8_f1"] == 0.80
    assert json.loads((exp / "m_int8_openvino" / "fidelity.json").read_text())["int8_f1"] == 0.878  # PTQ kept
    assert (qat / "m_int8_openvino").is_dir() and not (qat / "m_int8_onnx").exists()
    defaults = json.loads((exp / zoo.DEFAULTS_NAME).read_text())
    # INT8 only when within 0.5 point and faster: onnx (-0.1, 2.9x) yes, openvino (-0.2, 3.5x) yes,
    # tflite (+2.0 but 0.8x) no
    assert defaults == {"onnx": "m_int8_onnx", "openvino": "m_int8_openvino", "tflite": "m_fp32_tflite"}


def test_pick_sets_one_threshold_for_the_checkpoint_and_every_artifact(tmp_path, capsys):
    from edge.model.sidecar import read_sidecar
    from quantize.pick import main

    root = tmp_path / "weights"
    exp = root / "export"
    a = _fake_artifact(exp, "m_fp32_onnx", "onnx", "fp32")
    b = _fake_artifact(exp, "m_int8_onnx", "onnx", "int8", {"fp32_f1": 0.9, "int8_f1": 0.9, "speedup": 2.0})
    ckpt = _fake_artifact(tmp_path, "weights_ckpt", "onnx", "fp32")  # stands in for best.pt's sidecar
    (ckpt / "metadata.json").rename(root / "metadata.json")
    assert main([str(exp), "--thr", "0.3"]) == 2                    # a threshold needs its reason
    assert "--thr-rule" in capsys.readouterr().err
    assert main([str(exp), "--thr", "0.3", "--thr-rule", "best F1 on val"]) == 0
    for folder in (a, b):
        m = read_sidecar(folder)
        assert m.codec["thr"] == 0.3 and m.extra["operating_point"] == {"thr": 0.3, "replaces": 0.5,
                                                                         "rule": "best F1 on val"}
    assert json.loads((root / "metadata.json").read_text())["codec"]["thr"] == 0.3
    assert main([str(exp), "--fit", "pad"]) == 2                     # a policy comes with its threshold
    assert main([str(exp), "--thr", "0.3", "--fit", "pad", "--thr-rule", "padded frames on val"]) == 0
    for side in (a / "metadata.json", b / "metadata.json", root / "metadata.json"):
        meta = json.loads(side.read_text())
        assert meta["preprocess"]["fit"] == "pad" and meta["extra"]["operating_point"]["fit"] == "pad"


def test_repicking_the_same_threshold_keeps_what_it_first_replaced(tmp_path):
    """Re-exporting one artifact and re-applying the pick must not rewrite 'replaces' as the pick itself."""
    import shutil

    from edge.model.sidecar import read_sidecar
    from quantize.pick import main

    root = tmp_path / "weights"
    exp = root / "export"
    _fake_artifact(exp, "m_fp32_openvino", "openvino", "fp32")
    ckpt = _fake_artifact(tmp_path, "weights_ckpt", "onnx", "fp32")
    (ckpt / "metadata.json").rename(root / "metadata.json")
    assert main([str(exp), "--thr", "0.3", "--thr-rule", "val"]) == 0
    shutil.rmtree(exp / "m_fp32_openvino")                         # a re-export: a fresh sidecar at 0.3
    fresh = _fake_artifact(exp, "m_fp32_openvino", "openvino", "fp32")
    side = json.loads((fresh / "metadata.json").read_text())
    side["codec"]["thr"] = 0.3
    (fresh / "metadata.json").write_text(json.dumps(side))
    assert main([str(exp), "--thr", "0.3", "--thr-rule", "val"]) == 0
    assert read_sidecar(fresh).extra["operating_point"]["replaces"] == 0.5
    assert json.loads((root / "metadata.json").read_text())["extra"]["operating_point"]["replaces"] == 0.5


@pytest.mark.skipif(not (NUAA / "images").is_dir(), reason="needs ../shared/data/nuaa-sirst")
def test_fidelity_uses_the_users_own_frames_when_their_data_has_no_val_list(tmp_path, capsys):
    """A user's dataset with only train.txt: the report scores FP32 against INT8 on those real frames,
    not on synthetic ones (a fine-tuned model's report read "F1 0.00 -> 0.00 on 50 synthetic frames")."""
    from quantize.fidelity import default_val

    root = tmp_path / "mine"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for n in ("Misc_119", "Misc_64"):
        shutil.copy(NUAA / "images" / f"{n}.png", root / "images")
        shutil.copy(NUAA / "masks" / f"{n}_pixels0.png", root / "masks")
    (root / "train.txt").write_text("Misc_119\nMisc_64\n")
    assert default_val(root, None, "val", "train") == (root, "train")
    assert "no 'val' list" in capsys.readouterr().err
    assert default_val(root, None, "val", "nosuch") == (None, "val")  # nothing real: synthetic, said in a warning
    assert default_val(root, "other", "val") == ("other", "val")  # --val-data wins
