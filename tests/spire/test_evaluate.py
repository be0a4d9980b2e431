"""spire.evaluate: JSON contract, curves and overlays, official weights, default-model fallback."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.inference.preprocess import native_letterbox, preprocess_native
from spire.evaluate import main
from tests.conftest import needs_shared, nuaa_subset, shared

NUAA = shared("data", "nuaa-sirst")
OFFICIAL = shared("weights", "spire-official", "SPIRE-SIRST4-512-epoch230-lr0.005.pth")
NAMES = ["Misc_119", "Misc_64", "Misc_90", "Misc_100"]
needs_data = needs_shared("data", "nuaa-sirst", "images")


@pytest.fixture(scope="module")
def fixture(tmp_path_factory) -> Path:
    return nuaa_subset(tmp_path_factory.mktemp("nuaa"), NAMES, {"test": NAMES})


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained hrpe_nano checkpoint folder with its sidecar, as spire.train writes it."""
    import torch

    from edge.model.sidecar import ModelMeta, file_sha256, write_sidecar
    from spire.engine import build_meta
    from spire.models import create_model, save_checkpoint

    torch.manual_seed(0)
    model = create_model("hrpe_nano")
    cfg = model.cfg.replace(input_size=64)
    model.cfg = cfg
    meta = build_meta(model, cfg.preprocess_config(64), cfg.build_codec(64), {"note": "test"})
    out = tmp_path_factory.mktemp("ckpt")
    p = save_checkpoint(out / "best.pt", model, meta)
    write_sidecar(out, ModelMeta(model_file=p.name, model_sha256=file_sha256(p), **meta))
    return out


def test_native_letterbox_pads_to_32_and_maps_points_back():
    lb = native_letterbox((150, 201))
    assert lb.dst_hw == (160, 224) and lb.sx == lb.sy == 1.0
    p = np.array([[0.0, 0.0], [200.0, 149.0], [13.25, 77.5]], np.float32)
    np.testing.assert_allclose(lb.inverse(lb.forward(p)), p, atol=1e-5)
    from edge.inference.preprocess import Normalization, PreprocessConfig

    frame = np.full((150, 201), 100, np.uint8)
    frame[40, 50] = 255
    pre = PreprocessConfig(64, 1, Normalization("mean-std", (0.0,), (1.0,)), scale_up=False)
    x, lb = preprocess_native(frame, pre)
    assert x.shape == (1, 160, 224)
    fx, fy = lb.forward([[50, 40]])[0]
    assert x[0, int(fy), int(fx)] == pytest.approx(1.0) and x[0, 0, 0] == 0.0  # pad is zero


@needs_data
def test_evaluate_json_keys_curves_and_overlays(fixture, checkpoint, tmp_path):
    js, out = tmp_path / "r.json", tmp_path / "eval"
    assert main(["--weights", str(checkpoint), "--data", str(fixture), "--split", "test", "--json", str(js),
                 "--out", str(out), "--threads", "1", "--quiet", "--thr", "0.0"]) == 0
    r = json.loads(js.read_text())
    for k in ("precision", "recall", "f1", "fa_per_pixel", "fppi", "images", "targets"):
        assert k in r, k
    for k in ("precision", "recall", "f1", "fa_per_pixel"):
        assert 0.0 <= r[k] <= 1.0, (k, r[k])
    assert r["images"] == 4 and r["targets"] == 5  # run as its contract says it is deployed (64 px), exports or not
    assert r["resolution"].startswith("as edge.run on the 64 px exports")
    assert r["fp"] > 0  # threshold 0: an untrained net fires somewhere, so overlays exist
    assert (out / "pr_curve.png").is_file() and (out / "pd_fppi.png").is_file()
    assert r["overlays"] and all(Path(p).is_file() for p in r["overlays"])
    from edge.outputs.annotate import COLORS  # the one drawer edge.run uses: false alarms in its colour
    import cv2

    pic = cv2.imread(r["overlays"][0]).reshape(-1, 3)
    assert (np.abs(pic.astype(int) - COLORS["false"]).max(1) < 30).any()
    n = tmp_path / "n.json"  # a mode chosen by name
    assert main(["--weights", str(checkpoint), "--data", str(fixture), "--split", "test", "--json", str(n),
                 "--threads", "1", "--quiet", "--mode", "tile"]) == 0
    assert json.loads(n.read_text())["resolution"] == "tiles of 64"
    assert "pd" in r["basicirstd"] and "f1" in r["hungarian"]


@needs_data
@needs_shared("weights", "spire-official", "SPIRE-SIRST4-512-epoch230-lr0.005.pth")
def test_official_sirst4_checkpoint_finds_nuaa_targets(fixture, tmp_path, capsys):
    js = tmp_path / "o.json"
    assert main(["--official", str(OFFICIAL), "--data", str(fixture), "--split", "test", "--json", str(js),
                 "--threads", "2", "--quiet"]) == 0
    r = json.loads(js.read_text())
    assert r["recall"] >= 0.75 and r["images"] == 4
    assert r["resolution"] == "letterbox 512" and r["codec"]["faithful"] is True
    out = capsys.readouterr().out
    assert "R(Pd)" in out and "false points/frame" in out


def test_missing_default_model_is_one_error_line(tmp_path):
    env = {"SPIRE_EDGE_WEIGHTS": str(tmp_path / "nothing"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "spire.evaluate", "--data", str(tmp_path)], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--weights" in lines[0], r.stderr


SHIPPED = Path(__file__).resolve().parents[2] / "weights" / "shipped"
DEMO = Path(__file__).resolve().parents[2] / "edge" / "demo"
needs_shipped = pytest.mark.skipif(not (SHIPPED / "best.pt").is_file(), reason="needs the committed weights/shipped")


def _decoy_exports(where: Path) -> None:
    """./runs/export holding a sidecar that claims a 192 px export of the shipped checkpoint."""
    src = next((SHIPPED / "export").glob("*_fp32_onnx"))
    dst = where / "runs" / "export" / "decoy_192_fp32_onnx"
    shutil.copytree(src, dst)
    side = json.loads((dst / "metadata.json").read_text())
    side["input"]["shape"][2:] = [192, 192]
    side["output"]["shape"][2:] = [48, 48]
    side["preprocess"]["imgsz"] = side["codec"]["input_size"] = 192
    (dst / "metadata.json").write_text(json.dumps(side))


@needs_shipped
def test_evaluate_and_edge_run_agree_whatever_folders_the_working_directory_holds(tmp_path):
    """The checkpoint is scored as it is deployed (its contract), from an empty folder and from one
    whose ./runs/export claims another export size, and edge.run on its export scores the same frames
    the same; a low threshold gives false points, so equal F1s are not all 1.0."""
    args = ["--data", str(DEMO), "--split", "all", "--frame-stride", "25", "--thr", "0.2", "--quiet"]
    f1s = []
    for name, decoy in (("empty", False), ("decoy", True)):
        cwd = tmp_path / name
        cwd.mkdir()
        if decoy:
            _decoy_exports(cwd)
        r = subprocess.run([sys.executable, "-m", "spire.evaluate", "--weights", str(SHIPPED / "best.pt"), *args,
                            "--json", str(cwd / "m.json")], cwd=cwd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-500:]
        m = json.loads((cwd / "m.json").read_text())
        assert "512 px exports" in m["resolution"], m["resolution"]
        f1s.append((m["f1"], m["tp"], m["fp"]))
    run = subprocess.run([sys.executable, "-m", "edge.run", "--model", str(next((SHIPPED / "export").glob("*_fp32_onnx"))),
                          "--source", str(DEMO / "videos" / "IR_DRONE_154.mp4"), "--frame-stride", "25", "--conf", "0.2",
                          "--threads", "1", "--quiet", "--save", str(tmp_path / "run")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-500:]
    s = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    assert f1s[0] == f1s[1] == (s["f1"], s["tp"], s["fp"]) and 0 < s["f1"] < 1
