"""The video-clip dataset layout (videos/ + labels/ CSV + clip lists): reading, stride, bad clips."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from edge.datasets import detect_format, open_dataset
from edge.errors import DatasetError, FrameError
from edge.metrics.operating import joint_operating_point
from edge.metrics.points import PointMetrics


def write_clip(path, n=12, size=(96, 64), target=lambda k: (20 + 3 * k, 30)):
    """A grey clip with one bright 3x3 target moving right; frame k's pixel row 0 encodes k."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, size)
    assert vw.isOpened()
    for k in range(n):
        f = np.full((size[1], size[0]), 40, np.uint8)
        x, y = target(k)
        f[y - 1:y + 2, x - 1:x + 2] = 230
        f[0:8, 0:8] = 10 * k  # a per-frame brightness tag to check which frame was read
        vw.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    vw.release()


def make_layout(root, clips=("A", "B"), n=12, unlabelled=(3,)):
    (root / "videos").mkdir(parents=True)
    (root / "labels").mkdir()
    for c in clips:
        write_clip(root / "videos" / f"{c}.mp4", n)
        rows = ["frame,cx,cy,w,h,cls"] + [f"{k},{20 + 3 * k}.0,30.0,3,3,drone" for k in range(n) if k not in unlabelled]
        (root / "labels" / f"{c}.csv").write_text("\n".join(rows) + "\n")
    (root / "val.txt").write_text("\n".join(clips) + "\n")
    return root


def test_layout_is_detected_and_read_frame_by_frame(tmp_path):
    root = make_layout(tmp_path / "clips")
    assert detect_format(root) == "video"
    ds = open_dataset(root, split="val")
    assert len(ds) == 24 and ds.clips == ["A", "B"] and ds.clip_of(13) == "B"
    s = ds[5]
    assert s.name == "A#000005" and s.frame.ndim == 2 and s.frame.dtype == np.uint8 and s.frame.shape == (64, 96)
    assert abs(int(s.frame[2:6, 2:6].mean()) - 50) <= 3          # the frame tagged 5, not a neighbour
    np.testing.assert_allclose(s.points, [[35.0, 30.0]])
    assert len(ds[3].points) == 0 and ds[3].labelled                # no label row: target-free, labelled


def test_stride_keeps_every_kth_frame_and_random_access_matches_order(tmp_path):
    root = make_layout(tmp_path / "clips")
    ds = open_dataset(root, split="val", stride=5)
    assert ds.names == ["A#000000", "A#000005", "A#000010", "B#000000", "B#000005", "B#000010"]
    in_order = [ds[i].frame for i in range(len(ds))]
    fresh = open_dataset(root, split="val", stride=5)
    for i in (4, 1, 5, 0):                                          # jumps: single-frame seeks
        np.testing.assert_array_equal(fresh[i].frame, in_order[i])
    with pytest.raises(DatasetError, match="stride"):
        open_dataset(root, split="val", stride=0)


def test_truncated_clip_frames_fail_in_one_line_and_missing_files_are_reported(tmp_path):
    root = make_layout(tmp_path / "clips", clips=("A", "B", "C"))
    data = (root / "videos" / "B.mp4").read_bytes()
    (root / "videos" / "B.mp4").write_bytes(data[: len(data) // 3])
    (root / "labels" / "C.csv").unlink()
    with pytest.warns(UserWarning, match="C"):
        ds = open_dataset(root, split="val")
    assert "C" not in ds.clips and any("labels/NAME.csv" in p for p in ds.problems)
    bad = 0
    for i in range(len(ds)):
        try:
            ds[i]
        except FrameError as e:
            bad += 1
            assert "\n" not in str(e) and "B#" in str(e)
    assert ds.clips == ["A"] or bad > 0                             # a cut clip loses frames, never the run


def test_label_file_without_columns_is_a_one_line_error(tmp_path):
    root = make_layout(tmp_path / "clips", clips=("A",))
    (root / "labels" / "A.csv").write_text("x,y\n1,2\n")
    with pytest.raises(DatasetError, match="frame, cx, cy|cx, cy, frame|no cx"):
        open_dataset(root, split="val")


def test_info_command_counts_targets_without_decoding(tmp_path):
    root = make_layout(tmp_path / "clips")
    r = subprocess.run([sys.executable, "-m", "edge.datasets", "info", str(root), "--split", "val", "--stride", "3"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "format video" in r.stdout and "8 frames in 2 clips" in r.stdout and "6 targets, 2 target-free" in r.stdout, r.stdout


def test_joint_operating_point_scores_the_worst_set():
    """Set a is best at a high threshold, set b needs a low one: the joint pick balances the two."""
    a, b = PointMetrics(), PointMetrics()
    gt = np.array([[10.0, 10.0]])
    for _ in range(10):
        a.update(np.array([[10, 10, 0.9], [50, 50, 0.4]]), gt, (64, 64))   # clutter at 0.4
        b.update(np.array([[10, 10, 0.3]]), gt, (64, 64))                  # weak targets at 0.3
    r = joint_operating_point({"a": a, "b": b}, 0.35)
    assert r["thr"] <= 0.3 and r["sets"]["b"]["f1"] == 1.0
    assert r["f1"] == min(r["sets"]["a"]["f1"], r["sets"]["b"]["f1"]) < r["f1_pooled"] + 1e-9
    one = joint_operating_point({"a": a}, 0.35)
    assert one["thr"] > 0.4 and one["f1"] == 1.0


def test_evaluate_reads_the_video_layout_with_a_frame_stride(tmp_path):
    import json
    from pathlib import Path

    weights = Path(__file__).resolve().parents[2] / "weights" / "shipped" / "best.pt"
    if not weights.is_file():
        pytest.skip(f"{weights} not in this checkout")
    root = make_layout(tmp_path / "clips")
    out = tmp_path / "m.json"
    r = subprocess.run([sys.executable, "-m", "spire.evaluate", "--weights", str(weights), "--data", str(root),
                        "--split", "val", "--frame-stride", "4", "--json", str(out), "--quiet", "--threads", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads(out.read_text())
    assert m["images"] == 6 and m["targets"] == 6   # frames 0, 4, 8 of two clips (3 is not sampled)
