"""boards/: every profile loads through edge.device.boards with valid defaults; bench.sh runs benchmarks.run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.backends import BACKENDS
from edge.device.boards import list_boards, load_board
from edge.device.power import PROBES
from export.formats import FORMATS

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ROOT / "boards"
EXPECTED = {"jetson-orin-nano", "jetson-agx-orin", "intel-x86", "rpi5", "arm64-generic"}


def test_expected_boards_present():
    assert EXPECTED <= set(list_boards(BOARDS))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_profile_is_valid(name):
    raw = json.loads((BOARDS / name / "profile.json").read_text())
    prof = load_board(name, BOARDS)
    assert prof.name == name
    assert prof.backend in BACKENDS
    fmt = FORMATS[BACKENDS[prof.backend].format]
    assert prof.precision in fmt.precisions
    assert prof.imgsz and prof.imgsz % 32 == 0
    assert prof.threads is None or prof.threads > 0
    assert prof.power in PROBES or prof.power in ("auto", "none")
    assert raw["power"]["read"], "say how the power sensor is read"
    setup = raw["setup"]
    assert setup["pip"] and all(isinstance(c, str) and c for c in setup["apt"] + setup["pip"])
    assert f"--target {fmt.name}" in raw["export"] and f"--precision {prof.precision}" in raw["export"]
    assert raw["bench"] == f"bash boards/{name}/bench.sh" and f"--board {name}" in raw["run"]
    if prof.backend == "tensorrt":
        assert "boards/jetson/build_engine.sh" in raw["engine"]


def _fake_python(tmp_path):
    """A stand-in interpreter: records `-m benchmarks.run ...`, runs everything else for real."""
    fake, log = tmp_path / "python3", tmp_path / "args"
    fake.write_text(f'#!/bin/bash\nif [ "$1" = "-m" ]; then echo "$*" >> {log}; exit 0; fi\n'
                    f'exec {sys.executable} "$@"\n')
    fake.chmod(0o755)
    return fake, log


def _trt_folder(root):
    """A minimal *_tensorrt artifact (dummy ONNX bytes; only the recipe reads it here)."""
    from edge.model.sidecar import ModelMeta, file_sha256, io_specs, write_sidecar
    d = root / "m_64_int8_tensorrt"
    d.mkdir(parents=True)
    (d / "m_64_int8.onnx").write_bytes(b"qdq")
    inp, out = io_specs(64, 1)
    write_sidecar(d, ModelMeta(arch="m", format="tensorrt", model_file="m_64_int8.onnx", precision="int8",
                               model_sha256=file_sha256(d / "m_64_int8.onnx"), input=inp, output=out,
                               preprocess={"imgsz": 64, "channels": 1}, codec={"type": "prps", "input_size": 64}))
    return d


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bench_script_calls_benchmarks_with_the_board(name, tmp_path):
    script = BOARDS / name / "bench.sh"
    assert os.access(script, os.X_OK)
    fake, log = _fake_python(tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "trtexec").write_text('#!/bin/bash\nfor a in "$@"; do case "$a" in --saveEngine=*) '
                                    'echo e > "${a#--saveEngine=}";; esac; done\n')
    (bindir / "trtexec").chmod(0o755)
    (bindir / "polygraphy").write_text(f'#!/bin/bash\necho "polygraphy $*" >> {log}\n')
    (bindir / "polygraphy").chmod(0o755)
    art = _trt_folder(tmp_path / "exports")
    env = {**os.environ, "PY": str(fake), "OUT": str(tmp_path / "out"), "DATA": "/data/x", "BACKENDS": "openvino",
           "ENGINE_DIRS": str(tmp_path / "exports"), "TRT_VERSION": "10.3", "PATH": f"{bindir}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(script), "--frames", "5"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run = [c for c in log.read_text().splitlines() if c.startswith("-m benchmarks.run")]
    assert run == [f"-m benchmarks.run --board {name} --out {tmp_path / 'out'} --backends openvino "
                   f"--data /data/x --split val --frames 5"]
    # Jetson boards build the missing engine first (with polygraphy's comparison when installed)
    assert (art / "m_64_int8.engine").is_file() == name.startswith("jetson")
    poly = [c for c in log.read_text().splitlines() if c.startswith("polygraphy run")]
    if name.startswith("jetson"):
        assert "--onnxrt" in poly[0] and "--trt" in poly[1] and "--load-outputs" in poly[1]


def test_bench_script_refuses_without_install(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/bash\nexit 1\n")
    fake.chmod(0o755)
    r = subprocess.run(["bash", str(BOARDS / "rpi5" / "bench.sh")], capture_output=True, text=True,
                       env={**os.environ, "PY": str(fake)})
    assert r.returncode == 2 and "spire-edge is not importable" in r.stderr and "rpi5/profile.json" in r.stderr


def test_shell_scripts_parse():
    for f in [*BOARDS.glob("*/bench.sh"), BOARDS / "common.sh", BOARDS / "jetson" / "build_engine.sh",
              BOARDS / "jetson" / "bench_common.sh"]:
        r = subprocess.run(["bash", "-n", str(f)], capture_output=True, text=True)
        assert r.returncode == 0, f"{f}: {r.stderr}"


def test_build_engine_help_and_missing_folder(tmp_path):
    script = BOARDS / "jetson" / "build_engine.sh"
    r = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--stronglyTyped" in r.stdout and "usage" in r.stdout
    r = subprocess.run(["bash", str(script), str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and "no metadata.json" in r.stderr and "python -m export --target tensorrt" in r.stderr
