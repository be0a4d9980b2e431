"""spire.train end to end on a 6-frame NUAA fixture: files, exact resume, bad data, DDP; augmentation."""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spire.augment import AugmentConfig, augment, dihedral, random_crop
from spire.data import FrameStore
from spire.plan import Mixture, PlanFrames, PlanSampler, epoch_plan
from tests.conftest import needs_shared, nuaa_subset, shared

NUAA = shared("data", "nuaa-sirst")
NAMES = ["Misc_119", "Misc_64", "Misc_90", "Misc_100", "Misc_102", "Misc_103"]
needs_data = needs_shared("data", "nuaa-sirst", "images")


def make_fixture(root: Path, names=NAMES) -> Path:
    return nuaa_subset(root, names, {"train": names})


def run_train(out: Path, data: Path, *extra: str, epochs: int = 1):
    from spire.train import parse_config, train

    args = ["--model", "hrpe_nano", "--data", str(data), "--imgsz", "64", "--epochs", str(epochs),
            "--batch", "2", "--eval-every", "1", "--out", str(out), "--threads", "1", "--quiet", *extra]
    return train(parse_config(args))


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


# ----------------------------------------------------------------------------- augmentation
def _dot_frame():
    f = np.zeros((150, 200), np.uint8)
    pts = np.array([[30.0, 40.0], [170.0, 120.0]], np.float32)
    for x, y in pts.astype(int):
        f[y - 1:y + 2, x - 1:x + 2] = 255
    return f, pts


def _centroid(img, x, y, r=5):
    y0, x0 = max(0, int(round(y)) - r), max(0, int(round(x)) - r)
    win = img[y0:int(round(y)) + r + 1, x0:int(round(x)) + r + 1].astype(float)
    ys, xs = np.mgrid[y0:y0 + win.shape[0], x0:x0 + win.shape[1]]
    return (xs * win).sum() / win.sum(), (ys * win).sum() / win.sum()


@pytest.mark.parametrize("crop", [None, 64])
def test_augment_moves_points_with_the_pixels(crop):
    frame, pts = _dot_frame()
    rng = np.random.default_rng(0)
    seen = 0
    for i in range(60):
        img, p = augment(frame, pts, AugmentConfig(crop=crop), rng, background=(i % 4 == 0))
        if crop:
            assert img.shape == (crop, crop)
        for x, y in p:
            cx, cy = _centroid(img, x, y)
            assert abs(cx - x) < 0.6 and abs(cy - y) < 0.6, (i, x, y, cx, cy)
            seen += 1
    assert seen > 30


def test_dihedral_and_target_crop_geometry():
    frame, pts = _dot_frame()
    for k in range(8):
        img, p = dihedral(frame, pts, k)
        assert img.shape == ((200, 150) if k & 4 else (150, 200))
        for x, y in p:
            assert img[int(round(y)), int(round(x))] == 255
    rng = np.random.default_rng(1)
    for _ in range(20):  # a target-centred crop always keeps its target, away from the border
        img, p = random_crop(frame, pts, 48, rng, zoom=1.1, centre=tuple(pts[1]), margin=8)
        assert len(p) == 1 and np.all((p >= 8 * 1.1 - 1.5) & (p <= 48 - 8 * 1.1 + 0.5)), p
        assert img[int(round(p[0, 1])), int(round(p[0, 0]))] > 200


def test_train_parser_defaults_are_the_config_fields():
    """Defaults are written once, in TrainConfig: every option's default is its field's (--model's None
    means "--init's architecture, else TrainConfig.model")."""
    from spire.train_config import TrainConfig, build_parser

    parsed = vars(build_parser().parse_args(["--data", "x"]))
    fields = dataclasses.asdict(TrainConfig())
    differ = {k: v for k, v in parsed.items() if k not in ("data", "model")
              and (tuple(v) if isinstance(v, list) else v) != fields[k]}
    assert not differ and set(parsed) == set(fields)


def test_epoch_plan_is_seeded_sharded_and_mixes_background():
    frames, mix = PlanFrames(10, tuple(range(8)), (8, 9)), Mixture(0.2)
    a = epoch_plan(frames, mix, seed=3, epoch=2)
    assert a == epoch_plan(frames, mix, seed=3, epoch=2)
    assert a != epoch_plan(frames, mix, seed=3, epoch=3)
    assert sorted(i for i, b in a if not b) == list(range(8)) and sum(b for _, b in a) == 2
    assert all(i in (8, 9) for i, b in a if b)
    store = FrameStore(progress=False)
    for i in range(7):
        store.add_frame(f"f{i}", np.zeros((8, 8), np.uint8), [[3.0, 3.0]] if i < 5 else [])
    shards = [PlanSampler(store, 0, Mixture(0.3), r, 2) for r in range(2)]
    for s in shards:
        s.set_epoch(4)
    k0, k1 = (list(s) for s in shards)
    assert len(k0) == len(k1) and not set(k0) & set(k1)
    shards[0].set_epoch(4, skip=2)
    assert list(shards[0]) == k0[2:]


# ----------------------------------------------------------------------------- end to end
@needs_data
def test_train_writes_checkpoints_sidecar_and_log(tmp_path):
    from edge.model.sidecar import read_sidecar
    from spire.models import load_checkpoint

    data = make_fixture(tmp_path / "nuaa")
    s = run_train(tmp_path / "run", data, epochs=2)
    out = tmp_path / "run"
    for f in ("last.pt", "best.pt", "metadata.json", "log.csv", "train_args.json", "summary.json"):
        assert (out / f).is_file(), f
    meta = read_sidecar(out)  # checks the sha256 of best.pt too
    assert meta.format == "torch" and meta.model_file == "best.pt" and meta.training["imgsz"] == 64
    assert meta.imgsz == 512 and meta.schema_version == 2  # deployed at --val-imgsz's default, trained on 64 px crops
    assert meta.preprocess["norm"]["mode"] == "mean-std" and meta.preprocess["scale_up"] is False
    assert meta.training["split"]["val_frames"] == 1 and meta.training["split"]["train_frames"] == 5
    assert meta.training["seed"] == 0 and "commit" in meta.training
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"] and all(r["val_f1"] != "" for r in rows)
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    model, ckpt = load_checkpoint(out / "best.pt")
    assert model.cfg.norm["mean"] == meta.preprocess["norm"]["mean"]  # trained stats travel with it
    assert s["epochs_done"] == 2 and s["ranks_agree"]


@needs_data
def test_resume_mid_epoch_matches_an_uninterrupted_run(tmp_path):
    data = make_fixture(tmp_path / "nuaa")
    run_train(tmp_path / "a", data, epochs=2)
    # stop after the first batch (time limit), then resume twice up to the same 2 epochs
    s = run_train(tmp_path / "b", data, "--time-limit-min", "1e-7", epochs=2)
    assert s["stopped_early"] and s["epochs_done"] == 0
    ck = torch.load(tmp_path / "b" / "last.pt", map_location="cpu", weights_only=True)
    assert ck["state"]["epoch"] == 0 and ck["state"]["step"] == 1 and ck["state"]["loss_batches"] == 1
    run_train(tmp_path / "b", data, "--resume", epochs=1)
    run_train(tmp_path / "b", data, "--resume", epochs=2)
    a, b = weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    la = list(csv.DictReader(open(tmp_path / "a" / "log.csv")))
    lb = list(csv.DictReader(open(tmp_path / "b" / "log.csv")))
    assert [r["epoch"] for r in lb] == ["1", "2"]
    assert [r["train_loss"] for r in la] == [r["train_loss"] for r in lb]  # loss state restored
    assert [r["lr"] for r in la] == [r["lr"] for r in lb]


@needs_data
def test_corrupt_and_unlabelled_frames_are_reported_once_and_skipped(tmp_path, capsys):
    data = make_fixture(tmp_path / "nuaa")
    (data / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image at all")
    shutil.copy(data / "masks" / "Misc_64_pixels0.png", data / "masks" / "broken_pixels0.png")
    shutil.copy(data / "images" / "Misc_64.png", data / "images" / "nolabel.png")
    names = NAMES + ["broken", "nolabel"]
    (data / "train.txt").write_text("\n".join(names) + "\n")
    s = run_train(tmp_path / "run", data, "--val-fraction", "0.15", epochs=2)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len([ln for ln in lines if "broken" in ln]) == 1 and "cannot be read" in err, err
    assert len([ln for ln in lines if "nolabel" in ln]) == 1, err
    assert [p for p in s["data_problems"] if "broken" in p] and s["epochs_done"] == 2


@needs_data
def test_external_validation_names_are_excluded_from_training(tmp_path):
    data = make_fixture(tmp_path / "nuaa")
    val = make_fixture(tmp_path / "val", NAMES[:2])
    (val / "val.txt").write_text("\n".join(NAMES[:2]) + "\n")
    run_train(tmp_path / "run", data, "--val-data", str(val), "--val-split", "val", epochs=1)
    sp = json.loads((tmp_path / "run" / "metadata.json").read_text())["training"]["split"]
    assert sp["val_frames_excluded_from_train"] == 2 and sp["train_frames"] == 4 and sp["val_frames"] == 2


@needs_data
def test_validation_overlap_is_found_by_pixels_not_names(tmp_path):
    """A validation frame renamed (and stored as 3-channel grey) is still kept out of training;
    two training roots with the same file names but different pictures both keep their frames."""
    import cv2

    data = make_fixture(tmp_path / "nuaa")
    val = tmp_path / "val"
    (val / "images").mkdir(parents=True)
    (val / "masks").mkdir()
    from edge.frames import read_frame

    src = read_frame(NUAA / "images" / f"{NAMES[0]}.png")
    grey = cv2.cvtColor(src, cv2.COLOR_RGB2GRAY) if src.ndim == 3 else src
    cv2.imwrite(str(val / "images" / "renamed.png"), cv2.merge([grey, grey, grey]))
    shutil.copy(NUAA / "masks" / f"{NAMES[0]}_pixels0.png", val / "masks" / "renamed_pixels0.png")
    (val / "val.txt").write_text("renamed\n")
    other = tmp_path / "other"  # same names as `data`, other pictures (a second camera's dump)
    (other / "images").mkdir(parents=True)
    (other / "masks").mkdir()
    for a, b in zip(NAMES[:3], NAMES[3:]):
        shutil.copy(NUAA / "images" / f"{b}.png", other / "images" / f"{a}.png")
        shutil.copy(NUAA / "masks" / f"{b}_pixels0.png", other / "masks" / f"{a}_pixels0.png")
    (other / "train.txt").write_text("\n".join(NAMES[:3]) + "\n")
    from spire.train import parse_config, train

    train(parse_config(["--model", "hrpe_nano", "--data", str(data), str(other), "--imgsz", "64", "--epochs", "1",
                        "--batch", "2", "--out", str(tmp_path / "run"), "--threads", "1", "--quiet",
                        "--val-data", str(val), "--val-split", "val"]))
    sp = json.loads((tmp_path / "run" / "metadata.json").read_text())["training"]["split"]
    # 6 + 3 frames listed; NAMES[0] shows the validation picture; NAMES[3:] pictures appear in both roots
    assert sp["val_frames_excluded_from_train"] == 1, sp
    assert sp["exact_duplicates_skipped"] == 3 and sp["train_frames"] == 5, sp


def test_weighted_epoch_plan_follows_domain_weights_not_set_sizes():
    domains = [0] * 10 + [1] * 1000           # 10 frames of one domain, 1000 of another
    pos = list(range(5)) + list(range(10, 1010))
    neg = list(range(5, 10))                  # only domain 0 has target-free frames
    frames, mix = PlanFrames(1010, tuple(pos), tuple(neg), tuple(domains)), Mixture(0.5, (0.5, 0.5), 200)
    plan = epoch_plan(frames, mix, seed=1, epoch=0)
    assert plan == epoch_plan(frames, mix, seed=1, epoch=0)
    fg = [i for i, b in plan if not b]
    bg = [i for i, b in plan if b]
    assert len(fg) == 200 and len(bg) == 200
    assert sum(i < 10 for i in fg) == 100 and all(i < 5 for i in fg if i < 10)   # half from the small domain
    assert sum(i < 10 for i in bg) == 100 and all(5 <= i < 10 for i in bg if i < 10)  # its target-free frames
    assert len({i for i in fg if i >= 10}) == 100   # the large domain: no frame twice while they last
    # a domain with no target-free frames still gets background views (random views of its frames)
    assert sum(i >= 10 for i in bg) == 100


@needs_data
@pytest.mark.slow
def test_ddp_two_cpu_processes_keep_identical_weights(tmp_path):
    data = make_fixture(tmp_path / "nuaa")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "spire.train", "--model", "hrpe_nano", "--data", str(data), "--imgsz", "64", "--epochs", "2",
           "--batch", "1", "--eval-every", "2", "--out", str(out), "--threads", "1", "--quiet"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["world_size"] == 2 and len(s["rank_checksums"]) == 2 and s["ranks_agree"], s
    assert s["epochs_done"] == 2 and (out / "best.pt").is_file()
    # 5 training frames + 1 background view (bg-ratio 0.2) per epoch, split over 2 ranks, batch 1
    assert torch.load(out / "last.pt", weights_only=True)["state"]["global_step"] == 3 * 2


def test_operating_point_is_chosen_on_validation_scores():
    """Clutter peaks score 0.3-0.45, targets 0.6: the selected threshold drops every false alarm."""
    from edge.metrics.points import PointMetrics
    from edge.inference.points import Points
    from edge.metrics.operating import best_operating_point

    m = PointMetrics()
    for i in range(10):
        gt = np.array([[20.0 + i, 30.0]])
        pred = Points(np.array([[20.0 + i, 30.0], [80.0, 90.0 - i]], np.float32),
                      np.array([0.6, 0.3 + 0.015 * i], np.float32))
        m.update(pred, gt, (128, 128))
    r = best_operating_point(m, default_thr=0.35)
    assert r["f1"] == 1.0 and r["fp"] == 0 and 0.435 < r["thr"] <= 0.6
    assert r["f1_at_default_thr"] < 0.9  # the fixed default keeps most clutter peaks


@needs_data
def test_set_lr_steps_a_resumed_run_and_is_refused_on_a_new_one(tmp_path):
    from spire.cli import UsageError

    data = make_fixture(tmp_path / "nuaa")
    run_train(tmp_path / "r", data, epochs=1)
    run_train(tmp_path / "r", data, "--resume", "--set-lr", "1e-4", epochs=2)
    rows = list(csv.DictReader(open(tmp_path / "r" / "log.csv")))
    assert float(rows[0]["lr"]) != pytest.approx(1e-4) and float(rows[1]["lr"]) == pytest.approx(1e-4)
    with pytest.raises(UsageError, match="--set-lr"):
        run_train(tmp_path / "new", data, "--set-lr", "1e-4", epochs=1)


@needs_data
def test_init_starts_from_our_checkpoint_and_records_its_sha(tmp_path):
    from edge.model.sidecar import file_sha256, read_sidecar
    from spire.cli import UsageError

    data = make_fixture(tmp_path / "nuaa")
    run_train(tmp_path / "a", data, epochs=1)
    src = tmp_path / "a" / "best.pt"
    run_train(tmp_path / "b", data, "--init", str(src), epochs=1)
    meta = read_sidecar(tmp_path / "b")
    assert meta.training["init"] == {"path": str(src), "sha256": file_sha256(src)}
    assert meta.preprocess["norm"] == read_sidecar(tmp_path / "a").preprocess["norm"]  # its normalisation
    with pytest.raises(UsageError, match="--init"):
        run_train(tmp_path / "c", data, "--init", str(src), "--model", "hrpe_dense", epochs=1)


def test_photometric_view_keeps_dtype_geometry_and_labels_and_is_seeded():
    from spire.augment import sensor_photometric

    f, pts = _dot_frame()
    cfg = AugmentConfig(zoom=(1.0, 1.0), dihedral=False, photometric=1.0)
    a, pa = augment(f, pts, cfg, np.random.default_rng(3))
    b, _ = augment(f, pts, cfg, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pa, pts)
    assert a.dtype == np.uint8 and a.shape == f.shape and not np.array_equal(a, f)
    hi = sensor_photometric((f.astype(np.uint16) * 64 + 1000), np.random.default_rng(0))
    assert hi.dtype == np.uint16 and hi.max() > 255
    # the target stays the brightest spot: a photometric change must not move or erase it
    y, x = np.unravel_index(int(np.argmax(cv2_blur(a))), a.shape)
    assert min(np.hypot(x - pts[:, 0], y - pts[:, 1])) <= 2
    off, _ = augment(f, pts, AugmentConfig(zoom=(1.0, 1.0), dihedral=False), np.random.default_rng(3))
    np.testing.assert_array_equal(off, f)  # photometric=0 draws nothing and changes nothing


def cv2_blur(img):
    import cv2

    return cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.0)


def test_background_weights_split_background_views_apart_from_target_views():
    domains = [0] * 10 + [1] * 10
    pos, neg = list(range(0, 5)) + list(range(10, 20)), list(range(5, 10))
    plan = epoch_plan(PlanFrames(20, tuple(pos), tuple(neg), tuple(domains)), Mixture(0.5, (0.5, 0.5), 100, (1.0, 0.0)),
                      1, 0)
    assert sum(1 for i, b in plan if b and i < 10) == 100 and not any(b and i >= 10 for i, b in plan)
    assert sum(1 for i, b in plan if not b and i >= 10) == 50  # target views still split 50 / 50


def test_hard_negative_views_are_planned_and_centred_on_the_mined_place(tmp_path):
    """spire.mine's false alarms become that share of the background views, each a crop holding its place."""
    from spire.augment import AugmentConfig, augment
    from spire.cli import UsageError
    from spire.plan import HARD, Mixture, PlanFrames, epoch_plan
    from spire.mine import false_alarms, read_hard_negatives

    frames = PlanFrames(20, tuple(range(10)), tuple(range(10, 20)))
    plain = epoch_plan(frames, Mixture(0.5), 0, 3)
    assert epoch_plan(frames, Mixture(0.5, hard_ratio=0.5), 0, 3) == plain
    mixed = epoch_plan(dataclasses.replace(frames, hard=(4, 15)), Mixture(0.5, hard_ratio=0.4), 0, 3)
    assert len(mixed) == len(plain)
    assert sum(b == HARD for _, b in mixed) == 4 and {f for f, b in mixed if b == HARD} == {4, 15}
    assert sum(b == 1 for _, b in mixed) == 6

    frame = np.zeros((600, 900), np.uint8)
    place = (812.0, 37.0)  # near a corner: a random crop would almost never hold it
    rng = np.random.default_rng(0)
    for _ in range(20):
        _, p = augment(frame, np.array([place]), AugmentConfig(crop=64, zoom=(1.0, 1.0), dihedral=False), rng,
                       background=True, centre=place)
        assert len(p) == 1  # the mined place is inside every crop

    assert false_alarms([[10, 10], [50, 50]], [0.9, 0.4], np.array([[11.0, 10.0]]), 5.0) == [(50.0, 50.0, 0.4)]
    csv_file = tmp_path / "hn.csv"
    csv_file.write_text("root,name,x,y,score\nsirst-v2,a,1.5,2.5,0.7\nsirst-v2,a,3,4,0.5\n")
    got = read_hard_negatives(csv_file)
    np.testing.assert_allclose(got[("sirst-v2", "a")], [[1.5, 2.5], [3, 4]])
    with pytest.raises(UsageError, match="spire.mine"):
        read_hard_negatives(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match="not a spire.mine CSV"):
        read_hard_negatives(tmp_path / "bad.csv")


@needs_data
def test_promote_makes_the_last_epoch_a_checkpoint_with_its_own_sidecar(tmp_path, capsys):
    """spire.promote: best.pt in a new folder holds last.pt's weights, its sidecar names the last epoch's
    validation and the reason; the run is untouched and an existing --out is refused."""
    from edge.model.sidecar import read_sidecar
    from spire.promote import main

    data = make_fixture(tmp_path / "nuaa")
    run_train(tmp_path / "run", data, epochs=3)
    before = {f: (tmp_path / "run" / f).read_bytes() for f in ("best.pt", "metadata.json")}
    out = tmp_path / "promoted"
    assert main([str(tmp_path / "run"), "--why", "runtime-path val", "--out", str(out)]) == 0
    a, b = weights(tmp_path / "run" / "last.pt"), weights(out / "best.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    meta = read_sidecar(out)  # sha256 of the new best.pt checked
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert meta.training["epoch"] == 3 and meta.training["promoted"]["why"] == "runtime-path val"
    assert meta.training["best"]["f1"] == float(rows[-1]["val_f1"])
    assert (out / "log.csv").read_bytes() == (tmp_path / "run" / "log.csv").read_bytes()
    assert before == {f: (tmp_path / "run" / f).read_bytes() for f in before}
    from edge.cli import run_cli

    assert run_cli(main, [str(tmp_path / "run"), "--why", "again", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_val_fit_validates_as_the_exports_run_and_records_the_policy(tmp_path):
    """--val-fit pad: validation is edge.run's path on the exports (their input size, frames padded to
    it, larger ones tiled) and the checkpoint's sidecar says fit pad, so its exports run that way."""
    from edge.model.sidecar import read_sidecar
    from spire.train import parse_config, validation_path
    from spire.models import create_model

    data = make_fixture(tmp_path / "nuaa")
    run_train(tmp_path / "run", data, "--val-fit", "pad", "--val-imgsz", "128")
    meta = read_sidecar(tmp_path / "run")
    assert meta.preprocess["fit"] == "pad" and meta.training["imgsz"] == 64  # trained on 64 px crops,
    assert meta.imgsz == meta.preprocess["imgsz"] == 128 and meta.schema_version == 2  # deployed at 128
    assert "128 px exports, fit pad" in meta.training["validation"]
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert rows[-1]["val_f1"] != ""
    cfg = parse_config(["--data", str(data), "--imgsz", "64", "--val-fit", "native", "--val-imgsz", "96"])
    mcfg = create_model("hrpe_nano").cfg.replace(input_size=64)
    pre, codec = mcfg.preprocess_config(64), mcfg.build_codec(64)
    vpre, vcodec, mode, _ = validation_path(cfg, mcfg, pre, codec, True)
    assert (vpre.imgsz, mode) == (96, "auto") and vcodec.to_dict()["input_size"] == 96
    plain = parse_config(["--data", str(data), "--imgsz", "64"])
    assert validation_path(plain, mcfg, pre, codec, True)[:3] == (pre, codec, "native")


@needs_data
def test_finetuned_model_is_deployed_as_its_init_and_exports_at_that_size(tmp_path, capsys):
    """--init without --model or --val-fit: the architecture, the fit and the deployed size come from
    the starting model, validation runs that way, and export with no --imgsz builds that size."""
    from edge.model.sidecar import read_sidecar
    from export.common import load_source
    from spire.train import parse_config, train

    data = make_fixture(tmp_path / "nuaa")
    run_train(tmp_path / "a", data, "--val-fit", "pad", "--val-imgsz", "128")
    cfg = parse_config(["--init", str(tmp_path / "a"), "--data", str(data), "--imgsz", "64", "--epochs", "1",
                        "--batch", "2", "--eval-every", "1", "--out", str(tmp_path / "b"), "--threads", "1", "--quiet"])
    assert cfg.model == "hrpe_nano" and cfg.val_fit is None
    train(cfg)
    meta = read_sidecar(tmp_path / "b")
    assert (meta.arch, meta.preprocess["fit"], meta.imgsz) == ("hrpe_nano", "pad", 128)
    assert "128 px exports, fit pad" in meta.training["validation"]
    assert load_source(tmp_path / "b" / "best.pt").imgsz == 128  # not its 64 px training crops
    assert load_source(tmp_path / "b" / "best.pt", imgsz=96).imgsz == 96


def test_finetune_presets_yield_to_given_options_and_need_init(tmp_path):
    from spire.cli import UsageError
    from spire.train_config import FINETUNE, parse_config

    src = tmp_path / "a"
    with pytest.raises(UsageError, match="--init"):
        parse_config(["--data", "x", "--finetune"])
    from spire.models import create_model, save_checkpoint

    save_checkpoint(src / "best.pt", create_model("hrpe_nano"))
    cfg = parse_config(["--data", "x", "--init", str(src / "best.pt"), "--finetune", "--lr", "1e-3"])
    assert cfg.model == "hrpe_nano" and cfg.lr == 1e-3  # given wins
    assert (cfg.frame_stride, cfg.epochs, cfg.eval_every) == (FINETUNE["frame_stride"], FINETUNE["epochs"], 1)


@needs_data
def test_thresholds_scores_each_root_once_and_matches_evaluate(tmp_path, capsys):
    """spire.thresholds: one row per threshold per root; at a threshold it agrees with spire.evaluate
    (same Predictor path) and recall can only fall as the threshold rises."""
    from spire.evaluate import build_parser as eval_parser, evaluate
    from spire.thresholds import build_parser, print_table, sweep

    data = make_fixture(tmp_path / "nuaa")
    run_train(tmp_path / "run", data, epochs=1)
    w = str(tmp_path / "run" / "best.pt")
    args = build_parser().parse_args(["--weights", w, "--data", str(data), "--split", "train", "--imgsz", "64",
                                      "--thr", "0.05", "0.3", "0.9", "--quiet"])
    table = sweep(args)
    rows = table["nuaa"]
    assert list(rows) == [0.05, 0.3, 0.9] and all(r["images"] == 6 for r in rows.values())
    recalls = [r["recall"] for r in rows.values()]
    assert recalls == sorted(recalls, reverse=True)
    ref = evaluate(eval_parser().parse_args(["--weights", w, "--data", str(data), "--split", "train",
                                             "--mode", "auto", "--imgsz", "64", "--thr", "0.3", "--quiet"]))
    assert (ref["tp"], ref["fp"], ref["fn"]) == (rows[0.3]["tp"], rows[0.3]["fp"], rows[0.3]["fn"])
    print_table(table)
    assert "nuaa: 6 frames" in capsys.readouterr().out


# ----------------------------------------------------------------------------- copy-paste
def test_pasted_targets_land_where_their_labels_say():
    """A residual cut around a real target and pasted elsewhere peaks at its new label, and the
    frame keeps its dtype; a flat patch (no target) is not kept."""
    from spire.paste import PasteConfig, TargetBank, cut_residual

    src = np.full((40, 40), 60, np.uint8)
    src[20, 21] = 200
    src[19:22, 20:23] = np.maximum(src[19:22, 20:23], 120)
    res, off = cut_residual(src, 21.0, 20.0)
    assert res.max() > 100 and off == (0.0, 0.0)
    assert cut_residual(src, 2.0, 2.0) is None                     # leaves the frame
    bank = TargetBank([res], [off])
    bg = np.full((96, 96), 80, np.uint8)
    rng = np.random.default_rng(0)
    out, pts = bank.paste(bg, np.zeros((0, 2), np.float32), rng, PasteConfig(prob=1.0, max_targets=3, scale=(1, 1), gain=(1, 1)))
    assert out.dtype == np.uint8 and 1 <= len(pts) <= 3
    for x, y in pts:
        assert out[int(round(y)), int(round(x))] >= 200 and int(out[int(y), int(x)]) - 80 > 100
    assert (out == 80).mean() > 0.9                                # only the pasted patches changed


@needs_data
def test_copy_paste_run_records_its_bank_in_the_sidecar(tmp_path):
    data = make_fixture(tmp_path / "nuaa")
    run_train(tmp_path / "run", data, "--copy-paste", "1.0", "--bg-ratio", "0.5", epochs=1)
    cp = json.loads((tmp_path / "run" / "metadata.json").read_text())["training"]["split"]["copy_paste"]
    assert cp["prob"] == 1.0 and cp["patches"] >= 1
    from spire.train import parse_config

    with pytest.raises(Exception, match="copy-paste"):
        parse_config(["--data", str(data), "--copy-paste", "1.5"])


@needs_data
def test_ema_run_validates_and_saves_the_average_and_resumes_it_exactly(tmp_path):
    """--ema: best.pt (and a promoted last epoch) hold the moving average, not the raw weights;
    the average rides in last.pt, so a run cut after one batch and resumed ends bit-identical."""
    from spire.promote import promote

    data = make_fixture(tmp_path / "nuaa")
    run_train(tmp_path / "a", data, "--ema", "0.9", epochs=2)
    ck = torch.load(tmp_path / "a" / "last.pt", map_location="cpu", weights_only=True)
    avg = {k[len("module."):]: v for k, v in ck["ema"].items() if k.startswith("module.")}
    raw = ck["model"]
    assert int(ck["ema"]["n_averaged"]) > 1
    assert any(not torch.equal(raw[k], avg[k]) for k in raw if raw[k].is_floating_point())
    promote(tmp_path / "a", tmp_path / "p", "ema test")
    got = weights(tmp_path / "p" / "best.pt")
    assert all(torch.equal(got[k], avg[k]) for k in got)
    best = torch.load(tmp_path / "a" / "best.pt", map_location="cpu", weights_only=True)
    if best["epoch"] == 2:  # best is the last epoch: its weights are the average saved in last.pt
        assert all(torch.equal(best["model"][k], avg[k]) for k in avg)
    assert torch.load(tmp_path / "a" / "best.pt", weights_only=True)["meta"]["training"]["ema"] == 0.9
    run_train(tmp_path / "b", data, "--ema", "0.9", "--time-limit-min", "1e-7", epochs=2)
    run_train(tmp_path / "b", data, "--resume", epochs=2)
    cb = torch.load(tmp_path / "b" / "last.pt", map_location="cpu", weights_only=True)
    for k in ck["ema"]:
        assert torch.equal(ck["ema"][k], cb["ema"][k]), k


def test_ema_decay_outside_0_1_is_refused():
    from spire.cli import UsageError
    from spire.train import parse_config

    with pytest.raises(UsageError, match="--ema"):
        parse_config(["--data", "x", "--ema", "1.0"])


@needs_data
def test_resume_needs_no_data_option_and_a_new_run_does(tmp_path):
    """--resume reads --data from OUT/train_args.json (it asked for it again); a new run without it is one line."""
    from spire.cli import UsageError
    from spire.train import parse_config

    data = make_fixture(tmp_path / "nuaa")
    run_train(tmp_path / "run", data, epochs=1)
    cfg = parse_config(["--resume", "--out", str(tmp_path / "run"), "--epochs", "2"])
    assert cfg.data == [str(data)] and cfg.epochs == 2 and cfg.model == "hrpe_nano"
    with pytest.raises(UsageError, match="--data"):
        parse_config(["--out", str(tmp_path / "new")])


def test_the_first_signal_is_acknowledged_and_asks_for_a_clean_stop_the_second_stops_at_once():
    """StopControl: a validation pass can take minutes, so the first SIGTERM says it was heard (the run
    then stops after the batch or validation and saves last.pt); a second one interrupts at once.
    In a child process: signals sent to the test process itself crashed the suite's interpreter later."""
    import textwrap

    child = textwrap.dedent("""
        import os, signal
        from types import SimpleNamespace
        from spire.train import StopControl
        job = SimpleNamespace(cfg=SimpleNamespace(time_limit_min=0.0), info=SimpleNamespace(distributed=False))
        before = signal.getsignal(signal.SIGTERM)
        with StopControl(job) as stop:
            print("asked before:", stop())
            os.kill(os.getpid(), signal.SIGTERM)
            print("asked after:", stop(), stop.sig == signal.SIGTERM)
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                print("second: ignored")
            except KeyboardInterrupt:
                print("second: interrupted")
        print("restored:", signal.getsignal(signal.SIGTERM) == before)
    """)
    r = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:4] == ["asked before: False", "asked after: True True", "second: interrupted",
                                         "restored: True"]
    assert "SIGTERM received" in r.stderr and "saving last.pt" in r.stderr
