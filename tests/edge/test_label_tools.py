"""Labels in from CVAT / Label Studio / COCO (`edge.datasets convert --from`), pre-labels out (`edge.run --labels-out`)."""
from __future__ import annotations

import csv
import json
import zipfile

import cv2
import numpy as np
import pytest

from edge import run as edge_run
from edge.datasets import open_dataset
from edge.datasets.__main__ import main as datasets_main
from edge.demo import demo_root


def write_clip(path, n=12, size=(64, 48)):
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, size)
    assert vw.isOpened()
    for _ in range(n):
        vw.write(np.full((size[1], size[0], 3), 40, np.uint8))
    vw.release()
    return path


def write_image(path, size=(64, 48)):
    cv2.imwrite(str(path), np.full((size[1], size[0]), 30, np.uint8))
    return path


def read_csv(path) -> dict[int, list[tuple[float, float]]]:
    out: dict[int, list] = {}
    for r in csv.DictReader(open(path, newline="")):
        out.setdefault(int(r["frame"]), []).append((float(r["cx"]), float(r["cy"])))
    return {k: sorted(v) for k, v in out.items()}


def convert(src, tool, out, media=None) -> int:
    argv = ["convert", str(src), "--from", tool, "--out", str(out)]
    return datasets_main(argv + (["--videos", str(media)] if media else []))


def one_line_error(capsys, *words) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for w in words:
        assert w in err, err
    return err


CVAT_VIDEO = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version>
  <meta><task><id>3</id><name>my flight</name><mode>interpolation</mode><source>clip.mp4</source></task></meta>
  <track id="0" label="drone" source="manual">
    <points frame="0" outside="0" occluded="0" keyframe="1" points="10.00,10.00" z_order="0"/>
    <points frame="4" outside="0" occluded="0" keyframe="1" points="18.00,14.00" z_order="0"/>
    <points frame="6" outside="1" occluded="0" keyframe="1" points="18.00,14.00" z_order="0"/>
    <points frame="8" outside="0" occluded="0" keyframe="1" points="30.00,20.00" z_order="0"/>
  </track>
  <track id="1" label="bird" source="manual">
    <box frame="2" outside="0" occluded="0" keyframe="1" xtl="40" ytl="30" xbr="44" ybr="34" z_order="0"/>
    <box frame="3" outside="1" occluded="0" keyframe="1" xtl="40" ytl="30" xbr="44" ybr="34" z_order="0"/>
  </track>
</annotations>
"""


def test_cvat_video_interpolates_keyframes_and_outside_ends_a_track(tmp_path, capsys):
    write_clip(tmp_path / "clip.mp4")
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "task.xml").write_text(CVAT_VIDEO)
    assert convert(tmp_path / "export", "cvat", tmp_path / "ds", tmp_path) == 0
    got = read_csv(tmp_path / "ds" / "labels" / "clip.csv")
    assert got[0] == [(10.0, 10.0)] and got[1] == [(12.0, 11.0)] and got[4] == [(18.0, 14.0)]
    assert got[2] == sorted([(14.0, 12.0), (42.0, 32.0)])  # the box's centre, on its one frame
    assert got[5] == [(18.0, 14.0)] and 6 not in got and 7 not in got  # held to `outside`, then gone
    assert all(got[k] == [(30.0, 20.0)] for k in range(8, 12))  # a last keyframe lasts to the end
    assert (tmp_path / "ds" / "train.txt").read_text() == "clip\n"
    ds = open_dataset(tmp_path / "ds")
    assert ds.format == "video" and len(ds) == 12
    with zipfile.ZipFile(tmp_path / "task.zip", "w") as z:  # CVAT's download, as it comes
        z.writestr("annotations.xml", CVAT_VIDEO)
    assert convert(tmp_path / "task.zip", "cvat", tmp_path / "ds2") == 0
    assert read_csv(tmp_path / "ds2" / "labels" / "clip.csv") == got
    row = next(csv.DictReader(open(tmp_path / "ds" / "labels" / "clip.csv")))
    assert row["cls"] == "drone" and row["w"] == ""


def test_cvat_images_to_spire_json(tmp_path):
    for n in ("a", "b"):
        write_image(tmp_path / f"{n}.png")
    (tmp_path / "ann.xml").write_text("""<annotations><version>1.1</version>
      <meta><task><mode>annotation</mode></task></meta>
      <image id="0" name="a.png" width="64" height="48">
        <points label="target" occluded="0" points="3.00,4.00;10.00,12.00" z_order="0"/>
        <box label="target" occluded="0" xtl="20" ytl="20" xbr="26" ybr="24" z_order="0"/>
      </image>
      <image id="1" name="b.png" width="64" height="48"></image>
    </annotations>""")
    assert convert(tmp_path / "ann.xml", "cvat", tmp_path / "ds") == 0
    ds = open_dataset(tmp_path / "ds", split="train")
    assert ds.format == "spire-json" and ds.names == ["a", "b"]
    np.testing.assert_allclose(sorted(ds[0].points.tolist()), [[3, 4], [10, 12], [23, 22]])
    assert len(ds[1].points) == 0


def test_labelstudio_image_keypoints_and_rotated_rectangles(tmp_path):
    write_image(tmp_path / "a.png", (200, 100))
    task = {"id": 7, "data": {"image": "/data/upload/1/1a2b3c4d-a.png"},
            "annotations": [{"was_cancelled": True, "result": []},
                            {"result": [
                                {"type": "keypointlabels", "original_width": 200, "original_height": 100,
                                 "value": {"x": 10, "y": 50, "width": 0.5, "keypointlabels": ["drone"]}},
                                {"type": "rectanglelabels", "original_width": 200, "original_height": 100,
                                 "value": {"x": 50, "y": 20, "width": 10, "height": 20, "rotation": 90,
                                           "rectanglelabels": ["drone"]}}]}]}
    (tmp_path / "export.json").write_text(json.dumps([task]))
    assert convert(tmp_path / "export.json", "labelstudio", tmp_path / "ds") == 0
    pts = sorted(open_dataset(tmp_path / "ds")[0].points.tolist())
    # keypoint 10%,50% of 200x100; a 20x20 px box at (100, 20) turned 90 degrees about its top-left corner
    np.testing.assert_allclose(pts, [[20, 50], [90, 30]], atol=1e-4)


def test_labelstudio_video_sequence_enabled_and_interpolation(tmp_path):
    write_clip(tmp_path / "clip.mp4", 12, (100, 50))
    seq = [{"frame": 1, "enabled": True, "x": 8, "y": 8, "width": 4, "height": 4},
           {"frame": 5, "enabled": False, "x": 16, "y": 16, "width": 4, "height": 4},
           {"frame": 8, "enabled": True, "x": 50, "y": 50, "width": 4, "height": 4}]
    task = {"data": {"video": "clip.mp4"}, "predictions": [{"result": [
        {"type": "videorectangle", "value": {"sequence": seq, "labels": ["drone"], "framesCount": 12}}]}]}
    (tmp_path / "ls.json").write_text(json.dumps([task]))
    assert convert(tmp_path / "ls.json", "labelstudio", tmp_path / "ds") == 0
    got = read_csv(tmp_path / "ds" / "labels" / "clip.csv")
    assert got[0] == [(10.0, 5.0)] and got[2] == [(14.0, 7.0)] and got[4] == [(18.0, 9.0)]
    assert 5 not in got and 6 not in got  # disabled after frame 5 (0-based 4) until the next keyframe
    assert all(got[k] == [(52.0, 26.0)] for k in range(7, 12))


def test_coco_keypoints_and_bbox_centres(tmp_path):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png")
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48},
                       {"id": 2, "file_name": "b.png", "width": 64, "height": 48}],
            "annotations": [{"id": 1, "image_id": 1, "keypoints": [5, 6, 2, 7, 8, 0, 9.5, 10.5, 1]},
                            {"id": 2, "image_id": 2, "bbox": [10, 20, 4, 6]}],
            "categories": [{"id": 1, "name": "target", "keypoints": ["centre"]}]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    assert convert(tmp_path / "coco.json", "coco", tmp_path / "ds") == 0
    ds = open_dataset(tmp_path / "ds")
    np.testing.assert_allclose(sorted(ds[0].points.tolist()), [[5, 6], [9.5, 10.5]])
    np.testing.assert_allclose(ds[1].points.tolist(), [[12, 23]])


def _cvat_one(tmp_path, frame=3, xy="10,10", source="clip.mp4"):
    (tmp_path / "t.xml").write_text(f"""<annotations><version>1.1</version>
      <meta><task><mode>interpolation</mode><source>{source}</source></task></meta>
      <track id="5" label="t"><points frame="{frame}" outside="0" keyframe="1" points="{xy}"/></track></annotations>""")
    return tmp_path / "t.xml"


@pytest.mark.parametrize("case, words", [
    ("beyond", ["t.xml", "track 5", "frame 50", "12 frames"]),
    ("outside", ["t.xml", "track 5", "(90.00, 10.00)", "64x48"]),
    ("missing", ["t.xml", "gone.mp4", "--videos"]),
    ("nan", ["t.xml", "track 5", "nan"]),
    ("coco-nan", ["c.json", "annotation id=1", "is nan"]),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, case, words):
    write_clip(tmp_path / "clip.mp4")
    write_image(tmp_path / "a.png")
    src, tool = {"beyond": lambda: _cvat_one(tmp_path, frame=50), "outside": lambda: _cvat_one(tmp_path, xy="90,10"),
                 "missing": lambda: _cvat_one(tmp_path, source="gone.mp4"),
                 "nan": lambda: _cvat_one(tmp_path, xy="nan,3")}.get(case, lambda: None)(), "cvat"
    if case == "coco-nan":
        src, tool = tmp_path / "c.json", "coco"
        src.write_text('{"images": [{"id": 1, "file_name": "a.png"}], '
                       '"annotations": [{"id": 1, "image_id": 1, "keypoints": [NaN, 3, 2]}]}')
    assert convert(src, tool, tmp_path / "out" / "ds") == 2
    one_line_error(capsys, *words)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # no dataset, no temp folder


def test_out_is_refused_when_it_holds_files_or_names_a_file(tmp_path, capsys):
    write_clip(tmp_path / "clip.mp4")
    src = _cvat_one(tmp_path)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "x").write_text("keep")
    assert convert(src, "cvat", tmp_path / "ds") == 2
    one_line_error(capsys, "already holds files")
    assert convert(src, "cvat", tmp_path / "points.json") == 2
    one_line_error(capsys, "names a file")
    # the old bug: a video dataset converted to `--out points.json` made a folder of MP4 copies
    assert datasets_main(["convert", str(demo_root()), "--split", "all", "--out", str(tmp_path / "p.json")]) == 2
    one_line_error(capsys, "names a file", str(tmp_path / "p"))
    assert not (tmp_path / "p.json").exists()
    assert datasets_main(["convert", str(demo_root()), "--split", "all", "--stride", "200",
                          "--out", str(tmp_path / "pts")]) == 0
    assert sorted(p.suffix for p in (tmp_path / "pts" / "images").iterdir()) == [".png", ".png"]


def run_detections(save, clip=None) -> dict[int, list[tuple[float, float]]]:
    out: dict[int, list] = {}
    for line in open(save / "frames.jsonl"):
        r = json.loads(line)
        name, k = r["name"].split("#")[0], int(r["name"].split("#")[1])
        if clip is not None and name != clip:
            continue
        out.setdefault(k, []).extend((p["x"], p["y"]) for p in r["points"])
    return {k: sorted(v) for k, v in out.items() if v}


@pytest.mark.parametrize("tool, track", [("cvat", False), ("cvat", True), ("labelstudio", False),
                                         ("labelstudio", True), ("coco", True)])
def test_labels_out_round_trip(tmp_path, capsys, tool, track):
    save = tmp_path / "run"
    argv = ["--frames", "24", "--save", str(save), "--labels-out", tool, "--quiet", "--warmup", "1",
            "--overlay-every", "0"] + (["--track"] if track else [])
    assert edge_run.main(argv) == 0
    name = {"cvat": "labels_cvat.xml", "labelstudio": "labels_labelstudio.json", "coco": "labels_coco.json"}[tool]
    assert name in capsys.readouterr().out
    want = run_detections(save)
    assert want, "the demo clip's first frames should hold detections"
    assert convert(save / name, tool, tmp_path / "ds", demo_root() / "videos") == 0
    got = read_csv(tmp_path / "ds" / "labels" / "IR_DRONE_154.csv")
    assert sorted(got) == sorted(want)  # no frame gained or lost: tracks end with outside / enabled=false
    for k in want:
        np.testing.assert_allclose(got[k], want[k], atol=0.006)


def test_labels_out_needs_save_and_a_file_source(tmp_path, capsys):
    assert edge_run.main(["--frames", "2", "--labels-out", "coco", "--quiet"]) == 2
    one_line_error(capsys, "--labels-out coco", "--save")
    assert edge_run.main(["--source", "synthetic", "--frames", "2", "--save", str(tmp_path / "r"),
                          "--labels-out", "cvat", "--quiet"]) == 2
    one_line_error(capsys, "synthetic")


def test_tracks_at_a_frame_stride_are_interpolated_by_the_tool(tmp_path, capsys):
    save = tmp_path / "run"
    assert edge_run.main(["--frames", "12", "--frame-stride", "2", "--track", "--save", str(save), "--labels-out",
                          "cvat", "--quiet", "--warmup", "1", "--overlay-every", "0"]) == 0
    want = run_detections(save)
    assert convert(save / "labels_cvat.xml", "cvat", tmp_path / "ds", demo_root() / "videos") == 0
    got = read_csv(tmp_path / "ds" / "labels" / "IR_DRONE_154.csv")
    assert {k for k in got if k % 2 == 0} == set(want)  # every reported frame, nothing on unreported ones
    between = 0
    for k in want:
        np.testing.assert_allclose(got[k], want[k], atol=0.006)
        if k + 2 in want and len(want[k]) == len(want[k + 2]) == 1:  # between two reports: CVAT's interpolation
            np.testing.assert_allclose(got[k + 1], [np.mean([want[k][0], want[k + 2][0]], axis=0)], atol=0.01)
            between += 1
    assert between >= 2


@pytest.mark.parametrize("tool", ["cvat", "labelstudio", "coco"])
def test_labels_out_of_an_image_folder_round_trip(tmp_path, capsys, tool):
    frames = tmp_path / "frames"
    frames.mkdir()
    cap = cv2.VideoCapture(str(demo_root() / "videos" / "IR_DRONE_154.mp4"))
    for k in range(4):
        ok, bgr = cap.read()
        assert ok
        if k >= 2:
            cv2.imwrite(str(frames / f"f{k}.png"), bgr)
    cap.release()
    save = tmp_path / "run"
    assert edge_run.main(["--source", str(frames), "--save", str(save), "--labels-out", tool, "--quiet",
                          "--warmup", "1", "--overlay-every", "0"]) == 0
    want = {json.loads(line)["name"]: sorted((p["x"], p["y"]) for p in json.loads(line)["points"])
            for line in open(save / "frames.jsonl")}
    assert any(want.values())
    label_file = next(save.glob(f"labels_{tool}.*"))
    assert convert(label_file, tool, tmp_path / "ds", frames) == 0
    ds = open_dataset(tmp_path / "ds")
    assert ds.names == ["f2", "f3"]
    for i, name in enumerate(("f2.png", "f3.png")):
        np.testing.assert_allclose(sorted(ds[i].points.tolist()), want[name], atol=0.006)


def test_labels_out_of_a_clip_folder_writes_one_cvat_task_per_video(tmp_path, capsys):
    src = tmp_path / "clips"
    for sub in ("videos", "labels"):
        (src / sub).mkdir(parents=True)
    for c in ("A", "B"):
        (src / "videos" / f"{c}.mp4").write_bytes((demo_root() / "videos" / "IR_DRONE_154.mp4").read_bytes())
        (src / "labels" / f"{c}.csv").write_text((demo_root() / "labels" / "IR_DRONE_154.csv").read_text())
    save = tmp_path / "run"
    assert edge_run.main(["--source", str(src), "--frame-stride", "60", "--save", str(save), "--labels-out", "cvat",
                          "--quiet", "--warmup", "1", "--overlay-every", "0"]) == 0
    assert "labels_cvat/" in capsys.readouterr().out
    assert sorted(p.name for p in (save / "labels_cvat").iterdir()) == ["A.xml", "B.xml"]
    assert convert(save / "labels_cvat", "cvat", tmp_path / "ds", src / "videos") == 0
    ds = open_dataset(tmp_path / "ds")
    assert ds.clips == ["A", "B"]
    for c in ("A", "B"):
        want, got = run_detections(save, c), read_csv(tmp_path / "ds" / "labels" / f"{c}.csv")
        assert sorted(got) == sorted(want) and got
        for k in want:
            np.testing.assert_allclose(got[k], want[k], atol=0.006)
