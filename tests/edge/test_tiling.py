"""Tiling: full coverage with >= 32 px overlap, each target found exactly once (also on tile borders)."""
from __future__ import annotations

import numpy as np
import pytest

from edge.inference.tiling import TileConfig, global_filter, merge_peaks, tile_grid, tile_starts

S = 64


@pytest.mark.parametrize("length, size", [(64, 64), (65, 64), (224, 64), (640, 256), (1280, 512), (1024, 512), (999, 320)])
def test_tiles_cover_with_overlap(length, size):
    starts = tile_starts(length, size, 32)
    assert starts[0] == 0 and starts[-1] + size == max(length, size) or length < size
    gaps = [a + size - b for a, b in zip(starts[:-1], starts[1:])]
    assert all(g >= 32 for g in gaps)
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s:s + size] = True
    assert covered.all()


def test_cores_partition_the_frame():
    tiles = tile_grid(200, 330, TileConfig(S, 32))
    pts = np.stack(np.meshgrid(np.arange(0, 330, 0.5), np.arange(0, 200, 0.5)), -1).reshape(-1, 2)
    owners = sum(t.owns(pts).astype(int) for t in tiles)
    assert (owners == 1).all()  # every pixel belongs to exactly one tile's core
    for t in tiles:  # and a core never reaches closer than overlap/2 to an inner tile edge
        x0, y0, x1, y1 = t.core
        assert x0 == -np.inf or x0 >= t.x + 16
        assert x1 == np.inf or x1 <= t.x + t.w - 16


def test_merge_peaks_keeps_best_of_each_cluster():
    xy = np.array([[10, 10], [11.5, 10.5], [30, 30], [32.9, 30], [36.5, 30]], np.float32)
    sc = np.array([0.5, 0.9, 0.8, 0.7, 0.6], np.float32)
    keep = merge_peaks(xy, sc, 3.0)
    assert sorted(keep.tolist()) == [1, 2, 4]
    assert global_filter(np.array([1.0, 0.5, 0.7]), top_k=2).tolist() == [0, 2]
    assert global_filter(np.array([1.0, 0.5, 0.7]), vr=0.35).tolist() == [0, 2]


@pytest.fixture(scope="module")
def predictor(fake_model):
    from edge.inference.predictor import Predictor

    return Predictor(fake_model, threads=1)  # the numpy fake target (tests/conftest.py): no runtime needed


def _frame(h, w, xy):
    rng = np.random.default_rng(0)
    img = np.clip(20 + rng.normal(0, 1.0, (h, w)), 0, 255)
    for x, y in xy:
        img[y - 1:y + 2, x - 1:x + 2] = 220
    return img.astype(np.uint8)


def test_targets_on_tile_borders_found_exactly_once(predictor):
    h, w = 150, 224  # S=64 -> x tiles start 0,32,..,160 (cores split at 48, 80, ...), y at 0,29,57,86
    starts = tile_starts(w, S, 32)
    assert len(starts) > 2
    # on a core boundary, on a tile's last column, inside an overlap, in a tile's middle
    gt = [(48, 40), (63, 75), (96, 61), (130, 100), (200, 20), (20, 130)]
    pts, t = predictor.predict(_frame(h, w, gt))
    assert predictor.uses_tiles((h, w)) and set(t) == {"read", "preprocess", "infer", "decode"}
    assert len(pts) == len(gt), pts.xy
    d = np.linalg.norm(pts.xy[:, None] - np.array(gt, np.float32)[None], axis=-1)
    assert (d.min(0) < 1.5).all() and (d.min(1) < 1.5).all()
    assert len(set(d.argmin(1).tolist())) == len(gt)  # one point per target


def test_resize_mode_loses_what_tiling_keeps(predictor):
    """A 2-pixel target in a 256x256 frame: letterboxed to 64 it fades; tiles keep native resolution."""
    img = np.full((256, 256), 20, np.uint8)
    img[100:102, 150:152] = 255
    tiled = predictor.predict(img)[0]
    predictor.mode = "resize"
    try:
        resized = predictor.predict(img)[0]
    finally:
        predictor.mode = "auto"
    assert len(tiled) == 1 and np.abs(tiled.xy[0] - (150.5, 100.5)).max() < 1.5
    assert len(resized) == 0 or np.abs(resized.xy[0] - (150.5, 100.5)).max() > 1.5 or resized.scores[0] < tiled.scores[0]


def test_small_frame_is_padded_not_tiled(predictor):
    img = _frame(40, 50, [(25, 20)])
    assert not predictor.uses_tiles(img.shape)
    pts = predictor(img)
    assert len(pts) == 1 and np.abs(pts.xy[0] - (25, 20)).max() < 1.0
