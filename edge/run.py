"""`python -m edge.run`: the device command — frames in, points, latencies, watts and (with labels) metrics out.

Pipeline: source (edge.sources) -> Predictor (sidecar-driven preprocess, backend, numpy decode,
tiling for large frames) -> outputs (edge.outputs). With no --model and no --source it runs the
shipped artifact for the chosen backend on the built-in real IR clip (edge.demo, labelled, so it
is scored), so `python -m edge.run --backend openvino` shows detections right after install.
Bad frames are logged by name, skipped and counted; Ctrl-C, a stalled camera or a crash still
leave a valid summary.json.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from edge.cli import run_cli
from edge.errors import FrameError
from edge.outputs.report import format_report, progress_bar, say
from edge.scoring import LabelledFrame, RunScores


def build_parser() -> argparse.ArgumentParser:
    from edge.backends import BACKENDS

    p = argparse.ArgumentParser(prog="python -m edge.run", description=__doc__.splitlines()[0].split(": ", 1)[-1])
    p.add_argument("--backend", choices=sorted(BACKENDS), help="runtime (default: from --board, the model's sidecar, "
                   "else onnxruntime)")
    p.add_argument("--model", help="artifact folder, model file or ladder name (spire-n, spire-s, spire-m; "
                   "default: the shipped model for the backend)")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"),
                   help="which shipped artifact (default: the measured choice in export/defaults.json, "
                        "else int8, then fp32)")
    p.add_argument("--board", help="boards/NAME/profile.json defaults (backend, precision, imgsz, threads, power)")
    p.add_argument("--source", default=None, help="DIR | VIDEO | IMAGE | camera:N | rtsp://... / http://... | "
                   "GStreamer pipeline | synthetic (generated test frames, not real IR); default: the built-in "
                   "labelled IR clip (edge.demo)")
    p.add_argument("--split", default="all", help="list to read when --source is a dataset folder (default all)")
    p.add_argument("--frame-stride", type=int, default=1, help="keep every N-th frame of videos and clips (default 1)")
    p.add_argument("--realtime", action="store_true", help="live sources: a grabber thread keeps only the newest "
                   "frame, drops are counted (a video file is played at its frame rate)")
    p.add_argument("--show", action="store_true", help="show the annotated frames in a window (where a display "
                   "and a GUI OpenCV exist)")
    p.add_argument("--save", help="folder for frames.jsonl, frames.csv (one row per detection), "
                   "frames_summary.csv (one row per frame), summary.json and overlays")
    p.add_argument("--labels-out", choices=("cvat", "labelstudio", "coco"), help="also write the points (with "
                   "--track the tracks) as pre-labels the tool imports: --save/labels_cvat.xml, ... (edge.outputs.labels_out)")
    p.add_argument("--track", action="store_true", help="report confirmed point tracks (edge.tracking.tracker) instead of "
                   "per-frame points: ids, ages, velocities, fewer flickering false alarms; --save adds tracks.csv "
                   "and tracks.png")
    p.add_argument("--tracker", nargs="*", default=[], metavar="NAME=VALUE", help="tracker options "
                   "(edge.tracking.tracker.TrackerConfig: gate_px, birth_hits, birth_window, max_misses, coast, ego_motion, ...)")
    p.add_argument("--overlay-every", type=int, default=50, help="overlay every N frames (PNG; MP4 for video); 0: none")
    p.add_argument("--threads", type=int, help="runtime CPU threads")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--tile", dest="mode", action="store_const", const="tile", help="always tile at native resolution")
    g.add_argument("--resize", dest="mode", action="store_const", const="resize", help="always letterbox to the input")
    p.add_argument("--frames", type=int, help="stop after N frames")
    p.add_argument("--conf", type=float, help="score threshold in (0, 2]: scores are heatmap peak values, "
                   "about 1 at a target, possibly above 1 (default: the sidecar codec's thr)")
    p.add_argument("--raw16", type=float, nargs=2, metavar=("SCALE", "OFFSET"),
                   help="16-bit frames: the camera's linear 8-bit map, 8-bit = (raw - OFFSET) / SCALE, so 8-bit and "
                        "16-bit output give the same points (default: percentile AGC; see edge.inference.preprocess)")
    p.add_argument("--max-pixels", type=float, default=100e6, help="frames above this many pixels are skipped and "
                   "counted, checked from the file header before decoding (default 100e6; 0: no limit)")
    p.add_argument("--power", help="power sensor: auto (default) | none | rapl | ina3221 | ina3221-iio | ina219 | "
                   "pi5-pmic | tegrastats")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up inferences (default 3)")
    p.add_argument("--summary-every", type=int, default=25, help="rewrite summary.json every N frames")
    p.add_argument("--quiet", action="store_true", help="no progress bar (skipped frames are still logged)")
    from edge.archive import add_archive_options

    add_archive_options(p)  # --workers (a --source folder of video files: edge.archive)
    p.set_defaults(mode="auto")
    return p


def pick_artifact(backend: str, precision: str | None, imgsz: int | None) -> Path:
    """The shipped artifact for a backend (and a board's input size when it has one)."""
    from edge.model import zoo
    from edge.backends import BACKENDS

    fmt = BACKENDS[backend].format
    if imgsz:
        cands = [(p, m) for p, m in zoo.find_artifacts() if m.format == fmt and m.imgsz == int(imgsz)]
        for prec in ((precision,) if precision else zoo.PRECISION_ORDER):
            hit = [p for p, m in cands if m.precision == prec]
            if hit:
                return hit[0]
    return zoo.default_artifact(fmt, precision)


class Run:
    """One run's state: predictor, source, writer, stats, power and metrics (see `main`)."""

    def __init__(self, args, stop: "_StopRequest | None" = None):
        self.stop = stop if stop is not None else _StopRequest()
        from edge.outputs import RunStats, RunWriter
        from edge.device.power import PowerSampler, detect
        from edge.inference.predictor import Predictor
        from edge.sources import open_source

        self.args = args
        model = args.model
        if model is None:
            model = pick_artifact(args.backend or "onnxruntime", args.precision, args.imgsz)
        else:  # a ladder name (--model spire-s) is that rung's artifact for the backend
            from edge.model import zoo
            from edge.backends import BACKENDS

            model = zoo.resolve_artifact(model, BACKENDS[args.backend or "onnxruntime"].format, args.precision)
        conf, self.track_settings = args.conf, None
        if getattr(args, "track", False):  # the model's tracking operating point, unless --conf/--tracker
            from edge.tracking.track_settings import track_settings, tracking_entry

            self.track_settings = track_settings(tracking_entry(model), args.conf, getattr(args, "tracker", None))
            conf = self.track_settings.conf
            print(f"tracking: {self.track_settings.source}", file=sys.stderr)
        self.pred = Predictor(model, args.backend, args.threads, args.mode, conf,
                              raw16=getattr(args, "raw16", None))
        if self.pred.note:
            print(f"note: {self.pred.note}", file=sys.stderr)
        self.source = open_source(args.source, args.frames, args.split, args.frame_stride, args.realtime)
        self.source.should_stop = lambda: self.stop.reason is not None  # long skips and reads end on a signal
        self.stats = RunStats()
        video_fps = (self.source.fps_out or 25.0) if self.source.is_video else None
        self.writer = RunWriter(args.save, self.source.spec, args.overlay_every, video_fps, args.summary_every,
                                show=args.show, labelled=self.source.labelled, tracking=bool(getattr(args, "track", False)))
        if getattr(args, "labels_out", None):  # pre-labels for a labelling tool, written on close
            from edge.outputs.labels_out import LabelsOut

            self.writer = LabelsOut(self.writer, args.labels_out, self.source, args.frame_stride)
        self.track = None
        if getattr(args, "track", False):  # the confirmed tracks' points are what is reported and scored
            from edge.tracking.track_outputs import TrackRun, draw_tracks

            self.track = TrackRun(self.track_settings.config, args.save)
            self.writer.layers.append(draw_tracks)
        self.metrics = None
        if self.source.labelled:  # the accumulator every scoring loop uses: overall, per clip, skips
            self.metrics = RunScores()
        self.sensor, self.tried = detect(args.power)
        self.sampler = PowerSampler(self.sensor) if self.sensor is not None else None
        self.power = None

    def summary(self) -> dict:
        """Everything known so far (called every few frames and at the end)."""
        meta = self.pred.meta
        power = self.power or (self.sampler.snapshot() if self.sampler else None)
        watts = power.mean_w if power else None
        mj = power.energy_j * 1000.0 / self.stats.frames if power and power.energy_j is not None and self.stats.frames else None
        names = [t.split(" ")[0] for t in self.tried]
        out = self.stats.summary(
            power_w=round(watts, 4) if watts is not None else None,
            energy_mj_per_frame=round(mj, 4) if mj is not None else None,
            power_source=power.source if power else None,
            power_note=None if self.sensor else f"no sensor: tried {', '.join(names) or 'nothing'}",
            power_tried=self.tried,
            backend=self.pred.backend.name, model=str(self.pred.model_path), format=meta.format,
            precision=meta.precision, imgsz=meta.imgsz, mode=self.pred.mode, conf=self.pred.conf,
            threads=self.args.threads, source=self.source.spec, source_kind=self.source.kind,
        )
        if self.metrics is not None and len(self.metrics):
            r = self.metrics.compute()
            out["metrics"] = {k: r[k] for k in ("precision", "recall", "f1", "fa_per_pixel", "fppi", "tp", "fp", "fn",
                                                "images", "targets", "loc_error_px", "target_free_frames",
                                                "fp_per_target_free_frame")}
            out["metrics_line"] = self.metrics.summary_line(result=r)
            out.update(self.metrics.clips_report(self.stats.skipped_names))
        out.update(self.source.report())
        out.update(self.writer.report())
        if self.track is not None:
            out["tracker"] = {**self.track.summary(), "settings": self.track_settings.source}
        from edge.outputs import _clean

        return _clean(out)

    def loop(self) -> None:
        args, stats = self.args, self.stats
        self.pred.warmup(args.warmup)
        if self.sampler:
            self.sampler.start()
        stats.t_start = time.perf_counter()
        self.writer.summary(self.summary())  # a valid summary.json exists from the first frame on
        bar = progress_bar(len(self.source), args.quiet)
        try:
            for item in self.source:
                frame = item.frame
                if not isinstance(frame, Exception):
                    try:
                        pts, t = self.pred.predict(frame, item.name)
                    except FrameError as e:
                        frame = e
                if isinstance(frame, Exception):
                    msg = str(frame) if item.name in str(frame) else f"{item.name}: {frame}"
                    stats.skip(item.name)
                    self.writer.skipped(item.frame_id, item.name, msg)
                    say(bar, f"skipped {msg}")
                else:
                    t["read"] += item.read_ms
                    extra = None
                    if self.track is not None:
                        pts = self.track.update(pts, frame, item)
                        extra = {"tracks": pts.tracks}
                    stats.add(t, len(pts))
                    if self.metrics is not None:  # edge.scoring's rule: an unlabelled frame is not scored
                        self.metrics.add(LabelledFrame.from_item(item), pts)
                    self.writer.frame(item.frame_id, item.name, pts, t, frame, item.gt, extra=extra)
                bar.update(1)
                if (stats.frames + stats.skipped) % self.writer.summary_every == 0:
                    self.writer.summary(self.summary())
                if self.stop.reason is not None:  # Ctrl-C / SIGTERM: stop between two frames
                    stats.stop_reason = self.stop.reason
                    break
            if stats.stop_reason is None and self.stop.reason is not None:  # asked while the source was skipping
                stats.stop_reason = self.stop.reason
            if getattr(self.source, "stopped_early", False) and stats.stop_reason is None:
                stats.stop_reason = (getattr(self.source, "stop_reason", None)
                                     or "source stopped delivering frames (retried, then stopped)")
        finally:
            bar.close()

    def finish(self) -> dict:
        if self.sampler is not None:
            self.power = self.sampler.stop()
            self.sensor.close()
        if self.track is not None:
            self.track.close()
        self.stats.finish()  # only now does the summary say how the run ended (a killed run says "running")
        s = self.summary()
        self.writer.summary(s)
        self.writer.close()
        self.source.close()
        return s


class _StopRequest:
    """Ctrl-C / `kill` end a run between two frames, so no line or summary is cut in half.

    The first SIGINT or SIGTERM only sets a flag that `Run.loop` checks after every frame; a
    second one raises KeyboardInterrupt at once (a source stuck in a read still stops).
    """

    def __init__(self):
        self.reason: str | None = None

    def install(self):
        """Install the handlers (main thread only); returns the call that restores the previous ones."""
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        names = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}

        def handler(signum, frame):
            if self.reason is not None:
                raise KeyboardInterrupt
            self.reason = f"interrupted ({names.get(signum, signum)})"

        previous = {sig: signal.signal(sig, handler) for sig in names}
        return lambda: [signal.signal(sig, h) for sig, h in previous.items()]


def _check_args(args) -> None:
    """One-line refusals of values that cannot work; --save goes to a new folder, never an earlier run's.

    A new or empty --save DIR is written directly; one that holds files gets DIR2, DIR3, ...
    (edge.outputs.runfolders), said on stderr and in the final `saved:` line.
    """
    from edge.argcheck import ArgumentError, check_conf, check_count, check_raw16, check_threads

    args.threads, args.conf = check_threads(args.threads), check_conf(args.conf)
    args.raw16 = check_raw16(getattr(args, "raw16", None))
    check_count(args.frames, "--frames", 1)
    check_count(args.warmup, "--warmup", 0)
    check_count(args.overlay_every, "--overlay-every", 0)
    check_count(args.summary_every, "--summary-every", 1)
    mp = getattr(args, "max_pixels", None)
    if mp is not None:
        if not mp >= 0:  # NaN too
            raise ArgumentError(f"--max-pixels {mp:g}: must be a pixel count >= 0 (0: no limit)")
        import edge.frames

        edge.frames.MAX_PIXELS = int(mp) or None  # read_frame's one limit for this process (edge.frames)
    if args.save:
        from edge.outputs.runfolders import new_run_folder

        folder, moved = new_run_folder(args.save)
        if moved:
            print(f"note: {args.save} already holds files; this run is saved in {folder}", file=sys.stderr)
        args.save = str(folder)


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop = _StopRequest()
    restore = stop.install()
    import edge.frames

    limit = edge.frames.MAX_PIXELS  # --max-pixels sets it for this run only (main() is also called in-process)
    try:
        if args.board:
            from edge.device.boards import load_board

            for k, v in load_board(args.board).as_defaults().items():
                if getattr(args, k, None) is None:
                    setattr(args, k, v)
        args.imgsz = getattr(args, "imgsz", None)
        _check_args(args)
        from edge.archive import archive_videos, check_workers, run_archive

        videos = archive_videos(args.source)
        check_workers(args, videos)
        try:
            if videos:  # a folder of video files: one run per file and a merged summary (edge.archive)
                return run_archive(args, videos)
            summary, run = _run(args, stop)
        finally:
            from edge.outputs.runfolders import release_claim

            release_claim(args.save)  # the folder is the run's; one it made and left empty is removed
    finally:
        restore()
        edge.frames.MAX_PIXELS = limit
    for line in format_report(summary):
        print(line)
    if args.save:
        print(f"saved: {args.save}/{', '.join(run.writer.files())}")
    return exit_code(summary["stop_reason"])


def _run(args, stop: "_StopRequest"):
    """Open, loop and finish one run; the final summary is written whatever ends the loop."""
    run = Run(args, stop)
    try:
        run.loop()
    except KeyboardInterrupt:
        run.stats.stop_reason = stop.reason or "interrupted (Ctrl-C)"
    except BaseException as e:
        run.stats.stop_reason = f"error: {type(e).__name__}: {e}"
        raise
    finally:
        summary = run.finish()
    return summary, run


def exit_code(stop_reason: str) -> int:
    """0, or 128 + the signal that stopped the run, as a shell reports it: 130 Ctrl-C, 143 SIGTERM.

    spire.train and edge.run use the same convention, so a supervisor (systemd, a batch script)
    reads the same code from both.
    """
    if stop_reason.startswith("interrupted"):
        return 143 if "SIGTERM" in stop_reason else 130
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
