"""One frame -> points path and one target table: torch and artifacts score alike, rows are added in one place.

Why: spire.evaluate, training-time validation, the fidelity reports, the benchmarks and edge.run all
go through `edge.inference.predictor.Predictor`; a torch model sits in its backend slot (spire.torch_backend).
These tests hold that together: the same frames give the same points through torch and through an
artifact, the decode threshold is an argument, and a new target (the numpy fake of conftest.py) is
known everywhere once its row is in `edge.model.targets`.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from edge.inference.predictor import Predictor
from tests.conftest import IMGSZ, FAKE_TARGET, needs_shared, spots, tiny_module

FRAMES = [((48, 60), [(20, 20), (40, 30)]), ((150, 201), [(30, 40), (100, 75), (190, 140)]),
          ((64, 64), [(31, 32)]), ((130, 97), [(60, 60), (63, 100)])]  # fits, tiled, exact, tile borders


def _frames():
    return [spots(h, w, xy, seed=i) for i, ((h, w), xy) in enumerate(FRAMES)]


def test_torch_backend_finds_what_the_artifact_finds(fake_model):
    """A torch module in the Predictor gives the artifact's points on the same frames (tiled ones too)."""
    pytest.importorskip("torch")
    from spire.torch_backend import torch_predictor

    art = Predictor(fake_model, threads=1)
    tor = torch_predictor(tiny_module(), art.cfg, art.codec, mode="static", threads=1)  # the artifact's geometry
    assert tor.size == art.size == IMGSZ and tor.backend.name == "torch"
    for f in _frames():
        a, b = art.predict(f)[0], tor.predict(f)[0]
        assert len(a) == len(b) > 0
        np.testing.assert_allclose(a.xy, b.xy, atol=1e-3)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


def test_decode_threshold_is_an_argument(fake_model):
    pred = Predictor(fake_model, threads=1)
    f = spots(48, 60, [(20, 20), (40, 30)], level=90)  # dim spots: peaks below the codec's 0.3
    low, _ = pred.predict(f, thr=0.05)
    high, _ = pred.predict(f)
    assert pred.codec.thr == pytest.approx(0.3) and len(high) < len(low)
    np.testing.assert_array_equal(low.filter(pred.codec.thr).xy, high.xy)


def test_native_mode_by_name(fake_model):
    """'native' runs whole frames (no tiles, no resize) where the backend takes any size; artifacts refuse it."""
    with pytest.raises(ValueError, match="mode 'native' needs a backend that runs any input size"):
        Predictor(fake_model, mode="native")
    pytest.importorskip("torch")
    from spire.torch_backend import torch_predictor

    art = Predictor(fake_model, threads=1)
    nat = torch_predictor(tiny_module(), art.cfg, art.codec, mode="native", threads=1)
    f = _frames()[1]
    assert not nat.uses_tiles(f.shape[:2])
    pts = nat.predict(f)[0]
    assert len(pts) == 3 and np.abs(np.sort(pts.xy[:, 0]) - [30, 100, 190]).max() < 1.0


def test_target_table_is_the_one_place(fake_model):
    """The fake row (conftest.FAKE_TARGET) is all it took: sidecar, backend lookup, zoo names, export, bench."""
    from benchmarks.artifacts import BACKEND_FORMAT
    from benchmarks.rows import BACKEND_PRECISIONS, RUNTIME_MODULES
    from edge.backends import backend_for_format, get_backend_class
    from edge.model.sidecar import read_sidecar
    from edge.model.targets import TARGETS, get_target
    from edge.model.zoo import normalize_format
    from export.formats import FORMATS

    assert read_sidecar(fake_model).format == FAKE_TARGET.format  # the sidecar accepts the new format
    assert backend_for_format("npy") == "numpy" and get_backend_class("numpy").__name__ == "NumpyDoGBackend"
    assert normalize_format("numpy") == "npy" and get_target("NumPy") is FAKE_TARGET
    assert "npy" not in FORMATS  # no exporter in its row: not an export target
    assert len({t.backend for t in TARGETS.values()}) == len(TARGETS)  # one row per runtime: names never collide
    for name, t in TARGETS.items():  # everything else is read from the same rows
        assert BACKEND_PRECISIONS.get(t.backend, t.bench_precisions) == t.bench_precisions
        if name in FORMATS:
            assert BACKEND_FORMAT[t.backend] == name and FORMATS[name].folder_suffix == t.folder_suffix
    assert RUNTIME_MODULES["tflite"] == "ai_edge_litert" and TARGETS["tensorrt"].engine_recipe
    with pytest.raises(Exception, match="did you mean 'openvino'"):
        get_target("openvio")


def test_int8_recipes_follow_the_table():
    pytest.importorskip("onnx")
    from edge.model.targets import target_for_backend
    from quantize.qat import QAT_BACKENDS
    from quantize.recipes import RECIPES, recipe_for_format

    assert list(RECIPES) == ["onnxruntime", "openvino", "tflite", "tensorrt"]
    assert QAT_BACKENDS == ("onnxruntime", "openvino", "tensorrt")
    for name, r in RECIPES.items():
        assert r.target is target_for_backend(name) and recipe_for_format(r.target.format) is r
    assert RECIPES["tensorrt"].runtime.startswith("onnxruntime") and not RECIPES["tflite"].from_fp32_onnx


@needs_shared("data", "nuaa-sirst", "images")
def test_evaluate_and_edge_run_give_the_same_f1(tmp_path, capsys):
    """spire.evaluate on a checkpoint = edge.run on its ONNX export: same tiles (the size the checkpoint
    is deployed at, its contract, which the export takes without --imgsz), same decoder, same frames."""
    pytest.importorskip("onnxruntime")
    import shutil

    import torch

    from edge import run as edge_run
    from edge.model.sidecar import ModelMeta, file_sha256, write_sidecar
    from export.exporter import ExportConfig, export_model
    from spire.engine import build_meta
    from spire.evaluate import main as evaluate
    from spire.models import create_model, save_checkpoint
    from tests.conftest import shared

    torch.manual_seed(0)
    model = create_model("hrpe_nano")
    model.cfg = model.cfg.replace(input_size=32)
    meta = build_meta(model, model.cfg.preprocess_config(64), model.cfg.build_codec(64), {"imgsz": 32})
    ck = tmp_path / "ck"
    path = save_checkpoint(ck / "best.pt", model, meta)
    write_sidecar(ck, ModelMeta(model_file=path.name, model_sha256=file_sha256(path), **meta))
    onnx = export_model(ExportConfig(target="onnx", weights=path, out=ck / "export"))

    data = tmp_path / "nuaa"
    for sub in ("images", "masks"):
        (data / sub).mkdir(parents=True)
    names = ["Misc_119", "Misc_64", "Misc_90"]
    for n in names:
        shutil.copy(shared("data", "nuaa-sirst", "images", f"{n}.png"), data / "images")
        shutil.copy(shared("data", "nuaa-sirst", "masks", f"{n}_pixels0.png"), data / "masks")
    (data / "test.txt").write_text("\n".join(names) + "\n")
    thr = "0.004"  # an untrained net peaks below 0.01: a low threshold so that both paths find (the same) points
    assert evaluate(["--weights", str(ck), "--data", str(data), "--split", "test", "--thr", thr, "--threads", "1",
                     "--quiet", "--json", str(tmp_path / "e.json")]) == 0
    e = json.loads((tmp_path / "e.json").read_text())
    assert e["mode"] == "static" and e["preprocess"]["imgsz"] == 64  # the deployed size, not the 32 px crops
    assert edge_run.main(["--model", str(onnx), "--source", str(data), "--split", "test", "--conf", thr, "--quiet",
                          "--threads", "1", "--warmup", "0", "--save", str(tmp_path / "run")]) == 0
    r = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    capsys.readouterr()
    assert e["tp"] + e["fp"] > 0
    assert (e["tp"], e["fp"], e["fn"]) == (r["tp"], r["fp"], r["fn"])
    assert e["f1"] == pytest.approx(r["f1"], abs=1e-9)


def test_a_checkpoint_runs_in_the_predictor_through_its_table_row(tmp_path):
    """`Predictor('best.pt')` (edge.run --model best.pt): edge finds spire's torch backend through the 'torch'
    row of edge.model.targets; without exports the checkpoint runs whole frames, as training validated it."""
    pytest.importorskip("torch")
    import torch

    from edge.model.sidecar import ModelMeta, file_sha256, write_sidecar
    from spire.engine import build_meta
    from spire.models import create_model, save_checkpoint

    torch.manual_seed(0)
    model = create_model("hrpe_nano")
    model.cfg = model.cfg.replace(input_size=32)
    meta = build_meta(model, model.cfg.preprocess_config(32), model.cfg.build_codec(32), {"note": "test"})
    meta["schema_version"] = 1  # the old shape: a checkpoint that states no deployed size
    path = save_checkpoint(tmp_path / "best.pt", model, meta)
    write_sidecar(tmp_path, ModelMeta(model_file=path.name, model_sha256=file_sha256(path), **meta))
    pred = Predictor(path, threads=1)
    assert pred.backend.name == "torch" and pred.mode == "native" and pred.size == 32
    pts, t = pred.predict(spots(100, 130, [(40, 50)]), thr=1e-6)
    assert set(t) == {"read", "preprocess", "infer", "decode"} and len(pts) >= 1
    tiled = Predictor(path, threads=1, imgsz=64)  # a size asked for: tiles of it, like an export of that size
    assert tiled.mode == "auto" and tiled.size == 64 and tiled.uses_tiles((100, 130))
    deployed = build_meta(model, model.cfg.preprocess_config(64), model.cfg.build_codec(64), {"imgsz": 32})
    write_sidecar(tmp_path, ModelMeta(model_file=path.name, model_sha256=file_sha256(path), **deployed))
    pred = Predictor(path, threads=1)  # schema 2: runs as its contract says it is deployed
    assert pred.mode == "auto" and pred.size == 64 and pred.uses_tiles((100, 130))


def test_fit_pad_runs_a_small_frame_padded_to_the_input_on_a_backend_of_any_size(fake_model):
    """PreprocessConfig.fit: 'native' runs a frame that fits at its own size (padded to 32), 'pad' pads it to
    S as a fixed-input runtime does; the whole-frame context of the model sees different inputs."""
    pytest.importorskip("torch")
    import dataclasses

    from edge.inference.preprocess import PreprocessConfig
    from spire.torch_backend import torch_predictor

    art = Predictor(fake_model, threads=1)
    cfg = dataclasses.replace(art.cfg, scale_up=False)
    seen = {}
    for fit in ("native", "pad"):
        pred = torch_predictor(tiny_module(), dataclasses.replace(cfg, fit=fit), art.codec, mode="auto", threads=1)
        shapes = []
        infer = pred.backend.infer
        pred.backend.infer = lambda x, _i=infer, _s=shapes: (_s.append(x.shape), _i(x))[1]
        pts = pred.predict(spots(20, 30, [(12, 10)]))[0]  # fits the input; its own size rounds up to 32, not S
        seen[fit] = (shapes[-1][2:], np.sort(pts.xy[:, 0]))
    assert IMGSZ > 32 and seen["native"][0] == (32, 32) and seen["pad"][0] == (IMGSZ, IMGSZ)
    np.testing.assert_allclose(seen["native"][1], seen["pad"][1], atol=1.0)  # same places, either way
    assert PreprocessConfig.from_dict(dataclasses.replace(cfg, fit="pad").to_dict()).fit == "pad"
    assert PreprocessConfig.from_dict({k: v for k, v in cfg.to_dict().items() if k != "fit"}).fit == "native"
    with pytest.raises(ValueError, match="fit must be one of"):
        dataclasses.replace(cfg, fit="stretch")


def test_a_native_model_on_a_fixed_input_runtime_gets_a_note_and_edge_run_prints_it(fake_model, capsys):
    """A model chosen at the frames' own size still runs on LiteRT/TensorRT (padded), but the user is told
    once that it is not running as validated, and which runtimes would."""
    import dataclasses

    art = Predictor(fake_model, threads=1)  # the fake numpy runtime has a fixed input, like LiteRT
    assert art.cfg.fit == "native" and art.note and "fixed 64x64 input" in art.note and "openvino" in art.note
    padded = Predictor.from_parts(art.backend, dataclasses.replace(art.cfg, fit="pad"), art.codec, art.size)
    assert padded.note is None  # a padded model runs on it as validated
    from edge.run import main

    assert main(["--model", str(fake_model), "--frames", "2", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("note: numpy runs a fixed 64x64 input") == 1
