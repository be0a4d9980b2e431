"""Dataset readers on tiny hand-built fixtures of every layout, plus the converter round trip."""
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.datasets import (DatasetWarning, detect_format, open_dataset, open_datasets, points_from_mask,
                           write_spire_json)
from edge.datasets.__main__ import main as cli
from edge.errors import DatasetError

from tests.conftest import needs_shared, shared

SHARED = shared("data")


def _mask(hw=(32, 48)):
    m = np.zeros(hw, np.uint8)
    m[10:12, 20:22] = 255  # 2x2 block: centroid (20.5, 10.5)
    m[25, 5] = 255  # two diagonal pixels: ONE 8-connected component, centroid (5.5, 25.5)
    m[26, 6] = 255
    return m


TRUE_PTS = np.array([[20.5, 10.5], [5.5, 25.5]], np.float32)


def _img(hw=(32, 48), rgb=False, seed=0):
    g = np.random.default_rng(seed).integers(0, 200, hw, dtype=np.uint8)
    return np.dstack([g, g, g]) if rgb else g


def _nuaa(root: Path):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    cv2.imwrite(str(root / "images/a.png"), _img())
    cv2.imwrite(str(root / "masks/a_pixels0.png"), _mask())
    cv2.imwrite(str(root / "images/b.png"), _img(rgb=True, seed=1))
    cv2.imwrite(str(root / "masks/b_pixels0.png"), np.zeros((32, 48), np.uint8))  # background frame
    cv2.imwrite(str(root / "images/c.png"), _img(seed=2))  # no mask
    cv2.imwrite(str(root / "images/d.png"), _img((64, 96), seed=3))
    cv2.imwrite(str(root / "masks/d_pixels0.png"), _mask())  # half the image size
    (root / "train.txt").write_text("a\nb.png\n\nc\nmissing\nd\na\n")
    (root / "val.txt").write_text("a\n")
    return root


def test_points_from_mask_geometric_and_intensity():
    np.testing.assert_allclose(points_from_mask(_mask()), TRUE_PTS)
    frame = np.zeros((32, 48), np.uint8)
    frame[10, 20] = 30
    frame[11, 21] = 10
    pts = points_from_mask(_mask(), frame, centroid="intensity")
    np.testing.assert_allclose(pts[0], [20.25, 10.25])  # weights 30 at (20,10), 10 at (21,11)
    np.testing.assert_allclose(pts[1], TRUE_PTS[1])  # zero weights: geometric fallback
    assert points_from_mask(np.zeros((5, 5))).shape == (0, 2)


def test_nuaa_layout(tmp_path):
    root = _nuaa(tmp_path / "nuaa")
    assert detect_format(root) == "nuaa"
    with pytest.warns(DatasetWarning):
        ds = open_dataset(root, split="train")
    assert ds.format == "nuaa" and ds.names == ["a", "b", "d"]  # c: no mask, missing: no image, dup a
    assert any("missing" in p for p in ds.problems) and any("no mask" in p and "c" in p for p in ds.problems)
    s = ds[0]
    assert s.frame.shape == (32, 48) and s.mask.dtype == np.uint8 and s.points.dtype == np.float32
    np.testing.assert_allclose(s.points, TRUE_PTS)
    assert ds[1].frame.shape == (32, 48, 3) and len(ds[1].points) == 0 and ds[1].labelled
    d = ds[2]  # rescaled with one plain warning line (tests/commands/test_reliability.py), kept in ds.problems
    assert any(re.search("d_pixels0.png.*48x32.*96x64.*rescaled", p) for p in ds.problems)
    assert d.mask.shape == (64, 96)
    # pixel centres map as (x + 0.5) * 2 - 0.5
    np.testing.assert_allclose(d.points, TRUE_PTS * 2 + 0.5)
    with pytest.warns(DatasetWarning) as rec:
        ds_all = open_dataset(root, split="train", keep_unlabelled=True)
    assert any("no mask, kept unlabelled: c" in str(w.message) for w in rec)
    c = ds_all[ds_all.names.index("c")]
    assert not c.labelled and c.mask is None and len(c.points) == 0
    with pytest.warns(DatasetWarning, match="no mask, skipped: c"):
        assert open_dataset(root, split="all", exclude=["a", "b"]).names == ["d"]
    assert open_dataset(root, split=str(root / "val.txt")).names == ["a"]


def test_errors_are_one_line_and_name_the_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "empty", tmp_path / "nope"):
        with pytest.raises(DatasetError) as e:
            open_dataset(bad)
        assert str(bad) in str(e.value) and "\n" not in str(e.value)
    root = _nuaa(tmp_path / "nuaa")
    with pytest.raises(DatasetError, match="holds several datasets \\(nuaa\\); pass one"):
        open_dataset(tmp_path)
    with pytest.raises(DatasetError, match="split 'test'.*train, val"):
        open_dataset(root, split="test")
    with pytest.raises(DatasetError, match="unknown dataset format"):
        open_dataset(root, format="voc")


def test_basicirstd_layout(tmp_path):
    root = tmp_path / "TOY"
    for d in ("images", "masks", "img_idx"):
        (root / d).mkdir(parents=True)
    cv2.imwrite(str(root / "images/001.bmp"), _img())
    cv2.imwrite(str(root / "masks/001.bmp"), _mask())
    cv2.imwrite(str(root / "images/002.png"), _img(seed=5))
    cv2.imwrite(str(root / "masks/002.png"), _mask()[::-1])
    (root / "img_idx/train_TOY.txt").write_text("001\n")
    (root / "img_idx/test_TOY.txt").write_text("002\n")
    assert detect_format(root) == "basicirstd"
    tr, te = open_dataset(root, split="train"), open_dataset(root, split="test")
    assert tr.names == ["001"] and te.names == ["002"]
    np.testing.assert_allclose(tr[0].points, TRUE_PTS)
    assert sorted(te[0].points[:, 1].tolist()) == pytest.approx([31 - 25.5, 31 - 10.5])


def test_lesps_point_masks(tmp_path):
    root = tmp_path / "SIRST3"
    for d in ("images", "masks", "masks_centroid", "masks_coarse", "img_idx"):
        (root / d).mkdir(parents=True)
    cv2.imwrite(str(root / "images/x.png"), _img())
    cv2.imwrite(str(root / "masks/x.png"), _mask())
    pm = np.zeros((32, 48), np.uint8)
    pm[10, 21] = pm[26, 5] = 255
    cv2.imwrite(str(root / "masks_centroid/x.png"), pm)
    coarse = np.zeros((32, 48), np.uint8)
    coarse[9:12, 19:22] = 255
    cv2.imwrite(str(root / "masks_coarse/x.png"), coarse)
    (root / "img_idx/train_SIRST3.txt").write_text("x\n")
    assert detect_format(root) == "lesps"
    s = open_dataset(root)[0]
    np.testing.assert_allclose(s.points, [[21, 10], [5, 26]])
    assert s.mask is not None and s.mask.max() == 255  # full mask still attached for mask metrics
    np.testing.assert_allclose(open_dataset(root, point_label="coarse")[0].points, [[20, 10]])


@pytest.mark.filterwarnings("ignore::edge.datasets.DatasetWarning")
def test_spire_json_round_trip_and_merge(tmp_path):
    src = _nuaa(tmp_path / "nuaa")
    dst = tmp_path / "spire"
    with pytest.warns(DatasetWarning):
        tr = open_dataset(src, split="train")
    write_spire_json(tr, dst)
    write_spire_json(open_dataset(src, split="val"), dst)  # merged, not overwritten
    coco = json.loads((dst / "annotations/annotations.json").read_text())
    assert sorted(im["id"] for im in coco["images"]) == ["a", "b", "d"]
    a = next(x for x in coco["annotations"] if x["image_id"] == "a")
    assert a["num_keypoints"] == 2 and a["keypoints"][2] == 1 and a["area"] == [4.0, 2.0]
    assert (dst / "img_idx/val.txt").read_text() == "a\n"
    assert detect_format(dst) == "spire-json"
    back = open_dataset(dst, split="train")
    assert back.names == ["a", "b", "d"]
    for i in range(3):
        np.testing.assert_allclose(back[i].points, tr[i].points, atol=1e-5)
        np.testing.assert_array_equal(back[i].frame, tr[i].frame)
    # an id that is not in the json is reported, not fatal
    (dst / "img_idx/val.txt").write_text("a\nzzz\n")
    with pytest.warns(DatasetWarning, match="zzz"):
        assert open_dataset(dst, split="val").names == ["a"]


def test_concat_and_cli(tmp_path, capsys):
    src = _nuaa(tmp_path / "nuaa")
    cat = open_datasets([(src, "val"), (src, "val")])
    assert len(cat) == 2 and cat.names == ["a", "a"] and cat.format == "nuaa"
    np.testing.assert_allclose(cat[-1].points, TRUE_PTS)
    with pytest.raises(IndexError):
        cat[2]
    assert cli(["convert", str(src), "--split", "train,val", "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o/img_idx/train.txt").read_text().split() == ["a", "b", "d"]
    assert "warning:" in capsys.readouterr().out
    assert cli(["info", str(tmp_path / "o"), "--split", "val"]) == 0
    assert "spire-json" in capsys.readouterr().out
    assert cli(["info", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


@needs_shared("data", "nuaa-sirst")
def test_shared_nuaa_minus_sirst_v2_val():
    ds = open_dataset(SHARED / "nuaa-sirst", split="train", exclude=SHARED / "sirst-v2/val.txt")
    assert len(ds) == 213 - 57 and not ds.problems
    s = ds[0]
    assert s.mask.shape == s.frame.shape[:2] and len(s.points) >= 1
    v2 = open_dataset(SHARED / "sirst-v2", split="background")
    assert v2.format == "nuaa" and len(v2) == 379
