"""Model zoo: every registered model builds, runs at stride 4, trains, folds BN, round-trips
through a checkpoint; the faithful HRPE loads the official SPIRE weights and finds targets."""
from __future__ import annotations

import copy
import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from edge.errors import SpireEdgeError
from spire.models import (CheckpointError, ModelCfg, create_model, fuse_bn, get_model_cfg,
                          list_models, load_checkpoint, load_official, save_checkpoint)
from spire.models.__main__ import main as models_cli
from spire.models.summary import count_macs, count_params
from tests.conftest import needs_shared, shared

R = "the shared data and weights belong in ../shared beside the checkout, or set SPIRE_EDGE_SHARED"

OFFICIAL = shared("weights", "spire-official")
SIRST4 = OFFICIAL / "SPIRE-SIRST4-512-epoch230-lr0.005.pth"
UAVB = OFFICIAL / "SPIRE-UAVB-640-epoch230-lr0.005.pth"
NUAA = shared("data", "nuaa-sirst")
needs_official = pytest.mark.skipif(not SIRST4.is_file() or not UAVB.is_file(),
                                     reason=f"{OFFICIAL}: official SPIRE weights not present ({R})")

ALL = list_models()
# Behaviour tests run SSHD-Net at HRNet width 8 (same blocks and wiring, ~1/16 of the cost);
# its full size is checked separately.
SMALL = {"sshd": {"width": 8}}
EXPECTED_PARAMS = {"hrpe": 294_753, "hrpe_ir": 293_601, "hrpe_lite": 37_649, "hrpe_nano": 15_977,
                   "spire_n": 61_369, "spire_s": 133_273, "spire_s_local": 133_273, "spire_s_local63": 133_273, "spire_m": 232_825,
                   "sshd": 28_735_256}


def test_ladder_names_take_a_hyphen_and_build_the_registered_network():
    from spire.models.registry import canonical_name, is_model

    assert canonical_name("spire-s") == "spire_s" and is_model("spire-m") and not is_model("spire-x")
    # the first version's names load their checkpoints as the ladder network they are
    assert canonical_name("hrpe_dense") == "spire_m" and create_model("hrpe_dense_s").arch == "spire_n"
    assert count_params(create_model("spire-n")) == EXPECTED_PARAMS["spire_n"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny inputs: one intra-op thread is faster than two fighting other jobs for 2 cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.lru_cache(maxsize=None)
def _template(name: str, small: bool = True) -> nn.Module:
    return create_model(name, **(SMALL.get(name, {}) if small else {}))


def _fresh(name: str, small: bool = True) -> nn.Module:
    """A new, untouched model (deep copy of a cached build: SSHD-Net takes a while to init)."""
    return copy.deepcopy(_template(name, small))


def _x(model, b=1, s=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, model.cfg.in_chans, s, s, generator=g)


def _randomize_bn(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) * 0.4 + 0.8)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)


def test_registry_lists_the_family():
    assert {"hrpe", "hrpe_ir", "hrpe_lite", "hrpe_nano", "sshd"} <= set(ALL)
    assert list_models("hrpe_*") == ["hrpe_ir", "hrpe_lite", "hrpe_nano"]
    assert list_models("spire_*") == ["spire_m", "spire_n", "spire_s", "spire_s_local", "spire_s_local63"]


@pytest.mark.parametrize("name", ALL)
def test_cfg_present_and_buildable(name):
    cfg = get_model_cfg(name)
    model = create_model(name)
    assert isinstance(cfg, ModelCfg) and model.cfg == cfg
    assert model.arch == name and model.arch_kwargs == {}
    assert cfg.stride == 4 and cfg.input_size % 32 == 0
    assert model.conv1.in_channels == cfg.in_chans
    pre = cfg.preprocess_config()
    assert pre.channels == cfg.in_chans and pre.imgsz == cfg.input_size
    codec = cfg.build_codec(256)
    assert codec.input_size == 256 and codec.heatmap_size == 64
    assert json.loads(json.dumps(cfg.to_dict())) == cfg.to_dict()


@pytest.mark.parametrize("name", ALL)
def test_forward_stride4_and_backward_reaches_every_parameter(name):
    model = _fresh(name).train()
    x = _x(model, b=2, s=64)  # ODConv's attention BN needs >= 2 samples in train mode
    y = model(x)
    assert y.shape == (2, 1, 16, 16)
    ((y - 0.5) ** 2).mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"parameters without a finite gradient: {no_grad[:5]}"
    model.eval()
    with torch.no_grad():
        assert model(_x(model, s=96)).shape == (1, 1, 24, 24)


@pytest.mark.parametrize("name", ALL)
def test_param_counts(name):
    assert count_params(_template(name, small=False)) == EXPECTED_PARAMS[name]


def test_sshd_size_and_single_frame_step():
    model = _fresh("sshd", small=False)
    assert abs(count_params(model) - 28.7e6) <= 0.03 * 28.7e6
    model.eval()  # batch 1: BN uses running stats, gradients still flow
    y = model(torch.randn(1, 3, 128, 128))
    assert y.shape == (1, 1, 32, 32)
    y.sum().backward()
    assert model.conv1.weight.grad is not None and model.final_layer.weight.grad.abs().sum() > 0


def test_macs_per_variant():
    # Conv MACs scale with the pixel count, so 128x128 counts (x16 / x25) stand for 512 / 640.
    macs = {n: count_macs(_template(n, small=False), 128) for n in ("hrpe", "hrpe_lite", "hrpe_nano", "sshd")}
    gmac = {n: v * 16 / 1e9 for n, v in macs.items()}
    assert gmac["hrpe"] == pytest.approx(4.8, rel=0.03)
    assert macs["hrpe"] * 25 / 1e9 == pytest.approx(7.6, rel=0.03)
    assert 0.5 <= gmac["hrpe_lite"] <= 0.8
    assert gmac["hrpe_nano"] <= 0.3 < gmac["hrpe_lite"] < gmac["hrpe"]
    assert gmac["sshd"] == pytest.approx(41, rel=0.05)


def test_odconv_batch_is_per_sample():
    torch.manual_seed(1)
    model = _fresh("sshd").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        both = model(x)
        one = torch.cat([model(x[:1]), model(x[1:])])
    torch.testing.assert_close(both, one, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(both[0], both[1])


@pytest.mark.parametrize("name", ALL)
def test_fuse_bn_matches(name):
    model = _fresh(name)
    _randomize_bn(model)
    model.eval()
    fused = fuse_bn(model)
    x = _x(model, s=64, seed=3)
    with torch.no_grad():
        ref, out = model(x), fused(x)
    assert fused.fused_bn > 0 and not fused.training
    assert (out - ref).abs().max().item() < 1e-5 * max(1.0, ref.abs().max().item())
    left = sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    if name.startswith("hrpe"):
        assert left == 0
    assert fused.cfg == model.cfg and model.bn1.__class__ is nn.BatchNorm2d  # original untouched


@pytest.mark.parametrize("name", ALL)
def test_checkpoint_round_trip(name, tmp_path):
    kwargs = {"width": 24} if name == "hrpe_lite" else dict(SMALL.get(name, {}))
    model = create_model(name, in_chans=None, **kwargs)
    assert model.arch_kwargs == kwargs
    _randomize_bn(model, seed=5)
    model.cfg = model.cfg.replace(input_size=320)
    extra = {}
    if name != "hrpe_ir":  # one variant saved without optimizer state
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        model.train()
        model(_x(model, b=2)).mean().backward()
        opt.step()
        extra["optimizer"] = opt.state_dict()
    meta = {"preprocess": {"imgsz": 320}, "training": {"epochs": 3, "note": "x"}}
    path = save_checkpoint(tmp_path / "run" / "best.pt", model, meta, epoch=3, **extra)
    assert [p.name for p in path.parent.iterdir()] == ["best.pt"]  # no temp file left behind
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["arch"] == name and raw["arch_kwargs"] == kwargs and raw["epoch"] == 3
    assert raw["meta"] == meta and ("state" in raw["optimizer"] if extra else "optimizer" not in raw)
    loaded, ckpt = load_checkpoint(path.parent)  # the folder works too
    assert not loaded.training and loaded.cfg.input_size == 320 and ckpt["epoch"] == 3
    model.eval()
    x = _x(model, s=64, seed=9)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)


def test_checkpoint_rejects_bad_input(tmp_path):
    model = create_model("hrpe_nano")
    with pytest.raises(TypeError, match=r"meta\['where'\]"):
        save_checkpoint(tmp_path / "a.pt", model, {"where": Path("/x")})
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "a.pt", model, {}, arch="x")
    with pytest.raises(ValueError, match="create_model"):
        save_checkpoint(tmp_path / "a.pt", nn.Conv2d(1, 1, 1), {})
    assert not list(tmp_path.iterdir())
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    for path, pattern in ((tmp_path / "missing.pt", "no such file"), (bad, "not a loadable")):
        with pytest.raises(CheckpointError, match=pattern) as e:
            load_checkpoint(path)
        assert "\n" not in str(e.value) and isinstance(e.value, SpireEdgeError)


def test_create_model_errors_and_kwargs():
    with pytest.raises(KeyError, match="hrpe_lite"):
        create_model("hrpe_lit")
    with pytest.raises(ValueError, match="faithful"):
        create_model("hrpe", width=16)
    with pytest.raises(TypeError, match="unknown argument"):
        create_model("hrpe_nano", depth=3)
    rgb = create_model("hrpe_lite", in_chans=3, fuse_scale=None)
    assert rgb.cfg.in_chans == 3 and rgb.cfg.norm["mode"] == "imagenet-rgb"
    assert rgb.arch_kwargs == {"in_chans": 3}


@needs_official
@pytest.mark.parametrize("path,size", [(SIRST4, 512), (UAVB, 640)])
def test_load_official(path, size):
    model = load_official(path)
    assert count_params(model) == 294_753 and not model.training
    assert model.cfg.input_size == size and model.cfg.faithful and model.official["epoch"] == 230
    with torch.no_grad():
        y = model(torch.zeros(1, 3, size, size))
    assert y.shape == (1, 1, size // 4, size // 4)
    assert torch.isfinite(y).all() and y.abs().max() < 2  # a trained map, not random init


def test_load_official_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_official(tmp_path / "nope.pth")
    other = tmp_path / "other.pth"
    torch.save({"model": create_model("hrpe_lite").state_dict()}, other)
    with pytest.raises(CheckpointError, match="not an official SPIRE") as e:
        load_official(other)
    assert "\n" not in str(e.value)


def _nuaa_points(name: str) -> np.ndarray:
    import cv2

    mask = cv2.imread(str(NUAA / "masks" / f"{name}_pixels0.png"), cv2.IMREAD_GRAYSCALE)
    _, _, _, centroids = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    return centroids[1:]


@needs_official
@needs_shared("data", "nuaa-sirst", "train.txt")
def test_official_sirst4_finds_nuaa_targets():
    from edge.frames import read_frame
    from edge.inference.preprocess import preprocess

    model = load_official(SIRST4)
    pre, codec = model.cfg.preprocess_config(), model.cfg.build_codec()
    assert pre.letterbox == "faithful" and codec.faithful
    for name in (NUAA / "train.txt").read_text().split()[:3]:
        frame = read_frame(NUAA / "images" / f"{name}.png")
        x, lb = preprocess(frame, pre)
        with torch.no_grad():
            heatmap = model(torch.from_numpy(x)[None]).numpy()
        pts = codec.decode(heatmap, lb)
        gt = _nuaa_points(name)
        assert len(gt) and len(pts) >= len(gt), name
        dist = np.linalg.norm(gt[:, None, :] - pts.xy[None, :, :], axis=2).min(axis=1)
        assert (dist <= 5).all(), f"{name}: {dist}"


@needs_official
def test_import_official_folder(tmp_path, capsys):
    from edge.model.sidecar import read_sidecar

    assert models_cli(["--import-official", str(SIRST4), "--out", str(tmp_path / "off")]) == 0
    meta = read_sidecar(tmp_path / "off")
    assert meta.arch == "hrpe" and meta.imgsz == 512 and meta.preprocess["letterbox"] == "faithful"
    assert meta.codec["type"] == "prps" and meta.codec["faithful"]
    loaded, _ = load_checkpoint(tmp_path / "off")
    ref = load_official(SIRST4)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), ref(x), atol=0, rtol=0)


def test_summary_cli(capsys):
    assert models_cli(["--summary", "--models", "hrpe_*", "--imgsz", "64", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = [r["model"] for r in rows]
    assert names == ["hrpe_ir", "hrpe_lite", "hrpe_nano"]
    assert all(r["output"] == [1, 1, 16, 16] and r["gmac"] > 0 for r in rows)
    assert rows[names.index("hrpe_lite")]["gmac"] == pytest.approx(0.596 * (64 / 512) ** 2, rel=0.02)
    assert models_cli(["--imgsz", "100"]) == 2
    assert "error: --imgsz 100" in capsys.readouterr().err


def test_edge_variant_exports_with_plain_ops(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = create_model("hrpe_nano").eval()
    x = _x(model, s=64)
    path = tmp_path / "nano.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=True, opset_version=18,
                      input_names=["images"], output_names=["heatmap"], verbose=False)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    allowed = {"Conv", "Relu", "Sigmoid", "ReduceMean", "Reshape", "Transpose", "Add", "Mul",
               "Concat", "Split", "Slice", "Identity", "Constant"}
    assert ops <= allowed, ops - allowed
    out = ort.InferenceSession(str(path)).run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        assert np.abs(out - model(x).numpy()).max() < 1e-4
    assert math.prod(out.shape) == 16 * 16


@pytest.mark.parametrize("name", ["spire_n", "spire_s", "spire_m"])
def test_dense_family_is_convs_adds_and_relus_only(name):
    """The reason hrpe_dense exists: no concat / split / shuffle for an INT8 CPU to copy around; one
    SE gate on the 16-channel neck is the only non-conv op."""
    gm = torch.fx.symbolic_trace(create_model(name).eval())
    calls = {str(n.target) for n in gm.graph.nodes if n.op in ("call_function", "call_method")}
    assert calls <= {"<built-in function add>", "<built-in function mul>"}, calls
    assert sum(str(n.target) == "<built-in function mul>" for n in gm.graph.nodes) == 1
    mods = {type(m).__name__ for m in create_model(name).modules()} - {"HRPEDense", "Sequential", "ResidualConv",
                                                                        "SEGate"}
    assert mods == {"Conv2d", "BatchNorm2d", "ReLU", "AdaptiveAvgPool2d", "Sigmoid"}
    model = create_model(name)
    for m in model.modules():  # the residual BNs start at zero gain; give every BN a real affine
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.1, 0.1)
    model.train()
    model(torch.randn(4, 1, 64, 64))  # non-trivial BN running stats
    model.eval()
    fused = fuse_bn(model)
    a = fused.arch_cfg
    assert fused.fused_bn == 2 + 2 * len(a.dilations) + bool(a.neck)  # every BN folds into its conv
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(fused(x), model(x), atol=1e-5)


def test_dense_starts_at_the_all_zero_map_with_identity_blocks():
    """Why hrpe_dense trains (its first version never left the all-zero plateau): a fresh block is
    the identity and a fresh head is ~0, whatever the input scale."""
    from spire.models.hrpe_dense import HRPEDenseArch, ResidualConv
    block = ResidualConv(8, dilation=2).eval()
    x = torch.rand(1, 8, 16, 16)  # post-ReLU features are >= 0
    with torch.no_grad():
        assert torch.equal(block(x), x)
        out = create_model("hrpe_dense").eval()(10 * torch.randn(1, 1, 64, 64))
    assert out.abs().max() < 0.05
    with pytest.raises(ValueError, match="dilations"):
        HRPEDenseArch(dilations=(1, 0))
    with pytest.raises(ValueError, match="multiples of 8"):
        HRPEDenseArch(width=60)


def test_local_gate_scores_a_frame_at_its_own_size_as_padded_away_from_the_padding():
    """spire_s_local: beyond the receptive field + the gate's half window from the padded edge, a frame
    run at its own size gives the very map it gives padded to a larger input; the global SE gate does
    not (every score depends on the whole input). Same parameters: spire_s weights load unchanged."""
    import torch

    from spire.models import create_model

    torch.manual_seed(0)
    glob = create_model("spire_s").eval()
    for m in glob.modules():  # non-trivial BN gains, so the blocks are not identities
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    local = create_model("spire_s_local").eval()
    local.load_state_dict(glob.state_dict())
    x = torch.randn(1, 1, 256, 320)
    padded = torch.zeros(1, 1, 512, 512)
    padded[..., :256, :320] = x
    far = (slice(None), slice(None), slice(0, 64 - 30), slice(0, 80 - 30))  # 30 map px = 120 px from the padding
    with torch.no_grad():
        lo, lp = local(x), local(padded)[..., :64, :80]
        go, gp = glob(x), glob(padded)[..., :64, :80]
    assert torch.equal(lo[far], lp[far])
    assert (go[far] - gp[far]).abs().max() > 1e-3 * go.abs().max()  # the global gate moves every score
