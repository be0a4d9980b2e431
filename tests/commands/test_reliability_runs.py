"""Nothing lost or silently wrong, round 2 (issue 26): concurrent and killed runs, long videos, huge frames.

Each test is one case of the issue and failed before its fix. The concurrency cases start real
processes that wait on one file, so they reach the run-folder check at the same moment; the
killed-run case sends SIGKILL to a real `edge.run` child. edge.run children run the numpy fake
target (tests/conftest.py): no runtime, no torch, a second each.
"""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import run as edge_run
from tests.conftest import spots

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
# `python -m edge.run` with the fake target registered (a row of the test process only); waits for GO first
EDGE_RUN = ("import os, sys, time\n"
            "from tests.conftest import register_fake_target; register_fake_target()\n"
            "from edge.run import main\n"
            "go = os.environ.get('GO')\n"
            "while go and not os.path.exists(go): time.sleep(0.002)\n"
            "sys.exit(main(sys.argv[1:]))\n")


def _frames(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    png = cv2.imencode(".png", spots(48, 60, [(30, 20)]))[1].tobytes()
    for i in range(n):
        (folder / f"f{i:05d}.png").write_bytes(png)
    return folder


def _child(model, *argv, go: Path | None = None, **kw) -> subprocess.Popen:
    env = {**ENV, **({"GO": str(go)} if go else {})}
    return subprocess.Popen([sys.executable, "-c", EDGE_RUN, "--model", str(model), "--quiet", "--warmup", "0",
                             *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, env=env, **kw)


def _run(capsys, *argv):
    rc = edge_run.main([*map(str, argv), "--quiet", "--warmup", "0"])
    out = capsys.readouterr()
    return rc, out.out, out.err


# ------------------------------------------------------------------ 1. two runs into one folder at once
def test_three_edge_runs_started_at_once_get_three_folders(fake_model, tmp_path):
    src, go = _frames(tmp_path / "src", 40), tmp_path / "go"
    procs = [_child(fake_model, "--source", src, "--save", tmp_path / "out" / "race", "--overlay-every", "0",
                    go=go) for _ in range(3)]
    time.sleep(4.0)  # every child imported and waiting
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e for _, e in outs]
    saved = sorted(line.split(": ", 1)[1].split("/summary.json")[0] for o, _ in outs
                   for line in o.splitlines() if line.startswith("saved: "))
    names = ["race", "race2", "race3"]
    assert saved == [str(tmp_path / "out" / n) for n in names]
    for n in names:
        d = tmp_path / "out" / n
        lines = (d / "frames.jsonl").read_text().splitlines()
        assert [json.loads(x)["frame_id"] for x in lines] == list(range(40))  # one run's frames, whole lines
        s = json.loads((d / "summary.json").read_text())
        assert s["frames"] == 40 and s["state"] == "finished" and not (d / ".spire-run").exists()


def test_a_folder_claimed_by_another_run_is_refused_or_skipped(tmp_path):
    from edge.outputs.runfolders import OutputFolderError, claim_run_folder, release_claim

    first, moved = claim_run_folder(tmp_path / "r", "--out", ("log.csv",), move=False)
    assert first == tmp_path / "r" and not moved
    with pytest.raises(OutputFolderError, match="another run took this folder"):
        claim_run_folder(tmp_path / "r", "--out", ("log.csv",), move=False)
    assert claim_run_folder(tmp_path / "r", "--out", ("log.csv",))[0] == tmp_path / "r2"
    release_claim(first)  # nothing written: the folder the run made is removed with the claim
    assert not first.exists() and (tmp_path / "r2").is_dir()


def test_a_failed_run_leaves_no_empty_save_folder(tmp_path, capsys):
    rc, _, err = _run(capsys, "--model", tmp_path / "nosuch", "--save", tmp_path / "out")
    assert rc == 2 and err.startswith("error: ") and not (tmp_path / "out").exists()


# ------------------------------------------------------------------ 2. a killed run does not look finished
def test_sigkilled_run_summary_says_running(fake_model, tmp_path):
    src, out = _frames(tmp_path / "src", 3000), tmp_path / "out"
    proc = _child(fake_model, "--source", src, "--save", out, "--overlay-every", "0", "--summary-every", "5")
    try:
        deadline = time.time() + 90
        while time.time() < deadline and proc.poll() is None:
            try:
                if json.loads((out / "summary.json").read_text())["frames"] >= 10:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    s = json.loads((out / "summary.json").read_text())
    assert s["state"] == "running" and "stop_reason" not in s and 10 <= s["frames"] < 3000
    lines = (out / "frames.jsonl").read_text().splitlines()
    assert len(lines) >= s["frames"] and all(json.loads(x)["frame_id"] == i for i, x in enumerate(lines))


def test_final_summary_says_finished_and_why(fake_model, tmp_path, capsys):
    rc, _, _ = _run(capsys, "--model", fake_model, "--source", _frames(tmp_path / "src", 3), "--save", tmp_path / "o")
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert rc == 0 and s["state"] == "finished" and s["stop_reason"] == "end of source" and s["frames"] == 3


# ------------------------------------------------------------------ 4. header frame count lower than the content
def _mpeg1(path: Path, n: int, x0: int) -> bytes:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"PIM1"), 25, (96, 64))
    if not vw.isOpened():
        pytest.skip("this OpenCV cannot write MPEG-1")
    for k in range(n):
        f = np.full((64, 96, 3), 40, np.uint8)
        cv2.circle(f, (x0 + k, 30), 2, (255, 255, 255), -1)
        vw.write(f)
    vw.release()
    return path.read_bytes()


def test_joined_mpeg_files_are_read_to_the_end(fake_model, tmp_path, capsys):
    joined = tmp_path / "joined.mpg"
    joined.write_bytes(b"".join(_mpeg1(tmp_path / f"p{i}.mpg", 20, 10 + 20 * i) for i in range(3)))
    cap = cv2.VideoCapture(str(joined))
    header = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert header < 60  # the case: the container says fewer frames than it holds
    rc, _, err = _run(capsys, "--model", fake_model, "--source", joined, "--save", tmp_path / "o")
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert rc == 0 and s["frames"] == 60 and s["skipped"] == 0 and s["video_frames"] == 60
    assert s["header_frames"] == header
    notes = [ln for ln in err.splitlines() if "header says" in ln]
    assert len(notes) == 1 and f"says {header} frames but 60 decoded" in notes[0]


# ------------------------------------------------------------------ 7. huge frames
def _png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG whose IHDR says w x h (8-bit grey) with one small IDAT: what a decoder would allocate for."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
                     + chunk(b"IEND", b""))
    return path


def test_huge_frame_is_skipped_from_its_header_and_the_rest_are_read(fake_model, tmp_path, capsys):
    src = _frames(tmp_path / "src", 3)
    _png_header_only(src / "f00001_huge.png", 60000, 60000)
    rc, _, err = _run(capsys, "--model", fake_model, "--source", src, "--save", tmp_path / "o")
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert rc == 0 and s["frames"] == 3 and s["skipped"] == 1 and s["skipped_names"] == ["f00001_huge.png"]
    assert "60000x60000 = 3600 MP, above the 100 MP limit" in err and "Traceback" not in err
    rc, _, err = _run(capsys, "--model", fake_model, "--source", src, "--max-pixels", "2000")
    assert rc == 0 and err.count("above the 0.002 MP limit") == 4  # the flag sets the limit (48x60 = 2880 px)


def test_max_pixels_flag_refuses_a_negative_limit(fake_model, capsys):
    rc, _, err = _run(capsys, "--model", fake_model, "--source", "synthetic", "--max-pixels", "-1")
    assert rc == 2 and "--max-pixels -1: must be a pixel count >= 0" in err


# ------------------------------------------------------------------ 8. a stride beyond the video's end
DEMO_VIDEO = REPO / "edge" / "demo" / "videos" / "IR_DRONE_154.mp4"


def test_huge_frame_stride_ends_at_the_last_frame(fake_model, tmp_path):
    proc = _child(fake_model, "--source", DEMO_VIDEO, "--frame-stride", 10 ** 8, "--save", tmp_path / "o")
    try:
        out, err = proc.communicate(timeout=60)  # it spun for minutes
    finally:
        if proc.poll() is None:
            proc.kill()
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert proc.returncode == 0 and s["frames"] == 1 and s["stop_reason"] == "end of source", err


class _EndlessVideo:
    """A capture whose grab() never fails (a pathological file): only the stop flag can end the skip."""

    def __init__(self):
        self.grabs = 0

    def isOpened(self):
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_COUNT: 325, cv2.CAP_PROP_FPS: 25}.get(prop, 0)

    def read(self):
        return True, np.zeros((48, 60, 3), np.uint8)

    def grab(self):
        self.grabs += 1
        if self.grabs > 200_000:
            raise RuntimeError("still skipping after the stop was asked for")
        return True

    def release(self):
        pass


def test_stop_request_ends_a_long_skip(monkeypatch, tmp_path):
    import edge.sources.capture

    cap = _EndlessVideo()
    monkeypatch.setattr(edge.sources.capture, "_open_capture", lambda device, api=None: cap)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    src = edge.sources.capture.CaptureSource(str(video), str(video), "video",
                                             edge.sources.capture.CaptureOptions(stride=10 ** 9))
    src.should_stop = lambda: cap.grabs >= 1000  # SIGTERM arrives during the skip
    items = list(src)
    assert len(items) == 1 and cap.grabs == 1000


def test_sigterm_exit_code_is_143(fake_model, tmp_path):
    proc = _child(fake_model, "--source", _frames(tmp_path / "src", 3000), "--overlay-every", "0",
                  "--save", tmp_path / "o")
    try:
        lines = tmp_path / "o" / "frames.jsonl"
        while proc.poll() is None and not (lines.exists() and lines.read_text().count("\n") >= 5):
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert proc.returncode == 143 and s["stop_reason"] == "interrupted (SIGTERM)" and s["state"] == "finished"


# ------------------------------------------------------------------ 1. two training runs into one --out at once
TRAIN = ("import os, sys, time\n"
         "from edge.cli import run_cli as run_main\n"
         "from spire.train import main\n"
         "go = os.environ['GO']\n"
         "while not os.path.exists(go): time.sleep(0.002)\n"
         "sys.exit(run_main(main, sys.argv[1:]))\n")


def test_two_trainings_started_at_once_never_share_a_folder(tmp_path):
    from tests.commands.test_reliability import NUAA, _train_args
    from tests.spire.test_train import make_fixture

    if not (NUAA / "images").is_dir():
        pytest.skip("NUAA-SIRST fixture data not present")
    data, go, out = make_fixture(tmp_path / "data"), tmp_path / "go", tmp_path / "runs" / "race"
    procs = [subprocess.Popen([sys.executable, "-c", TRAIN, *_train_args(data, out, "--epochs", "1", *extra)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                              env={**ENV, "GO": str(go)}) for extra in ((), ("--exist-ok",))]
    time.sleep(12.0)  # torch imported in both
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    rcs = [p.returncode for p in procs]
    if rcs == [0, 0]:  # the --exist-ok run lost the claim and moved to race2
        folders = {out, out.with_name("race2")}
    else:  # the plain run lost it: one line naming --exist-ok, and nothing of it in the folder
        assert rcs == [2, 0], [e[-2000:] for _, e in outs]
        err = [ln for ln in outs[0][1].splitlines() if ln.strip()]
        assert len(err) == 1 and err[0].startswith("error: --out") and "--exist-ok" in err[0], err
        folders = {out}
    assert {p for p in out.parent.iterdir()} == folders
    for d in folders:
        args = json.loads((d / "train_args.json").read_text())
        assert args["out"] == str(d) and (d / "log.csv").is_file() and (d / "best.pt").is_file()
        assert not (d / ".spire-run").exists()


# ------------------------------------------------------------------ 10. export and convert never replace a folder
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    from edge.model.sidecar import ModelMeta, file_sha256, write_sidecar
    from spire.engine import build_meta
    from spire.models import create_model, save_checkpoint

    torch.manual_seed(0)
    model = create_model("hrpe_nano")
    model.cfg = model.cfg.replace(input_size=32)
    meta = build_meta(model, model.cfg.preprocess_config(32), model.cfg.build_codec(32), {"note": "test"})
    ck = tmp_path_factory.mktemp("ck")
    path = save_checkpoint(ck / "best.pt", model, meta)
    write_sidecar(ck, ModelMeta(model_file=path.name, model_sha256=file_sha256(path), **meta))
    return path


def test_export_into_an_existing_artifact_folder_keeps_it(checkpoint, tmp_path, capsys):
    from export.__main__ import main

    args = ["--weights", str(checkpoint), "--target", "onnx", "--imgsz", "32", "--out", str(tmp_path)]
    assert main(args) == 0
    art = Path(capsys.readouterr().out.split("artifact: ")[1].splitlines()[0])
    (art / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in art.iterdir()}
    stale = tmp_path / f".{art.name}.{_dead_pid()}.abc123.tmp"  # what a killed export left
    stale.mkdir()
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and f"{art} already holds files" in err[0] and "--exist-ok" in err[0]
    assert main([*args, "--exist-ok"]) == 0
    assert f"this export is in {art}2" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in art.iterdir()} == before  # the user's file and the artifact kept
    assert (art.with_name(art.name + "2") / "metadata.json").is_file() and not stale.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_convert_into_a_used_folder_is_refused_without_exist_ok(tmp_path, capsys):
    from edge.datasets.__main__ import main
    from tests.edge.test_datasets import _nuaa

    src, out = _nuaa(tmp_path / "nuaa"), tmp_path / "o"
    assert main(["convert", str(src), "--split", "train", "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["convert", str(src), "--split", "train", "--out", str(out)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "already holds files" in err[0] and "--exist-ok" in err[0]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main(["convert", str(src), "--split", "val", "--out", str(out), "--exist-ok"]) == 0
    assert (out / "img_idx" / "val.txt").is_file() and (out / "img_idx" / "train.txt").is_file()


# ------------------------------------------------------------------ 11. output paths checked before the work
@pytest.mark.parametrize("tool", ["benchmarks.run", "quantize.ptq", "quantize.qat", "export", "edge.datasets"])
def test_an_output_path_under_a_file_fails_before_the_work(tool, tmp_path, capsys):
    import importlib

    afile = tmp_path / "afile"
    afile.write_text("x")
    argv = {"benchmarks.run": ["--quick", "--backends", "onnxruntime", "--no-official"],
            "quantize.ptq": ["--backend", "onnxruntime", "--frames", "100"],
            "quantize.qat": ["--weights", str(afile), "--data", str(tmp_path), "--epochs", "1"],
            "export": ["--target", "onnx"],
            "edge.datasets": ["convert", str(tmp_path)]}[tool]
    main = importlib.import_module(f"{tool}.__main__" if tool in ("export", "edge.datasets") else tool).main
    t0 = time.perf_counter()
    rc = main([*argv, "--out", str(afile / "b")])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2 and time.perf_counter() - t0 < 10
    assert len(err) == 1 and err[0] == (f"error: --out {afile / 'b'}: {afile} is a file, not a folder, so it "
                                        "cannot be created; pass a path under a folder"), err


def test_max_pixels_holds_for_one_run_only(fake_model, tmp_path, capsys):
    import edge.frames

    before = edge.frames.MAX_PIXELS
    assert _run(capsys, "--model", fake_model, "--source", "synthetic", "--frames", "1", "--max-pixels", "5")[0] == 0
    assert edge.frames.MAX_PIXELS == before  # API callers and later runs in this process keep the default


def test_annotated_video_is_written_in_segments_that_play_after_a_kill(tmp_path):
    """26.2: a run killed mid-way leaves closed MP4 segments that play up to the last one closed;
    a finished run leaves one annotated.mp4 with every frame."""
    import cv2

    from edge.outputs.video_out import AnnotatedVideo

    def frames_in(paths):
        n = 0
        for p in paths:
            cap = cv2.VideoCapture(str(p))
            while cap.read()[0]:
                n += 1
            cap.release()
        return n

    v = AnnotatedVideo(tmp_path / "annotated.mp4", 30, segment_frames=10)
    for i in range(35):
        v.write(np.full((64, 96, 3), i * 5, np.uint8))
    closed = sorted(tmp_path.glob("annotated.part*.mp4"))[:-1]  # the open segment is what a kill loses
    assert len(closed) == 3 and frames_in(closed) == 30
    v.close()
    assert [p.name for p in tmp_path.iterdir()] == ["annotated.mp4"] and frames_in([tmp_path / "annotated.mp4"]) == 35
