"""Backends: one interface over onnxruntime / OpenVINO / LiteRT (+ TensorRT's guards), same numbers.

The artifacts are a tiny difference-of-Gaussians "detector" (conv stride 4) exported here with
torch.onnx / openvino.convert_model / litert_torch, each in its own folder with a real sidecar:
small enough to build in seconds, sharp enough that a wrong layout or scale moves the peaks.
torch is used only in these fixtures, never by edge.
"""
from __future__ import annotations

import builtins
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.backends import BACKENDS, load_backend
from edge.backends.tensorrt import check_engine_file
from edge.backends.tflite import TFLiteBackend, dequantize, quantize
from edge.errors import BackendUnavailable, SidecarError
from tests.conftest import IMGSZ, tiny_module
from tests.conftest import write_fixture_sidecar as write_meta


def export_tiny(root: Path, fmt: str, imgsz: int = IMGSZ, **meta_kw) -> Path:
    """Export the tiny model as `fmt` into root/tiny_<fmt>_<imgsz>/ with its metadata.json."""
    import torch

    folder = root / f"tiny_{fmt}_{imgsz}"
    folder.mkdir(parents=True, exist_ok=True)
    m, x = tiny_module(), torch.zeros(1, 3, imgsz, imgsz)
    onnx_path = root / f"tiny_{imgsz}.onnx"
    if not onnx_path.exists():
        torch.onnx.export(m, (x,), str(onnx_path), input_names=["images"], output_names=["heatmap"], dynamo=False)  # legacy exporter: ~0.2 s
    if fmt == "onnx":
        shutil.copy(onnx_path, folder / "model.onnx")
        name = "model.onnx"
    elif fmt == "openvino":
        import openvino as ov

        ov.save_model(ov.convert_model(str(onnx_path)), str(folder / "model.xml"))
        name = "model.xml"
    elif fmt == "tflite":
        import litert_torch

        litert_torch.convert(m, (x,)).export(str(folder / "model.tflite"))
        name = "model.tflite"
    else:
        raise ValueError(fmt)
    write_meta(folder, fmt, name, imgsz, **meta_kw)
    return folder


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("edge_artifacts")
    return {fmt: export_tiny(root, fmt) for fmt in ("onnx", "openvino", "tflite")}


def spot_input(xy=((20, 30), (45, 12))) -> tuple[np.ndarray, np.ndarray]:
    """ImageNet-normalised (1,3,S,S) input with 3x3 bright spots, and the reference heatmap."""
    import torch

    img = np.zeros((IMGSZ, IMGSZ), np.float32)
    for i, (x, y) in enumerate(xy):
        img[y - 1:y + 2, x - 1:x + 2] = 1.0 - 0.3 * i  # distinct peaks: argmax is unambiguous
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    x = ((img[None] - mean) / std)[None].astype(np.float32)
    with torch.no_grad():
        ref = tiny_module()(torch.from_numpy(x)).numpy()
    return x, ref


@pytest.mark.parametrize("name", ["onnxruntime", "openvino", "tflite"])
def test_backends_agree_with_torch(artifacts, name):
    b = load_backend(artifacts[BACKENDS[name].format], name, threads=1)
    assert b.input_shape == (1, 3, IMGSZ, IMGSZ)
    x, ref = spot_input()
    y = b.infer(x)
    assert y.shape == (1, 1, IMGSZ // 4, IMGSZ // 4) and y.dtype == np.float32
    np.testing.assert_allclose(y, ref, atol=1e-4)
    assert np.unravel_index(np.argmax(y[0, 0]), y.shape[2:]) == np.unravel_index(np.argmax(ref[0, 0]), ref.shape[2:])


def test_backend_inferred_from_sidecar_and_mismatch_refused(artifacts):
    assert load_backend(artifacts["openvino"]).name == "openvino"
    assert load_backend(artifacts["onnx"] / "model.onnx").name == "onnxruntime"
    with pytest.raises(SidecarError, match="cannot run on --backend tflite"):
        load_backend(artifacts["onnx"], "tflite")


def test_openvino_keeps_fp32_unless_artifact_is_fp16(artifacts):
    from edge.model.sidecar import read_sidecar

    b = load_backend(artifacts["openvino"], "openvino", threads=2)
    assert b.compile_config() == {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                                  "INFERENCE_NUM_THREADS": 2}
    meta16 = read_sidecar(artifacts["openvino"]).derive(precision="fp16")
    assert type(b)(artifacts["openvino"], meta16).compile_config()["INFERENCE_PRECISION_HINT"] == "f16"


def test_missing_sidecar_is_one_line(tmp_path, artifacts):
    shutil.copy(artifacts["onnx"] / "model.onnx", tmp_path / "model.onnx")
    with pytest.raises(SidecarError) as e:
        load_backend(tmp_path / "model.onnx")
    msg = str(e.value)
    assert "\n" not in msg and "metadata.json" in msg and "export" in msg


def test_sidecar_that_does_not_match_the_model(tmp_path, artifacts):
    """A sidecar claiming another input size than the graph: refused in one line at load."""
    folder = tmp_path / "bad"
    shutil.copytree(artifacts["onnx"], folder)
    d = json.loads((folder / "metadata.json").read_text())
    d["input"]["shape"] = [1, 3, 128, 128]
    d["output"]["shape"] = [1, 1, 32, 32]
    d["preprocess"]["imgsz"] = 128
    (folder / "metadata.json").write_text(json.dumps(d))
    with pytest.raises(SidecarError, match="input is .*sidecar says") as e:
        load_backend(folder)
    assert "\n" not in str(e.value)


def test_missing_runtime_names_the_extra(monkeypatch, artifacts):
    real = builtins.__import__

    def guard(name, *a, **k):
        if name.split(".")[0] in ("openvino", "ai_edge_litert", "tflite_runtime"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", guard)
    with pytest.raises(BackendUnavailable, match=r"openvino is not installed: pip install 'spire-edge\[openvino\]'"):
        load_backend(artifacts["openvino"], "openvino")
    with pytest.raises(BackendUnavailable, match=r"pip install 'spire-edge\[tflite\]'") as e:
        load_backend(artifacts["tflite"], "tflite")
    assert "\n" not in str(e.value)


def test_tensorrt_guards(tmp_path):
    with pytest.raises(SidecarError, match="not a TensorRT engine"):
        check_engine_file(tmp_path / "model.onnx")
    with pytest.raises(SidecarError, match="engine file not found"):
        check_engine_file(tmp_path / "model.engine")
    (tmp_path / "model.plan").write_bytes(b"")
    with pytest.raises(SidecarError, match="empty"):
        check_engine_file(tmp_path / "model.plan")
    (tmp_path / "model.plan").write_bytes(b"\x00plan")
    assert check_engine_file(tmp_path / "model.plan").name == "model.plan"
    code = ("import builtins; real = builtins.__import__\n"
            "def g(n, *a, **k):\n"
            "    if n.split('.')[0] == 'tensorrt': raise ImportError('blocked')\n"
            "    return real(n, *a, **k)\n"
            "builtins.__import__ = g\n"
            "from edge.backends.tensorrt import _import_tensorrt\n"
            "try:\n    _import_tensorrt()\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.startswith("BackendUnavailable") and "JetPack" in out


class _FakeInterpreter:
    """Stands in for an INT8 NHWC LiteRT model: records what it was given, returns a known map."""

    def __init__(self):
        self.given = None

    def set_tensor(self, index, x):
        self.given = x

    def invoke(self):
        pass

    def get_tensor(self, index):
        return np.full((1, 16, 16, 1), 10, np.int8)


def test_tflite_int8_nhwc_scale_and_zero_point(artifacts):
    b = TFLiteBackend(artifacts["tflite"], load_backend(artifacts["tflite"]).meta)
    b.interpreter = _FakeInterpreter()
    b._in = {"index": 0, "shape": np.array([1, IMGSZ, IMGSZ, 3]), "dtype": np.int8, "quantization": (0.05, -3)}
    b._out = {"index": 1, "shape": np.array([1, 16, 16, 1]), "dtype": np.int8, "quantization": (0.02, 4)}
    b.nhwc, b.out_nhwc, b._loaded = True, True, True
    x = np.random.default_rng(0).normal(0, 1, (1, 3, IMGSZ, IMGSZ)).astype(np.float32)
    y = b.infer(x)
    q = b.interpreter.given
    assert q.dtype == np.int8 and q.shape == (1, IMGSZ, IMGSZ, 3)
    np.testing.assert_allclose(dequantize(q, 0.05, -3), x.transpose(0, 2, 3, 1), atol=0.025 + 1e-6)
    assert y.shape == (1, 1, 16, 16) and np.allclose(y, (10 - 4) * 0.02)
    assert quantize(np.array([100.0]), 0.05, -3, np.int8)[0] == 127  # saturates
