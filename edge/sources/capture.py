"""Frames from OpenCV captures: a video file, a camera (`camera:N`) or a stream (RTSP/HTTP URL, GStreamer pipeline).

A video file is read in order; a frame the container promises but cannot decode (a corrupt
packet, a file cut short) is yielded as a `FrameError` item, so the run skips and counts it, and
reading resumes after it. After `max_gap` such frames in a row the rest of the file is taken as
lost: each remaining frame is counted as skipped without more decoding, and `stop_reason` says
where the file ended, so the summary is complete and frames + skipped = the container's count.
A live source (camera, stream) that stops delivering is retried a few times, then ends the run.

`realtime=True` puts the capture behind a grabber thread (`LatestFrame`) that keeps only the
newest frame: when inference is slower than the source, older frames are dropped and counted,
never queued (memory stays one frame). A video file in real-time mode is paced at its own frame
rate, so it behaves like the camera that recorded it.

Labels: a video file with a `frame,cx,cy,...` CSV beside it (`NAME.csv` in the same folder, or
`../labels/NAME.csv` as in the ir-drone layout) is scored against it, frame by frame.
"""
from __future__ import annotations

import itertools
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from edge.datasets.video import bgr_to_frame
from edge.errors import DatasetError, FrameError
from edge.frames import read_frame
from edge.sources import Item, Source, _cap, _timed_read

__all__ = ["CaptureSource", "LatestFrame", "capture_kind", "labels_beside", "bgr_to_frame"]

STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
_OPEN_TIMEOUT_MS, _READ_TIMEOUT_MS = 10000, 5000


def capture_kind(spec: str) -> str | None:
    """'camera' for camera:N, 'stream' for a URL or a GStreamer pipeline ('... ! ...'), else None."""
    s = spec.strip()
    if s.startswith("camera:"):
        return "camera"
    if s.lower().startswith(STREAM_PREFIXES) or "!" in s:  # a URL, or elements joined by '!' (GStreamer)
        return "stream"
    return None


def _open_capture(device, api: int | None = None):
    """cv2.VideoCapture(device[, api]) with open/read timeouts where this OpenCV has them (tests patch this)."""
    import cv2

    params = []
    for name, ms in (("CAP_PROP_OPEN_TIMEOUT_MSEC", _OPEN_TIMEOUT_MS), ("CAP_PROP_READ_TIMEOUT_MSEC", _READ_TIMEOUT_MS)):
        if hasattr(cv2, name) and isinstance(device, str) and capture_kind(device) == "stream" and api != cv2.CAP_GSTREAMER:
            params += [getattr(cv2, name), ms]
    if api is None and not params:
        return cv2.VideoCapture(device)
    return cv2.VideoCapture(device, cv2.CAP_ANY if api is None else api, params)


def labels_beside(video: Path) -> Path | None:
    """NAME.csv next to the video, or ../labels/NAME.csv (ir-drone layout), when it exists."""
    for cand in (video.with_suffix(".csv"), video.parent.parent / "labels" / f"{video.stem}.csv"):
        if cand.is_file():
            return cand
    return None


# Boxes an MP4/MOV file starts with; a file that starts otherwise (0 bytes, text, another format) is no
# MP4 at all, and is reported as not a video rather than as a recording that was cut.
MP4_TOP_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid")


def _has_mp4_index(path: Path) -> bool | None:
    """False when an MP4/MOV file has no 'moov' box (recording cut before it was closed); None: not MP4."""
    if path.suffix.lower() not in (".mp4", ".mov", ".m4v"):
        return None
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8 or head[4:8] not in MP4_TOP_BOXES:  # empty, or not an MP4 at all: not a cut one
                return None
            size_all, pos = path.stat().st_size, 0
            while pos + 8 <= size_all:
                f.seek(pos)
                size, typ = struct.unpack(">I4s", f.read(8))
                if typ == b"moov":
                    return True
                if size == 1:
                    size = struct.unpack(">Q", f.read(8))[0]
                if size < 8:
                    return False
                pos += size
    except OSError:
        return None
    return False


class LatestFrame:
    """A grabber thread over an Item iterator that keeps only the newest item (a one-slot buffer).

    `get()` returns the newest item not yet taken (waiting for one), or None when the iterator is
    exhausted and nothing is pending. An item replaced before it was taken is counted in
    `dropped`; `grabbed` counts every item the thread produced. `pace_s` spaces the producer out
    (a file played at its frame rate). `stop()` ends the thread between two reads.
    """

    def __init__(self, items: Iterator[Item], pace_s: float | None = None):
        self._items, self.pace_s = items, pace_s
        self._cond = threading.Condition()
        self._slot: Item | None = None
        self._done = False
        self._halt = threading.Event()
        self.grabbed = self.dropped = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="edge-grabber", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        due = time.perf_counter()
        try:
            for item in self._items:
                with self._cond:
                    if self._slot is not None:
                        self.dropped += 1
                    self._slot = item
                    self.grabbed += 1
                    self._cond.notify()
                if self._halt.is_set():
                    break
                if self.pace_s:
                    due += self.pace_s
                    time.sleep(max(0.0, due - time.perf_counter()))
                if self._halt.is_set():
                    break
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer's thread by get()
            self.error = e
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    @property
    def pending(self) -> int:
        return int(self._slot is not None)

    def get(self) -> Item | None:
        with self._cond:
            while self._slot is None and not self._done:
                self._cond.wait(0.1)
            item, self._slot = self._slot, None
        if item is None and self.error is not None:
            raise self.error
        return item

    def stop(self, timeout: float = 3.0) -> None:
        self._halt.set()
        self._thread.join(timeout)


@dataclass(frozen=True)
class CaptureOptions:
    """How a capture is read: frame cap, stride, newest-frame-only (realtime), reconnects, the largest
    tolerated gap of undecodable frames, and an OpenCV backend (None: its default)."""

    limit: int | None = None
    stride: int = 1
    realtime: bool = False
    retries: int = 3
    retry_wait_s: float = 0.2
    max_gap: int = 5
    api: int | None = None


class CaptureSource(Source):
    """A video file, camera or stream through cv2.VideoCapture (see the module docstring)."""

    is_video = True

    def __init__(self, spec: str, device: int | str, kind: str, opts: CaptureOptions = CaptureOptions()):
        import cv2

        super().__init__(spec, kind, False, None, opts.limit)
        self.stride, self.realtime, self.max_gap = max(1, int(opts.stride)), bool(opts.realtime), max(1, opts.max_gap)
        self.retries, self.retry_wait_s = int(opts.retries), float(opts.retry_wait_s)
        self.stopped_early, self.stop_reason, self.grabber = False, None, None
        self.labels: dict[int, np.ndarray] | None = None
        self.labels_path: Path | None = None
        self.undecodable = self.decoded = 0
        self.note: str | None = None
        self.cap = _open_capture(device, opts.api)
        if not self.cap.isOpened():
            raise DatasetError(self._open_error(spec, kind))
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else None
        self.count = max(int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0) if kind == "video" else 0
        self.stem = Path(spec).stem if kind == "video" else spec.replace(":", "")[:40]
        if kind == "video":
            from edge.datasets.video import read_point_labels

            self.labels_path = labels_beside(Path(spec))
            if self.labels_path is not None:
                self.labels, self.labelled = read_point_labels(self.labels_path), True
                self._warn_label_range()

    def _warn_label_range(self) -> None:
        """One warning line counting label points no detection can match (off the frame, past the video)."""
        import cv2

        from edge.datasets.video import label_range_counts, label_range_message

        h, w = int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0), int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        msg = label_range_message(self.labels_path, *label_range_counts(self.labels, self.count,
                                                                         (h, w) if h and w else None))
        if msg:
            print(f"warning: {msg}", file=sys.stderr)

    @staticmethod
    def _open_error(spec: str, kind: str) -> str:
        if kind == "camera":
            return (f"{spec}: cannot open this camera; check the index (ls /dev/video*), that no other program "
                    "holds it, and that OpenCV has a camera backend (V4L2 / AVFoundation / DirectShow)")
        if kind == "stream":
            return (f"{spec}: cannot open this stream; check the URL and that the camera is reachable, and that "
                    "OpenCV was built with FFmpeg (RTSP/HTTP) or GStreamer (pipelines): cv2.getBuildInformation()")
        if _has_mp4_index(Path(spec)) is False:
            return (f"{spec}: this MP4 has no index ('moov' box): the recording was cut before it was closed; "
                    "recover it (e.g. untrunc) or record with fragmented MP4 / MKV")
        return f"{spec}: OpenCV cannot open this video (not a video, or no FFmpeg decoder for it); re-encode to H.264 MP4"

    def __len__(self) -> int:
        n = -(-self.count // self.stride) if self.count else 0
        return _cap(n, self.limit) if n else (self.limit or 0)

    @property
    def fps_out(self) -> float | None:
        return self.fps / self.stride if self.fps else None

    def _name(self, idx: int) -> str:
        return f"{self.stem}#{idx:06d}"

    def _gt(self, idx: int) -> np.ndarray | None:
        if self.labels is None:
            return None
        return self.labels.get(idx, np.zeros((0, 2), np.float32))

    def _read_live(self):
        """One frame from a camera/stream, retried `retries` times; None when it stopped delivering."""
        for attempt in range(self.retries + 1):
            ok, frame = self.cap.read()
            if ok and frame is not None:
                return frame
            if attempt < self.retries:
                time.sleep(self.retry_wait_s)
        self.stopped_early = True
        self.stop_reason = (f"{self.spec} stopped delivering frames (no frame after {self.retries} retries, "
                            f"{self.retries * self.retry_wait_s:.1f} s)")
        return None

    @property
    def _clip(self) -> str | None:  # a labelled video file is one clip (scored per clip like a clip folder)
        return self.stem if self.labels is not None else None

    def _item(self, pos: int, idx: int, frame, t0: float) -> Item:
        out, _ = _timed_read(read_frame, bgr_to_frame(frame), self._name(idx))
        return Item(pos, self._name(idx), out, self._gt(idx), (time.perf_counter() - t0) * 1000.0, self._clip)

    def _lost(self, pos: int, idx: int, why: str, t0: float) -> Item:
        err = FrameError(f"{self._name(idx)}: {why}")
        return Item(pos, self._name(idx), err, None, (time.perf_counter() - t0) * 1000.0, self._clip)

    def _stopping(self) -> bool:
        """True once the run was asked to stop (Ctrl-C / SIGTERM): long skips and reads end early."""
        return bool(self.should_stop is not None and self.should_stop())

    def _skip(self, n: int) -> int:
        """Pass over the next `n` frames (--frame-stride); returns how many there were (fewer: the end).

        A failed grab is the end of the file, and the stop flag is checked on every frame, so a
        stride far beyond the file's length ends at its last frame and a SIGTERM is honoured.
        (grab() over seeking with CAP_PROP_POS_FRAMES: a seek trusts the header's frame count
        and timestamps, which are wrong in joined or cut files; grab() only demuxes and decodes.)
        """
        for k in range(n):
            if self._stopping() or not self.cap.grab():
                return k
        return n

    def _frames(self) -> Iterator[Item]:
        """Items in source order (pos = 0, 1, 2, ...), stride and truncation handled."""
        if self.kind != "video":
            yield from self._live_frames()
            return
        import cv2

        pos = idx = gap = 0
        while not self._stopping():
            t0 = time.perf_counter()
            ok, frame = self.cap.read()
            if ok and frame is not None:
                gap = 0
                yield self._item(pos, idx, frame, t0)
                skipped = self._skip(self.stride - 1)
                idx, pos = idx + 1 + skipped, pos + 1
                self.decoded = max(self.decoded, idx)
                if skipped < self.stride - 1:
                    break
                continue
            if not self.count or idx >= self.count:  # past what the header promised: the decoder's end is the end
                break
            gap += 1
            self.undecodable += 1
            yield self._lost(pos, idx, "frame could not be decoded (corrupt or truncated video); skipped", t0)
            idx, pos = idx + self.stride, pos + 1
            if gap >= self.max_gap:
                yield from self._lost_tail(pos, idx)
                return
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, idx)  # resume after the bad frame
        self._header_check()

    def _lost_tail(self, pos: int, idx: int) -> Iterator[Item]:
        """`max_gap` frames in a row did not decode: the rest of the declared frames are counted as lost."""
        first = idx - self.stride * self.max_gap
        lost, total = -(-(self.count - first) // self.stride), -(-self.count // self.stride)
        self.stopped_early = True
        self.stop_reason = (f"{Path(self.spec).name}: no frame decodes from #{first:06d} on ({self.max_gap} tried): "
                            f"{lost} of {total} frames skipped, the file is truncated or corrupt")
        for k in range(idx, self.count, self.stride):
            yield self._lost(pos, k, "frame lost: the video is truncated or corrupt from here on", time.perf_counter())
            pos += 1

    def _header_check(self) -> None:
        """One line when the file held more frames than its header said (joined MPEG files): all were read."""
        if self.count and self.decoded > self.count and not self._stopping():
            self.note = (f"note: {Path(self.spec).name}: its header says {self.count} frames but {self.decoded} "
                         "decoded; all were read (the header is wrong, e.g. files joined end to end)")
            print(self.note, file=sys.stderr)

    def _live_frames(self) -> Iterator[Item]:
        pos = idx = 0
        while not self._stopping():
            t0 = time.perf_counter()
            frame = self._read_live()
            if frame is None:
                return
            yield self._item(pos, idx, frame, t0)
            pos, idx = pos + 1, idx + 1
            idx += self._skip(self.stride - 1)

    def __iter__(self) -> Iterator[Item]:
        taken = 0
        if not self.realtime:
            yield from itertools.islice(self._frames(), self.limit or None)
            return
        pace = 1.0 / self.fps_out if self.kind == "video" and self.fps_out else None
        self.grabber = LatestFrame(self._frames(), pace)
        try:
            while not self.limit or taken < self.limit:
                item = self.grabber.get()
                if item is None:
                    return
                yield item
                taken += 1
        finally:
            self.grabber.stop()

    def report(self) -> dict:
        out = {"realtime": self.realtime}
        if self.kind == "video":
            out["video_frames"] = max(self.count, self.decoded)
            if self.decoded > self.count:
                out["header_frames"] = self.count
            out["labels"] = str(self.labels_path) if self.labels_path else None
            out["undecodable_frames"] = self.undecodable
        if self.stride > 1:
            out["frame_stride"] = self.stride
        if self.grabber is not None:
            out.update(grabbed=self.grabber.grabbed, dropped=self.grabber.dropped,
                       dropped_fraction=round(self.grabber.dropped / self.grabber.grabbed, 4)
                       if self.grabber.grabbed else 0.0)
        return out

    def close(self) -> None:
        if self.grabber is not None:
            self.grabber.stop()
        self.cap.release()
