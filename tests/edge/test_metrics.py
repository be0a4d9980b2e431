"""Metrics on hand-made cases whose answers are worked out by hand in the comments."""
import math

import numpy as np
import pytest

from edge.metrics import MaskMetrics, PointMetrics, match_greedy, match_hungarian
from edge.metrics.curves import average_precision, pr_points
from edge.metrics.matching import _hungarian_numpy, linear_assignment


class _Pts:  # duck-typed stand-in for edge.inference.points.Points
    def __init__(self, xy, scores):
        self.xy = np.asarray(xy, np.float32).reshape(-1, 2)
        self.scores = np.asarray(scores, np.float32)


def test_greedy_and_hungarian_differ():
    # GT0 at 0, GT1 at 4 (x axis); predictions at 3 and -4.
    # Greedy: GT0 takes its nearest (3, d=3); GT1's only free one is -4 (d=8 > 5) -> 1 TP.
    # Hungarian: GT0-(-4) d=4, GT1-3 d=1 -> 2 TP.
    gt = [[0, 0], [4, 0]]
    pred = [[3, 0], [-4, 0]]
    g = match_greedy(gt, pred, 5.0)
    h = match_hungarian(gt, pred, 5.0)
    assert (g.tp, g.fp, g.fn) == (1, 1, 1)
    assert (h.tp, h.fp, h.fn) == (2, 0, 0)
    assert sorted(h.dist.tolist()) == [1.0, 4.0]
    assert match_hungarian(gt, pred, 5.0, use_scipy=False).tp == 2


def test_greedy_is_gt_order_dependent_and_gate_inclusive():
    pred = [[5, 0]]
    assert match_greedy([[0, 0]], pred, 5.0).tp == 1  # distance exactly 5 is a hit
    assert match_greedy([[-0.01, 0]], pred, 5.0).tp == 0
    # Same two GTs in the other order: the first GT claims the shared prediction.
    m1 = match_greedy([[0, 0], [1, 0]], [[0.9, 0]], 5.0)
    m2 = match_greedy([[1, 0], [0, 0]], [[0.9, 0]], 5.0)
    assert m1.gt_idx.tolist() == [0] and m2.gt_idx.tolist() == [0]
    assert m1.dist[0] == pytest.approx(0.9) and m2.dist[0] == pytest.approx(0.1)


def test_numpy_hungarian_matches_scipy():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m = rng.integers(1, 8, 2)
        c = np.round(rng.random((n, m)) * 9)  # ties included
        r1, c1 = linear_assignment(c, use_scipy=True)
        r2, c2 = _hungarian_numpy(c)
        assert len(r2) == min(n, m)
        assert c[r1, c1].sum() == pytest.approx(c[r2, c2].sum())
        assert len(set(c2.tolist())) == len(c2)


def test_empty_inputs():
    m = match_hungarian(np.zeros((0, 2)), [[1, 1]], 5.0)
    assert (m.tp, m.fp, m.fn) == (0, 1, 0)
    m = match_greedy([[1, 1]], np.zeros((0, 2)), 5.0)
    assert (m.tp, m.fp, m.fn) == (0, 0, 1)


def _two_frames(method="greedy"):
    pm = PointMetrics(max_dist=5.0, method=method)
    # frame 1, 100x100: GT (10,10),(50,50); preds (11,10)@.9 d=1, (80,80)@.8 false, (50,54)@.3 d=4
    pm.update(_Pts([[11, 10], [80, 80], [50, 54]], [0.9, 0.8, 0.3]), [[10, 10], [50, 50]], (100, 100))
    # frame 2, 40x50: GT (5,5), only the (0,0) "no target" padding slot predicted
    pm.update(_Pts([[0, 0]], [0.0]), [[5, 5]], (40, 50))
    return pm


def test_point_metrics_counts_by_hand():
    r = _two_frames().compute()
    assert (r["tp"], r["fp"], r["fn"], r["images"], r["targets"]) == (2, 1, 1, 2, 3)
    assert r["pixels"] == 100 * 100 + 40 * 50
    assert r["precision"] == pytest.approx(2 / 3)
    assert r["recall"] == r["pd"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(2 / 3)
    assert r["fa_per_pixel"] == pytest.approx(1 / 12000)
    assert r["fppi"] == pytest.approx(0.5)
    assert r["loc_error_px"] == pytest.approx(2.5)
    assert "per_scr" not in r


def test_threshold_rematches():
    pm = _two_frames()
    r = pm.compute(score_thr=0.5)  # (50,54)@.3 dropped -> GT (50,50) missed
    assert (r["tp"], r["fp"], r["fn"]) == (1, 1, 2)
    assert r["loc_error_px"] == pytest.approx(1.0)
    rows = pm.sweep([0.95, 0.0, 0.5])
    assert [row["score_thr"] for row in rows] == [0.0, 0.5, 0.95]
    assert [row["tp"] for row in rows] == [2, 1, 0]
    assert rows[2]["precision"] == 0.0 and math.isnan(rows[2]["loc_error_px"])
    assert pm.best([0.0, 0.5, 0.95])["score_thr"] == 0.0


def test_accepts_edge_points():
    from edge.inference.points import Points

    pm = PointMetrics(method="hungarian")
    pm.update(Points(np.array([[3.0, 4.0], [30.0, 30.0]]), np.array([0.9, 0.2])), [[0, 0]], (64, 64))
    r = pm.compute(score_thr=0.5)
    assert (r["tp"], r["fp"], r["loc_error_px"]) == (1, 0, 5.0)


def test_array_predictions_and_validation():
    pm = PointMetrics()
    pm.update(np.array([[1.0, 1.0, 0.7]]), [[1, 2]], (10, 10))
    pm.update(np.array([[3.0, 3.0]]), np.zeros((0, 2)), (10, 10))
    r = pm.compute()
    assert (r["tp"], r["fp"], r["fn"]) == (1, 1, 0)
    with pytest.raises(ValueError):
        PointMetrics(method="nearest")
    with pytest.raises(ValueError):
        pm.update(np.zeros((2, 4)), [[1, 1]], (10, 10))


def test_per_scr_breakdown():
    pm = PointMetrics(scr_bands=(0, 3, 6, math.inf))
    # targets at SCR 1 (missed), 4 (hit d=0.5), 10 (hit d=1.5)
    pm.update(_Pts([[20.5, 20], [30, 31.5]], [1, 1]), [[0, 50], [20, 20], [30, 30]], (64, 64), scr=[1, 4, 10])
    bands = pm.compute()["per_scr"]
    assert [b["targets"] for b in bands] == [1, 1, 1]
    assert [b["pd"] for b in bands] == [0.0, 1.0, 1.0]
    assert bands[2]["loc_error_px"] == pytest.approx(1.5)
    with pytest.raises(ValueError):
        pm.update(_Pts([], []), [[1, 1]], (8, 8), scr=[1, 2])


def test_summary_line_names_units():
    line = _two_frames().summary_line()
    assert "false targets/px" in line and "false pts/frame" in line and "px" in line
    assert "TP 2 FP 1 FN 1" in line


def test_curves(tmp_path):
    pm = _two_frames()
    rows = pm.sweep([0.0, 0.5, 0.85, 0.95])
    rec, prec, _ = pr_points(rows)
    assert np.all(np.diff(rec) >= 0) and rec.size == 3  # 0.95 made no prediction
    # (R, P): thr 0.85 -> (1/3, 1), 0.5 -> (1/3, 1/2), 0 -> (2/3, 2/3).
    # Monotone envelope: P=1 on (0, 1/3], 2/3 on (1/3, 2/3] -> AP = 1/3 + 2/9 = 5/9
    assert average_precision(rows) == pytest.approx(5 / 9)
    paths = pm.save_curves(tmp_path, [0.0, 0.5, 0.95])
    for p in paths.values():
        assert p.exists() and p.read_bytes()[:4] == b"\x89PNG"


def test_mask_metrics_equal_area_components():
    """Two predicted blobs of 4 px each: one on the target, one false. The old area-list Fa
    dropped the false one because its area equals the matched one's; here Fa = 4 px."""
    gt = np.zeros((32, 32), np.uint8)
    gt[10:12, 10:12] = 255
    pred = np.zeros((32, 32), np.float32)
    pred[10:12, 10:12] = 0.9
    pred[20:22, 25:27] = 0.8
    pred[0, 0] = 0.4  # below threshold: not predicted
    mm = MaskMetrics()
    f = mm.update(pred, gt)
    assert f == {"targets": 1, "detected": 1, "fa_pixels": 4, "iou": pytest.approx(4 / 8)}
    r = mm.compute()
    assert r["pd"] == 1.0 and r["fa_per_pixel"] == pytest.approx(4 / 1024)
    assert r["iou"] == pytest.approx(0.5)


def test_mask_metrics_distance_and_first_match():
    gt = np.zeros((40, 40), np.uint8)
    gt[5, 5] = 1
    gt[30, 30] = 1
    pred = np.zeros((40, 40), np.uint8)
    pred[5, 8] = 1  # 3 px away: not < 3 -> miss, counted as false pixels
    pred[31, 31] = 1  # sqrt(2): hit
    mm = MaskMetrics()
    mm.update(pred, gt)
    mm.update(np.zeros((40, 40)), np.zeros((40, 40)))  # empty frame: IoU 1
    r = mm.compute()
    assert (r["targets"], r["detected"], r["fa_pixels"]) == (2, 1, 1)
    assert r["niou"] == pytest.approx((0 / 4 + 1) / 2)
    assert "e-6" in mm.summary_line()
    with pytest.raises(ValueError):
        mm.update(np.zeros((8, 8)), np.zeros((9, 9)))


def test_false_points_per_target_free_frame_counts_only_frames_without_targets():
    from edge.metrics.points import PointMetrics

    m = PointMetrics()
    m.update(np.array([[10.0, 10.0], [40.0, 40.0]]), np.array([[10.0, 10.0]]), (64, 64))  # 1 FP, target frame
    m.update(np.array([[5.0, 5.0], [30.0, 30.0]]), np.zeros((0, 2)), (64, 64))            # 2 FP, clutter only
    m.update(np.zeros((0, 2)), np.zeros((0, 2)), (64, 64))                                # clean clutter frame
    r = m.compute()
    assert r["target_free_frames"] == 2 and r["fp_per_target_free_frame"] == 1.0 and r["fppi"] == 1.0
