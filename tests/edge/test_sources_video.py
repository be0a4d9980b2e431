"""Video in, annotated video out: the built-in clip, clip folders, truncated files, --save, --realtime, streams."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import run as edge_run
from tests.edge.test_backends import export_tiny

S = 64
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return export_tiny(tmp_path_factory.mktemp("video_model"), "onnx", imgsz=S)


def _run(capsys, *argv):
    # --conf 0.5: the tiny DoG model also answers ~0.31 at the zero-padded frame corners
    rc = edge_run.main([*map(str, argv), "--quiet", "--warmup", "1", "--conf", "0.5"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def spot_frame(x: int, y: int, h: int = 48, w: int = 80, lit: bool = True, seed: int = 0,
               noise: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.clip(30 + rng.normal(0, noise, (h, w)), 0, 255)
    if lit:
        img[y - 1:y + 2, x - 1:x + 2] = 230
    return img.astype(np.uint8)


def write_clip(path: Path, n: int, lit=lambda i: True, fps: float = 10.0, noise: float = 1.0) -> list[tuple[int, int]]:
    """An mp4v clip of a 3x3 spot moving right; returns its centres (one per frame)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (80, 48))
    xy = [(16 + 2 * i, 24) for i in range(n)]
    for i, (x, y) in enumerate(xy):
        vw.write(cv2.cvtColor(spot_frame(x, y, lit=lit(i), seed=i, noise=noise), cv2.COLOR_GRAY2BGR))
    vw.release()
    return xy


def write_labels(path: Path, xy, rows=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keep = range(len(xy)) if rows is None else rows
    path.write_text("frame,cx,cy,w,h,cls\n" + "".join(f"{i},{xy[i][0]:.1f},{xy[i][1]:.1f},3,3,drone\n" for i in keep))


def faststart(b: bytes) -> bytes:
    """The MP4 with its 'moov' index moved before the media data (as cameras / ffmpeg -movflags faststart
    write it), chunk offsets shifted, so that cutting the file leaves its first frames decodable."""
    def boxes(buf, start, end):
        i = start
        while i + 8 <= end:
            size, typ = struct.unpack(">I4s", buf[i:i + 8])
            yield typ, i, size
            i += size

    def shift(buf, start, end, delta):
        for typ, i, size in boxes(buf, start, end):
            if typ in (b"trak", b"mdia", b"minf", b"stbl"):
                shift(buf, i + 8, i + size, delta)
            elif typ == b"stco":
                n = struct.unpack(">I", buf[i + 12:i + 16])[0]
                for k in range(n):
                    o = i + 16 + 4 * k
                    buf[o:o + 4] = struct.pack(">I", struct.unpack(">I", buf[o:o + 4])[0] + delta)

    top = list(boxes(b, 0, len(b)))
    _, mi, ms = next(t for t in top if t[0] == b"moov")
    moov = bytearray(b[mi:mi + ms])
    shift(moov, 8, len(moov), len(moov))
    out = bytearray()
    for typ, i, size in top:
        if typ == b"moov":
            continue
        if typ == b"mdat":
            out += moov
        out += b[i:i + size]
    return bytes(out)


# ------------------------------------------------------------------------------ the built-in clip
def test_demo_clip_ships_inside_an_installed_package(tmp_path):
    """Build the package as pip would (build_py of a copy of the sources) and find the clip in that copy."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "edge", src / "edge", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py",
                           "-d", str(tmp_path / "lib")], cwd=src, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
    lib = tmp_path / "lib"
    code = ("import edge, edge.demo as d\nfrom edge.sources import open_source\n"
            "s = open_source(None)\n"
            "print(edge.__file__); print(d.demo_video()); print(d.demo_labels()); print(s.kind, len(s), s.labelled)\n")
    env = {**os.environ, "PYTHONPATH": str(lib)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr[-1500:]
    pkg, video, labels, desc = out.stdout.strip().splitlines()
    assert Path(pkg).is_relative_to(lib) and Path(video).is_relative_to(lib / "edge" / "demo")
    assert Path(video).stat().st_size == (REPO / "edge/demo/videos/IR_DRONE_154.mp4").stat().st_size
    assert Path(labels).is_file() and (lib / "edge/demo/LICENSE").is_file() and "CC0" in (lib / "edge/demo/README.md").read_text()
    assert desc == "demo 325 True"


def test_no_source_runs_the_labelled_real_clip(model, tmp_path, capsys):
    rc, out, _ = _run(capsys, "--model", model, "--frames", 2, "--save", tmp_path / "o")
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert rc == 0 and s["source_kind"] == "demo" and s["source"].endswith("IR_DRONE_154.mp4")
    assert "synthetic" not in json.dumps(s["source"]) and s["metrics"]["images"] == 2 and s["metrics"]["targets"] == 2
    assert list(s["clips"]) == ["IR_DRONE_154"] and "CC0" in s["source_note"]
    assert "metrics: P " in out


# ------------------------------------------------------------------------------ clip folders
def test_clip_folder_is_scored_per_clip_and_overall(model, tmp_path, capsys):
    root = tmp_path / "d"
    a = write_clip(root / "videos" / "A.mp4", 8)
    b = write_clip(root / "videos" / "B.mp4", 8, lit=lambda i: i >= 4)  # frames 0-3 unlit: misses
    write_labels(root / "labels" / "A.csv", a)
    write_labels(root / "labels" / "B.csv", b, rows=range(0, 7))  # frame 7 has no row: target-free (a FP)
    write_clip(root / "videos" / "C.mp4", 4)
    write_labels(root / "labels" / "C.csv", a[:4])
    (root / "val.txt").write_text("A\nB\n")  # C is not in the split
    rc, out, _ = _run(capsys, "--model", model, "--source", root, "--split", "val", "--save", tmp_path / "o")
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert rc == 0 and s["source_kind"] == "clips" and set(s["clips"]) == {"A", "B"}
    ca, cb = s["clips"]["A"], s["clips"]["B"]
    assert (ca["images"], ca["tp"], ca["fn"], ca["fp"]) == (8, 8, 0, 0)
    assert (cb["images"], cb["tp"], cb["fn"], cb["fp"]) == (8, 3, 4, 1)
    m = s["metrics"]
    assert (m["images"], m["tp"], m["fn"], m["fp"]) == (16, 11, 4, 1)
    names = [json.loads(x)["name"] for x in (tmp_path / "o" / "frames.jsonl").read_text().splitlines()]
    assert names[:2] == ["A#000000", "A#000001"] and names[8] == "B#000000"
    # --frame-stride keeps every k-th frame of each clip (names keep the clip's own frame index)
    rc, _, _ = _run(capsys, "--model", model, "--source", root, "--split", "val", "--frame-stride", 3,
                    "--save", tmp_path / "s")
    s = json.loads((tmp_path / "s" / "summary.json").read_text())
    names = [json.loads(x)["name"] for x in (tmp_path / "s" / "frames.jsonl").read_text().splitlines()]
    assert rc == 0 and s["frames"] == 6 and names == ["A#000000", "A#000003", "A#000006", "B#000000", "B#000003",
                                                      "B#000006"]


def test_labelled_video_file_scores_like_its_clip_folder(model, tmp_path, capsys):
    root = tmp_path / "d"
    xy = write_clip(root / "videos" / "A.mp4", 6, lit=lambda i: i != 2)
    write_labels(root / "labels" / "A.csv", xy)
    got = []
    for src in (root, root / "videos" / "A.mp4"):  # the file finds ../labels/A.csv itself
        out = tmp_path / f"o{len(got)}"
        assert _run(capsys, "--model", model, "--source", src, "--save", out)[0] == 0
        s = json.loads((out / "summary.json").read_text())
        m, c = s["metrics"], s["clips"]["A"]
        got.append((m["tp"], m["fp"], m["fn"], m["images"], c["tp"], c["images"]))
    assert got[0] == got[1] == (5, 0, 1, 6, 5, 6)


# ------------------------------------------------------------------------------ broken files
def test_truncated_mp4_is_survived(model, tmp_path, capsys):
    full = tmp_path / "full.mp4"
    write_clip(full, 30, noise=4.0)  # noisy frames: bytes spread evenly over the frames
    data = faststart(full.read_bytes())
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:int(len(data) * 0.6)])  # the recording stopped mid-file
    rc, out, err = _run(capsys, "--model", model, "--source", cut, "--save", tmp_path / "o")
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert rc == 0 and 5 < s["frames"] < 30 and s["frames"] + s["skipped"] == 30
    assert "truncated" in s["stop_reason"] and f"stopped: {s['stop_reason']}" in out
    assert f"{30 - s['frames']} of 30 frames skipped" in s["stop_reason"]
    recs = [json.loads(x) for x in (tmp_path / "o" / "frames.jsonl").read_text().splitlines()]
    assert len(recs) == 30 and recs[-1]["skipped"] and not recs[0].get("skipped")
    assert cv2.VideoCapture(str(tmp_path / "o" / "annotated.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == s["frames"]
    # cut before its index was written (OpenCV's own MP4s keep it at the end): one line that says why
    (tmp_path / "noindex.mp4").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    rc, _, err = _run(capsys, "--model", model, "--source", tmp_path / "noindex.mp4")
    lines = err.strip().splitlines()
    assert rc == 2 and lines[-1].startswith("error: ") and "no index ('moov' box)" in lines[-1]


# ------------------------------------------------------------------------------ annotated video out
def test_save_writes_a_playable_annotated_mp4_and_a_contact_sheet(model, tmp_path, capsys):
    xy = write_clip(tmp_path / "v" / "clip.mp4", 12, lit=lambda i: i % 4 != 1)  # 3 misses
    write_labels(tmp_path / "v" / "clip.csv", xy)
    rc, out, err = _run(capsys, "--model", model, "--source", tmp_path / "v" / "clip.mp4", "--save", tmp_path / "o",
                        "--show")
    assert rc == 0 and "annotated.mp4" in out and "contact_sheet.png" in out
    assert "note: --show:" in err and len([x for x in err.splitlines() if "--show" in x]) == 1  # headless: one note
    cap = cv2.VideoCapture(str(tmp_path / "o" / "annotated.mp4"))
    n, first = 0, None
    while True:
        ok, f = cap.read()
        if not ok:
            break
        first = f if first is None else first
        n += 1
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert n == 12 == s["frames"] == s["annotated_video"]["frames"] and cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10)
    assert first.shape[:2] == (48 * 4, 80 * 4)  # small frames are scaled up (integer factor) to be readable
    assert s["contact_sheet"]["error_frames"] == 3
    sheet = cv2.imread(str(tmp_path / "o" / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] == 3 * (320 + 4)  # three error frames, one row
    # unlabelled video: annotated video, no contact sheet
    os.remove(tmp_path / "v" / "clip.csv")
    rc, out, _ = _run(capsys, "--model", model, "--source", tmp_path / "v" / "clip.mp4", "--save", tmp_path / "u")
    assert rc == 0 and (tmp_path / "u" / "annotated.mp4").is_file() and not (tmp_path / "u" / "contact_sheet.png").exists()


def test_annotate_layers_draw_over_the_frame():
    from edge.outputs.annotate import FrameInfo, annotate
    from edge.inference.points import Points

    seen = []

    def trails(canvas, info):  # what a tracker overlay does
        seen.append((canvas.scale, info.extra["tracks"]))
        cv2.line(canvas.img, canvas.pt(0, 0), canvas.pt(10, 10), (255, 0, 255), 1)

    frame = spot_frame(20, 20)
    pts = Points(np.array([[20.0, 20.0], [60.0, 30.0]]), np.array([0.9, 0.4]))
    pic = annotate(frame, pts, np.array([[20.0, 20.0], [40.0, 10.0]]), FrameInfo(5, "x#000005", 12.5, extra={"tracks": [1]}),
                   layers=[trails])
    assert pic.shape == (48 * 4, 80 * 4, 3) and seen == [(4, [1])]
    assert (pic == (255, 0, 255)).all(axis=2).any()  # the layer drew
    assert (np.abs(pic.astype(int) - (0, 160, 255)).sum(axis=2) < 60).any()  # a false alarm is drawn orange


# ------------------------------------------------------------------------------ live sources
class FakeCamera:
    """A cv2.VideoCapture stand-in: `n` frames, one every `every_s`, then nothing."""

    def __init__(self, n=60, every_s=0.002):
        self.n, self.every_s, self.i = n, every_s, 0

    def isOpened(self):
        return True

    def read(self):
        time.sleep(self.every_s)
        if self.i >= self.n:
            return False, None
        self.i += 1
        return True, cv2.cvtColor(spot_frame(20 + self.i % 40, 24), cv2.COLOR_GRAY2BGR)

    def grab(self):
        return self.read()[0]

    def get(self, prop):
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def set(self, prop, value):
        return False

    def release(self):
        pass


def test_realtime_drops_frames_when_inference_is_slow(model, tmp_path, capsys, monkeypatch):
    import edge.sources.capture
    from edge.inference.predictor import Predictor

    real = Predictor.predict

    def slow(self, frame, name=None):
        time.sleep(0.02)  # 10x slower than the camera
        return real(self, frame, name)

    monkeypatch.setattr(Predictor, "predict", slow)
    monkeypatch.setattr(edge.sources.capture, "_open_capture", lambda device, api=None: FakeCamera())
    rc, out, _ = _run(capsys, "--model", model, "--source", "camera:0", "--realtime", "--save", tmp_path / "rt")
    s = json.loads((tmp_path / "rt" / "summary.json").read_text())
    assert rc == 0 and s["realtime"] and s["grabbed"] == 60
    assert s["dropped"] > 20 and s["frames"] + s["skipped"] + s["dropped"] == 60
    ids = [json.loads(x)["frame_id"] for x in (tmp_path / "rt" / "frames.jsonl").read_text().splitlines()]
    assert ids == sorted(ids) and ids[-1] == 59 and len(ids) < 40  # gaps where frames were dropped; the last one kept
    assert "stopped: camera:0 stopped delivering frames" in out  # the reason is printed, not only stored
    # without --realtime every frame is processed, none dropped
    rc, _, _ = _run(capsys, "--model", model, "--source", "camera:0", "--frames", 10, "--save", tmp_path / "all")
    s = json.loads((tmp_path / "all" / "summary.json").read_text())
    assert rc == 0 and s["frames"] == 10 and "dropped" not in s and not s["realtime"]


def test_streams_and_pipelines_open_through_opencv(monkeypatch, capsys):
    import edge.sources.capture
    from edge.sources.capture import capture_kind
    from edge.sources import open_source

    opened = []

    def fake(device, api=None):
        opened.append((device, api))
        return FakeCamera(n=2)

    monkeypatch.setattr(edge.sources.capture, "_open_capture", fake)
    assert [capture_kind(x) for x in ("camera:1", "rtsp://cam/live", "https://x/y.m3u8", "videotestsrc ! appsink",
                                      "clip.mp4")] == ["camera", "stream", "stream", "stream", None]
    for spec, api in (("rtsp://10.0.0.2/live", None), ("videotestsrc ! videoconvert ! appsink", cv2.CAP_GSTREAMER),
                      ("camera:1", None)):
        src = open_source(spec)
        src.retry_wait_s = 0.0
        assert src.kind == ("camera" if spec.startswith("camera") else "stream") and src.is_video
        assert opened[-1] == (1 if spec == "camera:1" else spec, api)
        assert len(list(src)) == 2 and src.stopped_early  # a live source ends when it stops delivering
    monkeypatch.setattr(edge.sources.capture, "_open_capture", lambda d, api=None: type("C", (FakeCamera,), {"isOpened": lambda s: False})())
    rc = edge_run.main(["--source", "rtsp://nowhere/x", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error: rtsp://nowhere/x: cannot open this stream")


def test_realtime_needs_a_live_source_or_a_video(model, tmp_path, capsys):
    rc, _, err = _run(capsys, "--model", model, "--source", "synthetic", "--realtime")
    assert rc == 2 and "--realtime needs a live source" in err
    rc, _, err = _run(capsys, "--model", model, "--frame-stride", 0)
    assert rc == 2 and "--frame-stride 0: must be >= 1" in err.strip().splitlines()[-1]
