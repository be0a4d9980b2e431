"""metadata.json sidecars: round trip, validation, and refusing a sidecar that does not match."""
import json
import subprocess
import sys

import pytest

from edge.errors import SidecarError
from edge.model.sidecar import (SIDECAR_NAME, ModelMeta, file_sha256, find_sidecar, io_specs, read_sidecar,
                          toolchain_versions, write_sidecar)


def _artifact(tmp_path, fmt="onnx", name="m.onnx", payload=b"model-bytes", **kw):
    folder = tmp_path / f"art_{fmt}"
    folder.mkdir()
    f = folder / name
    f.write_bytes(payload)
    inp, out = io_specs(64, 3, stride=4)
    meta = ModelMeta(arch="hrpe_nano", format=fmt, model_file=name, model_sha256=file_sha256(f),
                     precision=kw.pop("precision", "fp32"), input=inp, output=out,
                     preprocess={"imgsz": 64, "channels": 3}, codec={"type": "prps", "input_size": 64, "thr": 0.35}, **kw)
    write_sidecar(folder, meta)
    return folder, f, meta


def test_round_trip_folder_and_file(tmp_path):
    folder, f, meta = _artifact(tmp_path, calibration={"source": "sirst-v2/val", "frames": 32},
                                source_checkpoint={"path": "best.pt", "sha256": "0" * 64})
    assert read_sidecar(folder) == meta
    assert read_sidecar(f) == meta
    d = json.loads((folder / SIDECAR_NAME).read_text())
    assert d["schema_version"] == 2 and d["input"]["shape"] == [1, 3, 64, 64]
    assert d["output"]["shape"] == [1, 1, 16, 16] and d["calibration"]["frames"] == 32
    assert meta.imgsz == 64 and meta.channels == 3 and meta.stride == 4
    assert not list(folder.glob(".metadata.*")), "atomic write left a temp file"


def test_sha_mismatch_refused(tmp_path):
    folder, f, _ = _artifact(tmp_path)
    f.write_bytes(b"other-bytes")
    with pytest.raises(SidecarError, match=r"sha256 of m\.onnx.*re-export"):
        read_sidecar(folder)
    assert read_sidecar(folder, verify=False).model_file == "m.onnx"


def test_missing_sidecar_message(tmp_path):
    f = tmp_path / "lonely.onnx"
    f.write_bytes(b"x")
    with pytest.raises(SidecarError) as e:
        read_sidecar(f)
    msg = str(e.value)
    assert "lonely.onnx" in msg and "no metadata.json beside the model" in msg and "python -m export" in msg
    assert "\n" not in msg
    with pytest.raises(SidecarError, match="no such model"):
        find_sidecar(tmp_path / "nope.onnx")


def test_wrong_file_in_folder_refused(tmp_path):
    folder, _, _ = _artifact(tmp_path)
    other = folder / "other.onnx"
    other.write_bytes(b"x")
    with pytest.raises(SidecarError, match="describes 'm.onnx', not 'other.onnx'"):
        read_sidecar(other)


def test_openvino_bin_and_missing_model(tmp_path):
    folder, xml, _ = _artifact(tmp_path, fmt="openvino", name="m.xml")
    (folder / "m.bin").write_bytes(b"w")
    assert read_sidecar(folder / "m.bin").format == "openvino"
    xml.unlink()
    with pytest.raises(SidecarError, match="missing from"):
        read_sidecar(folder)


@pytest.mark.parametrize("mutate,pattern", [
    (lambda d: d.update(schema_version=3), "schema_version 3"),
    (lambda d: d.pop("codec"), "missing key.*codec"),
    (lambda d: d.update(precision="int4"), "'precision' is 'int4'"),
    (lambda d: d.update(format="coreml"), "'format' is 'coreml'"),
    (lambda d: d["codec"].update(type="PRPSCodec"), "'codec.type' is 'PRPSCodec'.*prps"),
    (lambda d: d["input"].update(shape=[1, 3, 64, 32]), "input.shape"),
    (lambda d: d["input"].update(shape=[-1, 3, 64, 64]), "static"),
    (lambda d: d["output"].update(shape=[1, 1, 32, 32]), "output.shape"),
    (lambda d: d["preprocess"].update(imgsz=128), "preprocess.imgsz"),
    (lambda d: d.update(calibration={"frames": 3}), "calibration"),
])
def test_invalid_sidecars_name_the_file(tmp_path, mutate, pattern):
    folder, _, _ = _artifact(tmp_path)
    side = folder / SIDECAR_NAME
    d = json.loads(side.read_text())
    mutate(d)
    side.write_text(json.dumps(d))
    with pytest.raises(SidecarError, match=pattern) as e:
        read_sidecar(folder)
    assert str(side) in str(e.value)


def test_malformed_json_and_unknown_keys_kept(tmp_path):
    folder, _, _ = _artifact(tmp_path)
    side = folder / SIDECAR_NAME
    d = json.loads(side.read_text())
    d["future_field"] = {"a": 1}
    side.write_text(json.dumps(d))
    assert read_sidecar(folder).extra["future_field"] == {"a": 1}
    side.write_text("{not json")
    with pytest.raises(SidecarError, match="not valid JSON"):
        read_sidecar(folder)


def test_derive_and_versions(tmp_path):
    _, _, meta = _artifact(tmp_path)
    v = toolchain_versions()
    assert "numpy" in v and "spire-edge" in v
    m2 = meta.derive(precision="int8", calibration={"source": "x", "frames": 8})
    assert m2.precision == "int8" and meta.precision == "fp32" and m2.arch == meta.arch


def test_preprocess_config_and_codec_from_sidecar(tmp_path):
    folder, f, meta = _artifact(tmp_path)
    from edge.inference.preprocess import Normalization, PreprocessConfig
    pre = PreprocessConfig(64, 1, Normalization("mean-std", (0.4,), (0.2,)))
    codec = {"type": "prps", "input_size": 64, "stride": 4, "thr": 0.3}
    inp, out = io_specs(64, 1)
    m = meta.derive(preprocess=pre.to_dict(), codec=codec, input=inp, output=out)
    write_sidecar(folder, m)
    back = read_sidecar(f)
    assert back.preprocess_config() == pre
    c = back.build_codec()
    assert c.input_size == 64 and c.stride == 4 and abs(c.thr - 0.3) < 1e-9


def test_toolchain_versions_does_not_import_torch():
    code = "import sys, edge.model.sidecar as s; s.toolchain_versions(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_zoo_resolves_env_folder_and_prefers_int8(tmp_path, monkeypatch):
    from edge.model import zoo
    monkeypatch.setenv(zoo.ENV_VAR, str(tmp_path / "w"))
    monkeypatch.chdir(tmp_path)
    assert zoo.weights_dir() == tmp_path / "w"
    with pytest.raises(SidecarError, match=r"best\.pt.*--weights"):
        zoo.default_checkpoint()
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "best.pt").write_bytes(b"ckpt")
    assert zoo.default_checkpoint() == tmp_path / "w" / "best.pt"
    with pytest.raises(SidecarError, match=r"no onnx artifact.*python -m export --target onnx"):
        zoo.default_artifact("onnxruntime")
    exp = tmp_path / "w" / "export"
    exp.mkdir()
    fp32, _, _ = _artifact(exp, name="a_fp32.onnx")
    int8_dir = exp / "int8"
    int8_dir.mkdir()
    int8, _, _ = _artifact(int8_dir, name="a_int8.onnx", precision="int8")
    (exp / "broken").mkdir()
    (exp / "broken" / SIDECAR_NAME).write_text("{")
    assert len(zoo.find_artifacts()) == 2
    assert zoo.default_artifact("onnxruntime") == int8
    assert zoo.default_artifact("onnx", precision="fp32") == fp32
    with pytest.raises(SidecarError, match="no fp16 onnx"):
        zoo.default_artifact("onnx", precision="fp16")
    with pytest.raises(SidecarError, match="unknown model format"):
        zoo.default_artifact("coreml")


def test_zoo_measured_defaults_override_the_precision_order(tmp_path, monkeypatch):
    from edge.model import zoo
    monkeypatch.setenv(zoo.ENV_VAR, str(tmp_path / "w"))
    monkeypatch.chdir(tmp_path)
    exp = tmp_path / "w" / "export"
    (exp / "a").mkdir(parents=True)
    (exp / "b").mkdir()
    fp32, _, _ = _artifact(exp / "a", fmt="tflite", name="m_fp32.tflite")
    int8, _, _ = _artifact(exp / "b", fmt="tflite", name="m_int8.tflite", precision="int8")
    assert zoo.default_artifact("litert") == int8          # no defaults.json: int8 first
    (exp / "a" / zoo.DEFAULTS_NAME).write_text(json.dumps({"tflite": fp32.name}))
    assert zoo.default_artifact("litert") == fp32          # measured choice wins
    assert zoo.default_artifact("litert", precision="int8") == int8   # an explicit ask still wins
    (exp / "a" / zoo.DEFAULTS_NAME).write_text("{not json")
    assert zoo.default_artifact("litert") == int8          # unreadable file: ignored, order applies
