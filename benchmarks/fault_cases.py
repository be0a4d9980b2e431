"""The fault catalogue of issues 26 and 16, as data: one `Case` per fault, run by `benchmarks.faults`.

Why data: a case is a command line, the fixture it needs and what must hold afterwards; adding a
fault is one more row (no branch in the runner). Items '26.N' are issue 26's numbered faults
(round 2: concurrent and killed runs, hostile sidecars, bad labels, huge frames); '16.N' re-check
the good behaviour of round 1 (README, "Nothing a user made is overwritten or silently wrong").
The checks read only what a user sees: exit codes, stderr lines, the files left behind.
"""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from benchmarks.fault_fixtures import REPO
from benchmarks.fault_types import Case, Obs

CKPT = str(REPO / "weights" / "shipped" / "best.pt")
RUN = ("edge.run", "--quiet")
TRAIN = ("spire.train", "--model", "spire_n", "--imgsz", "64", "--epochs", "1", "--quiet")
ROOT_RO = "root ignores folder permissions, so a read-only folder cannot be made here; the unit test " \
          "(test_pick_on_a_read_only_folder_is_one_line) covers it"


# ------------------------------------------------------------------ what a user sees
def _errors(text: str) -> list[str]:
    return [ln for ln in (text or "").splitlines() if ln.startswith("error:")]


def brief(obs: Obs, i: int = 0) -> str:
    """exit code + the error line, or the traceback's last line, or stderr's last line."""
    err, rc = obs.errs[i] if i < len(obs.errs) else "", obs.rcs[i] if i < len(obs.rcs) else None
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if "Traceback" in err:
        return f"exit {rc}, traceback: {lines[-1][:120] if lines else ''}"
    errs = _errors(err)
    return f"exit {rc}: {errs[0][:160]}" if errs else f"exit {rc}" + (f": {lines[-1][:120]}" if lines else "")


def one_line(*words: str, ban: tuple = (), fast: float | None = None):
    """Exit 2, no traceback, one `error:` line holding `words` (none of `ban`), within `fast` seconds."""
    def check(obs: Obs):
        errs = _errors(obs.err)
        ok = (obs.rc == 2 and "Traceback" not in obs.err and len(errs) == 1
              and all(w in errs[0] for w in words) and not any(b in errs[0] for b in ban))
        late = fast is not None and obs.seconds > fast
        return ok and not late, brief(obs) + (f" after {obs.seconds:.0f} s" if late else "")
    return check


def _summary(folder: Path) -> dict:
    p = Path(folder) / "summary.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def _jsonl(path: Path) -> tuple[int, int]:
    """(parseable lines, unparseable lines) of a JSONL file."""
    good = bad = 0
    for ln in Path(path).read_text(errors="replace").splitlines():
        try:
            json.loads(ln)
            good += 1
        except ValueError:
            bad += 1
    return good, bad


# ------------------------------------------------------------------ checks with a story of their own
def race_runs(frames: int):
    """Every run that said success has a folder of its own, with exactly its frames, all parseable."""
    def check(obs: Obs):
        saved = [m.group(1) for out in obs.outs for m in [re.search(r"saved: (\S+)/summary\.json", out)] if m]
        folders = {str(Path(obs.w, s).resolve()) for s in saved}
        counts = [_jsonl(Path(f) / "frames.jsonl") for f in sorted(folders)]
        refused = sum(rc == 2 and len(_errors(e)) == 1 for rc, e in zip(obs.rcs, obs.errs))
        ok = (len(folders) == len(saved) == obs.rcs.count(0) and refused + len(saved) == len(obs.rcs)
              and all(c == (frames, 0) for c in counts))
        return ok, (f"{obs.rcs.count(0)} of {len(obs.rcs)} said success into {len(folders)} folder(s), {refused} "
                    f"refused; frames.jsonl (parseable, broken) = {counts}")
    return check


def race_train(obs: Obs):
    runs = sorted(p for p in obs.w.iterdir() if p.is_dir() and (p / "train_args.json").is_file())
    refused = sum(rc == 2 and len(_errors(e)) == 1 for rc, e in zip(obs.rcs, obs.errs))
    ok = obs.rcs.count(0) == len(runs) and refused + len(runs) == len(obs.rcs)
    return ok, f"exits {obs.rcs}: {len(runs)} run folder(s) ({', '.join(p.name for p in runs)}), {refused} refused"


def killed_summary(obs: Obs):
    s = _summary(obs.w / "killed")
    ok = bool(s) and (s.get("state") == "running" or s.get("stop_reason") not in ("end of source", None))
    return ok, (f"after SIGKILL: summary.json frames {s.get('frames')}, stop_reason {s.get('stop_reason')!r}, "
                f"state {s.get('state')!r}" if s else "no summary.json")


def killed_video(obs: Obs):
    """Frames that play from what a killed run left: annotated.mp4, or its closed segments."""
    import cv2

    d = obs.w / "killed"
    files = sorted(d.glob("annotated*.mp4"))
    n = 0
    for p in files:
        cap = cv2.VideoCapture(str(p))
        while cap.isOpened() and n < 5000 and cap.read()[0]:
            n += 1
        cap.release()
    return n > 0, f"{len(files)} annotated*.mp4 file(s) ({sum(p.stat().st_size for p in files)} bytes) decode {n} frame(s)"


def frames_skipped(frames: int, skipped: int, within: float):
    def check(obs: Obs):
        s = _summary(obs.w / "o")
        ok = obs.rc == 0 and s.get("frames") == frames and s.get("skipped") == skipped and obs.seconds <= within
        return ok, f"{brief(obs)}; frames {s.get('frames')}, skipped {s.get('skipped')} in {obs.seconds:.0f} s"
    return check


def ends_quickly(within: float, codes=(0,)):
    def check(obs: Obs):
        return obs.rc in codes and obs.seconds <= within, f"{brief(obs)} after {obs.seconds:.1f} s"
    return check


def one_warning(*words: str):
    def check(obs: Obs):
        lines = [ln for ln in obs.err.splitlines() if "label point(s)" in ln]
        return (obs.rc == 0 and len(lines) == 1 and all(w in lines[0] for w in words),
                f"exit {obs.rc}; {len(lines)} warning line(s): {lines[0][:150] if lines else ''}")
    return check


def ok_run(obs: Obs):
    return obs.rc == 0 and "Traceback" not in obs.err, brief(obs)


def notes_survive(obs: Obs):
    notes = obs.w.parent.parent / "fixtures" / "used_export" / "spire_s_512_fp32_onnx" / "my_notes.txt"
    kept = notes.is_file()
    refused = obs.rc == 2 and "--exist-ok" in obs.err
    return kept and (refused or obs.rc == 0), f"{brief(obs)}; the user's my_notes.txt {'kept' if kept else 'DELETED'}"


def second_convert(obs: Obs):
    moved = (obs.w / "ds2").is_dir()
    refused = obs.rc == 2 and "--exist-ok" in obs.err
    return refused or (obs.rc == 0 and moved), brief(obs) + ("; wrote ds2" if moved else "")


def no_tmp_after_rerun(obs: Obs):
    """After the SIGKILLed export, a second export into the same --out leaves no hidden temp folder."""
    subprocess.run([sys.executable, "-m", "export", "--weights", CKPT, "--target", "onnx", "--out", str(obs.w / "e")],
                   cwd=obs.w, capture_output=True, timeout=300)
    left = sorted(p.name for p in (obs.w / "e").iterdir() if p.name.startswith(".")) if (obs.w / "e").is_dir() else []
    return not left, f"hidden folders left after a rerun: {left}" if left else "none left after a rerun"


def exit_code(code: int):
    def check(obs: Obs):
        return obs.rc == code, f"exit {obs.rc} after {obs.seconds:.1f} s"
    return check


def no_empty_save(obs: Obs):
    left = (obs.w / "failed").exists()
    return obs.rc == 2 and not left, brief(obs) + ("; left an empty --save folder" if left else "")


def second_run_moves(obs: Obs):
    a, b = _summary(obs.w / "o"), _summary(obs.w / "o2")
    return obs.rc == 0 and a.get("frames") == 2 and b.get("frames") == 1, \
        f"{brief(obs)}; o/ frames {a.get('frames')}, o2/ frames {b.get('frames')}"


def merged_by_root(obs: Obs):
    m = re.search(r"train: (\d+) frames.*?val: (\d+) frames", obs.err + obs.out, re.S)
    n = int(m.group(1)) + int(m.group(2)) if m else None
    return obs.rc == 0 and n == 8, f"{brief(obs)}; train + val frames = {n} of 8 (4 same-named in each root)"


def umask_modes(obs: Obs):
    p = obs.w / "run" / "summary.json"
    mode = stat.S_IMODE(p.stat().st_mode) if p.exists() else None
    return mode == 0o640, f"umask 027: summary.json mode {oct(mode) if mode is not None else 'missing'}"


def same_points(obs: Obs):
    pts = [[(round(p["x"], 3), round(p["y"], 3)) for r in map(json.loads, (obs.w / f / "frames.jsonl").read_text()
            .splitlines()) for p in r["points"]] for f in ("a", "b")]
    return obs.rc == 0 and pts[0] == pts[1] and bool(pts[0]), f"8-bit {pts[0][:2]} vs 16-bit --raw16 {pts[1][:2]}"


def stopped_line(obs: Obs):
    line = next((ln for ln in obs.out.splitlines() if ln.startswith("stopped:")), "")
    return obs.rc == 0 and bool(line), f"exit {obs.rc}; {line[:120] or 'no stopped: line'}"


def _sidecar_case(fixture: str, key: str) -> Case:
    return Case(f"sidecar {fixture[4:]}", "26.6", f"one line naming metadata.json and '{key}'",
                (*RUN, "--model", f"{{fx:{fixture}}}", "--frames", "2"), one_line("metadata.json", key), quick=True)


# ------------------------------------------------------------------ the catalogue
CASES = [
    Case("race edge.run --save", "26.1", "3 runs at once: own folders or a refusal; frames.jsonl whole",
         (*RUN, "--frames", "15", "--save", "{w}/race"), race_runs(15), mode="race", copies=3, quick=True),
    Case("race spire.train --out", "26.1", "2 runs at once: the second gets its own folder or a refusal",
         (*TRAIN, "--data", "{fx:nuaa_pair}/a", "--out", "{w}/race"), race_train, mode="race", copies=2, timeout=240),
    Case("SIGKILL edge.run summary", "26.2", "summary.json of a killed run does not say 'end of source'",
         ("edge.run", "--quiet", "--save", "{w}/killed", "--summary-every", "5", "--overlay-every", "1"),
         killed_summary, mode="kill", wait_for="{w}/killed/summary.json", after=2.0, quick=True),
    Case("SIGKILL edge.run video", "26.2", "annotated.mp4 of a killed run is readable up to its last frames",
         ("edge.run", "--quiet", "--save", "{w}/killed", "--summary-every", "5", "--overlay-every", "1"),
         killed_video, mode="kill", wait_for="{w}/killed/summary.json", after=3.0),
    Case("label cx=nan", "26.3", "one line naming the CSV, line and row",
         (*RUN, "--source", "{fx:clip_nan}", "--frames", "3"), one_line("IR_DRONE_154.csv:2"), quick=True),
    Case("label cx=inf --save", "26.3", "one line naming the CSV and line (was a traceback in annotate.py)",
         (*RUN, "--source", "{fx:clip_inf}", "--frames", "3", "--save", "{w}/o"), one_line("IR_DRONE_154.csv:2")),
    Case("labels off frame / past end", "26.3", "runs; ONE warning line with both counts",
         (*RUN, "--source", "{fx:clip_off}", "--frames", "3"), one_warning("2 label point(s)", "2 on frame")),
    Case("labels with UTF-8 BOM", "26.12", "reads like any CSV",
         (*RUN, "--source", "{fx:clip_bom}", "--frames", "3"), ok_run, quick=True),
    Case("0-byte .mp4", "26.12", "one line: not a video (not 'recording was cut')",
         (*RUN, "--source", "{fx:empty_mp4}"), one_line("not a video", ban=("cut",)), quick=True),
    Case("text file named .mp4", "26.12", "one line: not a video (not 'recording was cut')",
         (*RUN, "--source", "{fx:text_mp4}"), one_line("not a video", ban=("cut",))),
    Case("joined MPEG-1 (header 20, holds 60)", "26.4", "all 60 frames read",
         (*RUN, "--source", "{fx:joined_mpeg}", "--save", "{w}/o"), frames_skipped(60, 0, 60)),
    Case("sidecar weights_file=/etc/passwd", "26.5", "one line naming extra.weights_file; the file never read",
         (*RUN, "--model", "{fx:art_weights_file}", "--frames", "2"), one_line("extra.weights_file"), quick=True),
    *[_sidecar_case(f, k) for f, k in (
        ("art_thr0", "codec.thr"), ("art_thr_neg", "codec.thr"), ("art_thr7", "codec.thr"),
        ("art_thr_abc", "codec.thr"), ("art_thr_null", "codec.thr"), ("art_topk0", "codec.top_k"),
        ("art_std0", "norm.std"), ("art_mode", "norm.mode"), ("art_fit", "preprocess.fit"),
        ("art_letterbox", "preprocess.letterbox"), ("art_pct", "low_pct"))],
    Case("60000x60000 PNG in a folder", "26.7", "skipped and counted; the other 4 frames run",
         (*RUN, "--source", "{fx:frames_60k}", "--save", "{w}/o"), frames_skipped(4, 1, 30), quick=True),
    Case("30000x30000 PNG in a folder", "26.7", "skipped and counted (a pixel limit), not 200 s at 3.9 GB",
         (*RUN, "--source", "{fx:frames_30k}", "--save", "{w}/o"), frames_skipped(4, 1, 30), timeout=60),
    Case("--frame-stride 1e8", "26.8", "ends within seconds after the last frame",
         (*RUN, "--source", "{fx:clip}/videos/IR_DRONE_154.mp4", "--frame-stride", "100000000"),
         ends_quickly(15), timeout=60),
    Case("--frame-stride 1e8 + SIGTERM", "26.8", "SIGTERM after 3 s ends it within seconds",
         (*RUN, "--source", "{fx:clip}/videos/IR_DRONE_154.mp4", "--frame-stride", "100000000"),
         ends_quickly(8, (0, 143)), mode="term", after=3.0, timeout=40),
    Case("recheck spire-s FP32 vs spire-n INT8", "26.9", "one line: not the same model; nothing rewritten",
         ("quantize.recheck", "--fp32", "{fx:spire_s32}", "--int8", "{fx:spire_n8}", "--frames", "2",
          "--bench-runs", "0"), one_line("not the same model"), quick=True),
    Case("export --out into a used artifact folder", "26.10", "the user's file kept: new folder or a refusal",
         ("export", "--weights", CKPT, "--target", "onnx", "--out", "{fx:used_export}"), notes_survive, timeout=300),
    Case("datasets convert into a used folder", "26.10", "a refusal naming --exist-ok, or a new folder",
         ("edge.datasets", "convert", "{fx:clip}", "--split", "all", "--stride", "100", "--out", "{w}/ds"),
         second_convert, pre=(("edge.datasets", "convert", "{fx:clip}", "--split", "all", "--stride", "100",
                               "--out", "{w}/ds"),)),
    Case("benchmarks.run --out afile/b", "26.11", "one line before any work (< 15 s)",
         ("benchmarks.run", "--quick", "--out", "{fx:afile}/b"), one_line("afile", fast=15), timeout=60),
    Case("quantize.ptq --out afile/q", "26.11", "one line before calibrating (< 15 s)",
         ("quantize.ptq", "--data", "{fx:clip}", "--split", "all", "--frames", "8", "--backend", "onnxruntime",
          "--no-fidelity", "--imgsz", "64", "--out", "{fx:afile}/q"), one_line("afile", fast=15), timeout=90),
    Case("board profile backend nosuch", "26.12", "one line naming the profile and 'backend'",
         (*RUN, "--board", "{fx:board_nosuch}", "--frames", "2"), one_line("backend", "nosuch"), quick=True),
    Case("--power nosuchsensor", "26.12", "one line naming --power",
         (*RUN, "--frames", "2", "--power", "nosuchsensor"), one_line("nosuchsensor"), quick=True),
    *[Case(f"--tracker {v}", "26.12", "one line naming --tracker", (*RUN, "--frames", "2", "--track", "--tracker", v),
           one_line("--tracker"), quick=True) for v in ("gate_px=-5", "nosuch=1", "gate_px=abc")],
    *[Case(f"spire.train {' '.join(o)}", "26.12", "one line naming the option",
           (*TRAIN, "--data", "{fx:nuaa_pair}/a", "--out", "{w}/r", *o), one_line(o[0]), quick=True)
      for o in (("--batch", "0"), ("--lr", "-1"), ("--lr", "nan"))],
    Case("spire.train validation = training data", "26.12", "one line before any epoch",
         (*TRAIN, "--data", "{fx:nuaa_pair}/a", "--val-data", "{fx:nuaa_pair}/a", "--val-split", "train",
          "--out", "{w}/r"), one_line("--val-data")),
    Case("spire.train --out afile/r", "26.12", "one line before any work",
         (*TRAIN, "--data", "{fx:nuaa_pair}/a", "--out", "{fx:afile}/r"), one_line("afile"), quick=True),
    Case("datasets convert --out afile/d", "26.12", "one line before any work",
         ("edge.datasets", "convert", "{fx:clip}", "--split", "all", "--out", "{fx:afile}/d"), one_line("afile")),
    *[Case(f"spire.evaluate {f} afile/x", "26.12", "one line before the model runs",
           ("spire.evaluate", "--data", "{fx:clip}", "--split", "all", "--frame-stride", "50", f, "{fx:afile}/x"),
           one_line(f), timeout=180) for f in ("--json", "--out")],
    Case("quantize.pick on a read-only folder", "26.12", "one line naming the folder",
         ("quantize.pick", "{fx:ro_export}"), one_line("cannot write"), deliberate=ROOT_RO if os.geteuid() == 0 else ""),
    Case("edge.run SIGTERM exit code", "26.12", "exit 143 (as spire.train)",
         (*RUN, "--save", "{w}/t"), exit_code(143), mode="term", after=3.0, quick=True),
    Case("spire.train SIGTERM exit code", "26.12", "exit 143 (as edge.run)",
         ("spire.train", "--model", "spire_n", "--imgsz", "64", "--epochs", "100000", "--quiet",
          "--data", "{fx:nuaa_pair}/a", "--out", "{w}/r"), exit_code(143), mode="term", after=12.0, timeout=120),
    Case("killed export leaves no .tmp", "26.12", "a rerun cleans the killed export's hidden folder",
         ("export", "--weights", CKPT, "--target", "onnx", "--out", "{w}/e"), no_tmp_after_rerun, mode="kill",
         after=8.0, timeout=300),
    Case("failed run leaves no --save folder", "26.12", "one line; no empty folder left",
         (*RUN, "--model", "{w}/nosuch", "--save", "{w}/failed"), no_empty_save, quick=True),
    # ---- round 1 (issue 16): keep what was fixed
    Case("edge.run --save twice", "16.2", "second run writes o2/; o/ untouched",
         (*RUN, "--frames", "1", "--save", "{w}/o"), second_run_moves, pre=((*RUN, "--frames", "2", "--save", "{w}/o"),),
         quick=True),
    Case("spire.train into a used --out", "16.1", "one line naming --resume and --exist-ok",
         (*TRAIN, "--data", "{fx:nuaa_pair}/a", "--out", "{w}/r"), one_line("--resume", "--exist-ok"),
         pre=((*TRAIN, "--data", "{fx:nuaa_pair}/a", "--out", "{w}/r"),), timeout=240),
    Case("same-named frames in two roots", "16.3", "both roots' frames used (keyed by root, not name)",
         ("spire.train", "--model", "spire_n", "--imgsz", "64", "--epochs", "1", "--data", "{fx:nuaa_pair}/a",
          "{fx:nuaa_pair}/b", "--out", "{w}/r"), merged_by_root, timeout=240),
    Case("OpenVINO .bin missing", "16.4", "one line naming the .bin",
         (*RUN, "--backend", "openvino", "--model", "{fx:ov_missing_bin}", "--frames", "1"), one_line(".bin", "missing")),
    Case("OpenVINO .bin truncated", "16.4", "one line naming the .bin and sha256",
         (*RUN, "--backend", "openvino", "--model", "{fx:ov_truncated_bin}", "--frames", "1"),
         one_line(".bin", "sha256"), quick=True),
    Case("all-black calibration frames", "16.5", "one line: frames are constant; no artifact",
         ("quantize.ptq", "--data", "{fx:black_calib}", "--frames", "8", "--backend", "onnxruntime", "--no-fidelity",
          "--imgsz", "64", "--out", "{w}/q"), one_line("constant"), timeout=180),
    Case("--save on a file", "16.6", "one line naming --save", (*RUN, "--frames", "1", "--save", "{fx:afile}"),
         one_line("--save"), quick=True),
    Case("--threads -4", "16.6", "one line", (*RUN, "--threads", "-4"), one_line("--threads -4"), quick=True),
    Case("--conf -1", "16.6", "one line", (*RUN, "--conf", "-1"), one_line("--conf")),
    Case("benchmarks.run --backends nosuch", "16.6", "one line at once (< 10 s)",
         ("benchmarks.run", "--backends", "nosuch", "--quick", "--out", "{w}/b"), one_line("nosuch", fast=10)),
    Case("truncated AVI", "16.6", "runs the frames it holds and prints why it stopped",
         (*RUN, "--source", "{fx:truncated_avi}"), stopped_line),
    Case("umask 027", "16.6", "outputs get the umask's modes (0640)", (*RUN, "--frames", "1", "--save", "{w}/run"),
         umask_modes, umask=0o027, quick=True),
    Case("8-bit vs 16-bit --raw16", "16.7", "the same points from both bit depths",
         (*RUN, "--source", "{fx:frame16}", "--raw16", "64", "1000", "--save", "{w}/b"), same_points,
         pre=((*RUN, "--source", "{fx:frame8}", "--save", "{w}/a"),)),
]
