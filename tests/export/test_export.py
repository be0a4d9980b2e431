"""python -m export: every runnable artifact reloads through edge's backend and decodes the torch points.

Small and fast: hrpe_nano at 64 px, its head rescaled so the heatmap has real peaks (a random
init gives a flat map whose empty point sets would match trivially).
"""
import json
import os
import shutil
import stat
import subprocess

import numpy as np
import pytest
import torch

from edge.errors import SidecarError, SpireEdgeError
from edge.inference.preprocess import preprocess
from edge.model.sidecar import read_sidecar
from edge.datasets.synthetic import make_frame
from export.common import ExportError, round_imgsz, source_from_model
from export.formats import FORMATS, check_precision, get_format

S = 64


def _model():
    from spire.models import create_model
    torch.manual_seed(0)
    m = create_model("hrpe_nano").eval()
    x = torch.randn(4, m.cfg.in_chans, S, S)
    with torch.no_grad():
        h = m(x)
        scale = 1.0 / float(h.amax() - h.mean())
        m.final_layer.weight.mul_(scale)
        m.final_layer.bias.copy_(m.final_layer.bias * scale - float(h.mean()) * scale)
    return m


@pytest.fixture(scope="module")
def src():
    return source_from_model(_model(), imgsz=S)


@pytest.fixture(scope="module")
def frames():
    return [make_frame(size=(48, 60), seed=i, n_targets=2).frame for i in range(4)]


def _points(meta, frames, run):
    """Decoded points per frame for `run(x) -> heatmap`, via the sidecar's preprocess and codec."""
    cfg, codec = meta.preprocess_config(), meta.build_codec()
    out = []
    for f in frames:
        x, lb = preprocess(f, cfg)
        out.append(codec.decode(run(x[None]), lb))
    return out


def _torch_run(src):
    return lambda x: src.torch_output(np.ascontiguousarray(x, np.float32))


@pytest.fixture(scope="module")
def exported(src, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    arts = {}
    for name in ("onnx", "openvino", "tflite", "tensorrt"):
        arts[name] = FORMATS[name].exporter_fn()(src, out, precision="fp32")
    return out, arts


def test_format_table_and_typo_suggestions():
    with pytest.raises(SpireEdgeError, match=r"did you mean 'onnx'\?"):
        get_format("onx")
    with pytest.raises(SpireEdgeError, match=r"did you mean 'fp16'\?"):
        check_precision(get_format("tflite"), "fp61")
    f = get_format("OpenVINO")
    assert f.folder("runs/export", "hrpe", 512, "int8").name == "hrpe_512_int8_openvino_model"
    assert f.model_file("hrpe", 512, "int8") == "hrpe_512_int8.xml"
    assert FORMATS["tflite"].model_file("hrpe", 512, "int8") == "hrpe_512_int8.tflite"
    assert FORMATS["tensorrt"].folder("o", "hrpe", 512, "int8").name == "hrpe_512_int8_tensorrt"


def test_imgsz_rounded_up_with_message(capsys):
    assert round_imgsz(500) == 512 and round_imgsz(64) == 64
    assert "rounded up to 512" in capsys.readouterr().out
    with pytest.raises(ExportError):
        round_imgsz(0)


@pytest.mark.parametrize("name", ["onnx", "openvino", "tflite"])
def test_fp32_artifact_reloads_and_decodes_identical_points(exported, src, frames, name):
    from edge.backends import load_backend
    folder = exported[1][name]
    meta = read_sidecar(folder)
    assert meta.format == name and meta.precision == "fp32" and meta.imgsz == S
    assert meta.input["shape"] == [1, 1, S, S] and meta.output["shape"] == [1, 1, S // 4, S // 4]
    assert meta.source_checkpoint is None and meta.extra["golden_rel_diff"] < 1e-3
    backend = load_backend(folder)
    ref = _points(meta, frames, _torch_run(src))
    got = _points(meta, frames, backend.infer)
    assert sum(len(p) for p in ref) > 0, "the test model should produce points"
    for r, g in zip(ref, got):
        assert len(r) == len(g)
        np.testing.assert_allclose(g.xy, r.xy, atol=1e-3)
        np.testing.assert_allclose(g.scores, r.scores, atol=1e-4)


def test_onnx_target_runs_frames_at_their_own_size(tmp_path):
    """The `onnx` target takes any H x W (what onnxruntime runs: a 320x256 clip at its own size, not
    padded to S, which changes an SE-gated model's scores); TensorRT's ONNX stays static."""
    import onnx

    from edge.backends import load_backend
    from spire.models import create_model

    torch.manual_seed(0)
    s = source_from_model(create_model("spire_n").eval(), imgsz=S)
    folder = FORMATS["onnx"].exporter_fn()(s, tmp_path, precision="fp32")
    assert read_sidecar(folder).extra["input_hw"] == "any (multiples of 32)"
    be = load_backend(folder)
    assert be.dynamic_input
    x = np.random.default_rng(0).standard_normal((1, 1, 96, 160)).astype(np.float32)
    np.testing.assert_allclose(be.infer(x), s.torch_output(x), atol=1e-4)
    trt = FORMATS["tensorrt"].exporter_fn()(s, tmp_path, precision="fp32", lint=False)
    dims = onnx.load(str(trt / read_sidecar(trt).model_file)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 1, S, S]


@pytest.mark.parametrize("name", ["onnx", "openvino"])
def test_fp16_artifacts_agree_with_torch(src, frames, tmp_path, name):
    from edge.backends import load_backend
    folder = FORMATS[name].exporter_fn()(src, tmp_path, precision="fp16")
    assert folder.name == f"hrpe_nano_{S}_fp16{FORMATS[name].folder_suffix}"
    meta = read_sidecar(folder)
    assert meta.precision == "fp16" and meta.extra["golden_rel_diff"] < 1e-2
    ref = _points(meta, frames, _torch_run(src))
    got = _points(meta, frames, load_backend(folder).infer)
    for r, g in zip(ref, got):
        assert len(r) == len(g) and (len(r) == 0 or np.abs(g.xy - r.xy).max() < 0.5)


def test_tensorrt_folder_passes_offline_checks(exported, src):
    import onnx
    from export.onnx import ort_run
    folder = exported[1]["tensorrt"]
    meta = read_sidecar(folder)
    onnx_path, script = folder / meta.model_file, folder / "build_engine.sh"
    assert meta.format == "tensorrt" and onnx_path.suffix == ".onnx"
    assert script.is_file() and script.stat().st_mode & stat.S_IXUSR
    m = onnx.load(str(onnx_path))
    assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) == 17
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [1, 1, S, S]
    checks = meta.extra["offline_checks"]
    assert checks["checker"] == "ok" and checks["polygraphy_lint"] == "PASSED"
    assert meta.extra["engine_file"] == onnx_path.stem + ".engine"
    x = src.example_input(3)
    np.testing.assert_allclose(ort_run(onnx_path, x), src.torch_output(x), atol=1e-4)


def _fake_bin(tmp_path):
    b = tmp_path / "bin"
    b.mkdir()
    (b / "trtexec").write_text('#!/bin/bash\necho "$*" >> "$FAKE_LOG"\n'
                               'for a in "$@"; do case "$a" in --saveEngine=*) echo e > "${a#--saveEngine=}";; esac; done\n')
    (b / "trtexec").chmod(0o755)
    return b


@pytest.mark.parametrize("trt,prec,want", [("10.3.0", "fp16", "--fp16"), ("8.6.2", "fp32", "--memPoolSize")])
def test_build_engine_script_flags(exported, tmp_path, trt, prec, want):
    folder = shutil.copytree(exported[1]["tensorrt"], tmp_path / "art")
    log = tmp_path / "trtexec.log"
    env = {**os.environ, "PATH": f"{_fake_bin(tmp_path)}:{os.environ['PATH']}", "FAKE_LOG": str(log), "TRT_VERSION": trt}
    r = subprocess.run(["bash", str(folder / "build_engine.sh"), "--precision", prec, "--no-compare"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    args = log.read_text()
    assert want in args and "--stronglyTyped" not in args and f"--onnx={folder}" in args
    stem = read_sidecar(folder).model_file[:-5]
    assert (folder / f"{stem}.engine").is_file() and "python3 -m edge.run --backend tensorrt" in r.stdout
    # int8 on an fp32 ONNX is refused; a replaced ONNX is refused
    r = subprocess.run(["bash", str(folder / "build_engine.sh"), "--precision", "int8"], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "no Q/DQ" in r.stderr
    (folder / f"{stem}.onnx").write_bytes(b"x")
    r = subprocess.run(["bash", str(folder / "build_engine.sh")], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "sha256 differs" in r.stderr


def test_tensorrt_int8_folder_from_qdq(exported, src, tmp_path):
    """An int8 folder as quantize.ptq writes it gets the recipe and passes TensorRT's Q/DQ rules."""
    from edge.model.sidecar import write_sidecar
    from export.common import make_meta
    from export.tensorrt import finish_int8_folder
    from quantize.tensorrt_int8 import quantize_tensorrt

    class Reader:  # onnxruntime CalibrationDataReader protocol
        def __init__(self):
            self.it = iter([{"images": src.example_input(i)} for i in range(4)])

        def get_next(self):
            return next(self.it, None)

        def __len__(self):
            return 4

    folder = tmp_path / f"hrpe_nano_{S}_int8_tensorrt"
    folder.mkdir()
    fp32 = exported[1]["tensorrt"] / read_sidecar(exported[1]["tensorrt"]).model_file
    quantize_tensorrt(fp32, folder / f"hrpe_nano_{S}_int8.onnx", Reader())
    write_sidecar(folder, make_meta(src, "tensorrt", "int8", folder, f"hrpe_nano_{S}_int8.onnx",
                                    calibration={"source": "synthetic", "frames": 4}))
    finish_int8_folder(folder, lint=False)
    meta = read_sidecar(folder)
    assert meta.extra["offline_checks"]["qdq_rules"] == "ok" and (folder / "build_engine.sh").is_file()
    assert meta.extra["trtexec_flags"]["10"] == ["--stronglyTyped"] and meta.calibration["frames"] == 4


def test_edited_model_is_refused(exported, tmp_path):
    from edge.backends import load_backend
    folder = shutil.copytree(exported[1]["onnx"], tmp_path / "copy")
    f = folder / read_sidecar(folder).model_file
    f.write_bytes(f.read_bytes() + b"\0")
    with pytest.raises(SidecarError, match="sha256"):
        load_backend(folder)
    (folder / "metadata.json").unlink()
    with pytest.raises(SidecarError, match="no metadata.json beside the model"):
        load_backend(f)


def test_failed_export_keeps_previous_artifact(src, tmp_path, monkeypatch):
    import export.onnx as eo
    good = eo.export_onnx(src, tmp_path)
    before = (good / "metadata.json").read_text()

    def boom(*a, **k):
        raise RuntimeError("toolchain exploded")

    monkeypatch.setattr(eo, "ort_run", boom)
    with pytest.raises(ExportError, match="export onnx failed: RuntimeError: toolchain exploded"):
        eo.export_onnx(src, tmp_path)
    assert (good / "metadata.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [good.name], "temp folders left behind"


def test_cli_exports_checkpoint_and_prints_next_command(tmp_path, capsys, monkeypatch):
    from export.__main__ import main
    from spire.models import save_checkpoint
    ck = save_checkpoint(tmp_path / "ck" / "best.pt", _model(), {"training": {"epochs": 1}})
    assert main(["--weights", str(ck), "--target", "onnx", "--imgsz", "50", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "o" / "hrpe_nano_64_fp32_onnx"
    assert "rounded up to 64" in out and f"next: python -m edge.run --model {folder}" in out
    meta = read_sidecar(folder)
    assert meta.source_checkpoint["path"] == str(ck) and meta.training == {"epochs": 1}
    assert json.loads((folder / "metadata.json").read_text())["model_file"] == "hrpe_nano_64_fp32.onnx"
    assert main(["--weights", str(ck), "--target", "onnx", "--precision", "int4"]) == 2
    assert "error: unknown --precision" in capsys.readouterr().err
    monkeypatch.setenv("SPIRE_EDGE_WEIGHTS", str(tmp_path / "none"))
    assert main(["--target", "onnx"]) == 2
    assert "no shipped checkpoint" in capsys.readouterr().err


def test_int8_is_handed_to_quantize_ptq_by_command(exported, tmp_path, monkeypatch):
    """export never imports quantize: --precision int8 runs `python -m quantize.ptq` and returns its folder."""
    import export.exporter as ex
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        shutil.copytree(exported[1]["onnx"], tmp_path / "int8_onnx")
        side = json.loads((tmp_path / "int8_onnx" / "metadata.json").read_text())
        (tmp_path / "int8_onnx" / "metadata.json").write_text(json.dumps(dict(side, precision="int8")))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(ex.subprocess, "run", fake_run)
    got = ex.export_model(ex.ExportConfig(target="onnx", precision="int8", weights=tmp_path / "w.pt", imgsz=70,
                                          data="DATA", frames=16, out=tmp_path, ignored_scope=("head",)))
    assert got == tmp_path / "int8_onnx"
    cmd = calls[0]
    assert cmd[1:3] == ["-m", "quantize.ptq"]
    opts = dict(zip(cmd[3::2], cmd[4::2]))
    assert opts["--backend"] == "onnxruntime" and opts["--imgsz"] == "96" and opts["--frames"] == "16"
    assert opts["--data"] == "DATA" and opts["--weights"] == str(tmp_path / "w.pt") and cmd[-2:] == ["--ignored-scope", "head"]
    monkeypatch.setattr(ex.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 3))
    with pytest.raises(ex.ExportError, match="failed \\(exit 3\\)"):
        ex.export_model(ex.ExportConfig(target="onnx", precision="int8", out=tmp_path))


@pytest.mark.slow
def test_sshd_exports_to_onnx_with_static_batch(tmp_path):
    """SSHD-Net's ODConv makes per-sample grouped convolutions: the export must pin batch 1."""
    import onnx
    from export.onnx import export_onnx
    from spire.models import create_model
    m = create_model("sshd", width=8, stem=16, l1_planes=16).eval()
    folder = export_onnx(source_from_model(m, imgsz=S), tmp_path)
    meta = read_sidecar(folder)
    g = onnx.load(str(folder / meta.model_file))
    assert [d.dim_value for d in g.graph.input[0].type.tensor_type.shape.dim] == [1, 3, S, S]
    assert meta.arch == "sshd" and meta.codec["type"] == "gaussian" and meta.extra["golden_rel_diff"] < 1e-3
