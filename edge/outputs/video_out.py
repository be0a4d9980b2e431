"""Pictures a run leaves behind: the annotated video, a contact sheet of its mistakes, a live window.

- `AnnotatedVideo`: DIR/annotated.mp4 (OpenCV VideoWriter, mp4v), one picture per processed frame
  at the source's frame rate; a frame of another size (a folder of clips of mixed sizes) is
  letterboxed into the first frame's size so the file stays playable. Written in closed segments
  joined at the end, so a killed run leaves `annotated.partNNN.mp4` files that play up to the last
  closed segment (MP4 keeps its index at the end; OpenCV's writer has no fragmented MP4).
- `ContactSheet`: DIR/contact_sheet.png, a grid of the frames with misses or false alarms — what to
  look at first. Memory is bounded: it keeps at most `keep` candidate thumbnails and, when full,
  thins them to every other one, so the sheet samples the whole run evenly.
- `Viewer`: `--show`, a cv2 window where a display and a GUI build of OpenCV exist; otherwise one
  note on stderr and nothing else (opencv-python-headless has no GUI). `q` / Esc closes the window
  (the run goes on; Ctrl-C stops it).
- `LiveFps`: frames per second over the last ~second of wall time, for the header.
"""
from __future__ import annotations

import os
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

__all__ = ["AnnotatedVideo", "ContactSheet", "Viewer", "LiveFps", "fit_into"]


def fit_into(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """`img` letterboxed (aspect kept, black bars) into H×W."""
    import cv2

    h, w = hw
    if img.shape[:2] == (h, w):
        return img
    s = min(h / img.shape[0], w / img.shape[1])
    nh, nw = max(1, round(img.shape[0] * s)), max(1, round(img.shape[1] * s))
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - nh) // 2, (w - nw) // 2
    out[y:y + nh, x:x + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


class LiveFps:
    """Processed frames per second over a sliding window of wall time."""

    def __init__(self, window_s: float = 1.0):
        self.window_s = float(window_s)
        self.times: deque[float] = deque()

    def tick(self, t: float | None = None) -> float | None:
        t = time.perf_counter() if t is None else t
        self.times.append(t)
        while len(self.times) > 2 and t - self.times[0] > self.window_s:
            self.times.popleft()
        if len(self.times) < 2:
            return None
        span = self.times[-1] - self.times[0]
        return (len(self.times) - 1) / span if span > 0 else None


class AnnotatedVideo:
    """DIR/annotated.mp4, written in closed segments so a killed run leaves a readable video.

    Why segments: MP4 keeps its index at the end, so a run killed mid-way (power loss is how a run
    on a board usually ends) left an annotated.mp4 that nothing could play, and OpenCV's writer
    takes no fragmented-MP4 option. So the pictures go to `annotated.partNNN.mp4` files of
    `segment_frames` frames, each closed (indexed) when full; `close` joins them into
    annotated.mp4 and removes the parts. After a kill, every part but the last plays: the video
    up to the last closed segment. Opened on the first picture (its size fixes the video's).
    """

    def __init__(self, path: Path, fps: float | None, segment_frames: int = 60):
        self.path, self.fps = Path(path), float(fps) if fps and fps > 0 else 25.0
        self.segment_frames = max(1, int(segment_frames))
        self._vw = None
        self.parts: list[Path] = []
        self.hw: tuple[int, int] | None = None
        self.frames = 0
        self.error: str | None = None

    def _open(self, path: Path):
        import cv2

        vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (self.hw[1], self.hw[0]))
        if not vw.isOpened():
            self.error = f"{path}: OpenCV could not open an mp4v VideoWriter (no FFmpeg in this build?)"
            return None
        return vw

    def write(self, pic: np.ndarray) -> bool:
        if self.error is not None:
            return False
        if self.hw is None:
            self.hw = pic.shape[:2]
        if self._vw is None:
            part = self.path.with_name(f"{self.path.stem}.part{len(self.parts):03d}{self.path.suffix}")
            self._vw = self._open(part)
            if self._vw is None:
                return False
            self.parts.append(part)
        self._vw.write(fit_into(pic, self.hw))
        self.frames += 1
        if self.frames % self.segment_frames == 0:  # a closed segment plays whatever happens next
            self._vw.release()
            self._vw = None
        return True

    def close(self) -> None:
        """Close the open segment and join the parts into the one video (one part: a rename)."""
        import cv2

        if self._vw is not None:
            self._vw.release()
            self._vw = None
        if not self.parts:
            return
        if len(self.parts) == 1:
            os.replace(self.parts[0], self.path)
        else:
            tmp = self.path.with_name(f".{self.path.name}.joining{self.path.suffix}")
            out = self._open(tmp)
            if out is None:
                return  # the parts stay: each plays
            for part in self.parts:
                cap = cv2.VideoCapture(str(part))
                ok, img = cap.read()
                while ok:
                    out.write(img)
                    ok, img = cap.read()
                cap.release()
            out.release()
            os.replace(tmp, self.path)
            for part in self.parts:
                part.unlink(missing_ok=True)
        self.parts = []


class ContactSheet:
    """Thumbnails of frames with misses or false alarms, written as one PNG grid."""

    def __init__(self, max_tiles: int = 12, keep: int = 48, tile_w: int = 320, cols: int = 4):
        self.max_tiles, self.keep, self.tile_w, self.cols = int(max_tiles), int(keep), int(tile_w), int(cols)
        self.cands: list[tuple[int, np.ndarray]] = []
        self.every = 1  # keep one error frame in `every` (doubles each time the list is thinned)
        self.seen = 0  # error frames seen
        self.frames = 0  # labelled frames seen

    def wants(self, n_miss: int, n_fa: int) -> bool:
        """Whether the next frame with these counts will be kept (so the caller draws it only then)."""
        return bool(n_miss or n_fa) and self.seen % self.every == 0

    def add(self, index: int, n_miss: int, n_fa: int, pic: np.ndarray | None = None) -> None:
        """Count one labelled frame; keep its picture when it has errors and `wants` said so."""
        self.frames += 1
        if not (n_miss or n_fa):
            return
        keep = self.seen % self.every == 0
        self.seen += 1
        if keep and pic is not None:
            import cv2

            s = self.tile_w / pic.shape[1]
            thumb = cv2.resize(pic, (self.tile_w, max(1, round(pic.shape[0] * s))), interpolation=cv2.INTER_AREA)
            self.cands.append((int(index), thumb))
            if len(self.cands) >= self.keep:
                self.cands, self.every = self.cands[::2], self.every * 2

    def write(self, path: Path) -> Path:
        import cv2

        if not self.cands:
            pic = np.zeros((60, 640, 3), np.uint8)
            cv2.putText(pic, f"no misses or false alarms in {self.frames} labelled frames", (10, 36),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.55, (60, 220, 60), 1, cv2.LINE_AA)
        else:
            n = min(self.max_tiles, len(self.cands))
            pick = [self.cands[int(i)] for i in np.unique(np.linspace(0, len(self.cands) - 1, n).round())]
            th = max(t.shape[0] for _, t in pick)
            cols = min(self.cols, len(pick))
            rows = -(-len(pick) // cols)
            pic = np.zeros((rows * (th + 4), cols * (self.tile_w + 4), 3), np.uint8)
            for k, (_, t) in enumerate(pick):
                y, x = (k // cols) * (th + 4) + 2, (k % cols) * (self.tile_w + 4) + 2
                pic[y:y + t.shape[0], x:x + t.shape[1]] = t
        cv2.imwrite(str(path), pic)
        return Path(path)


class Viewer:
    """`--show`: a cv2 window when possible, else one note (and every later call is a no-op)."""

    def __init__(self, title: str = "edge.run", stream=None):
        self.title, self.ok, self.note = title, False, None
        stream = stream or sys.stderr
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            self.note = "--show: no display here (DISPLAY is not set), no window; --save DIR keeps annotated.mp4"
        else:
            try:
                import cv2

                cv2.namedWindow(title, cv2.WINDOW_NORMAL)
                self.ok = True
            except Exception:  # noqa: BLE001 - cv2.error: headless build ("The function is not implemented")
                self.note = ("--show: this OpenCV has no GUI (opencv-python-headless), no window; "
                             "pip install opencv-python for one, or use --save DIR for annotated.mp4")
        if self.note:
            print(f"note: {self.note}", file=stream)

    def show(self, pic: np.ndarray) -> None:
        if not self.ok:
            return
        import cv2

        cv2.imshow(self.title, pic)
        if cv2.waitKey(1) & 0xFF in (27, ord("q")):
            self.close()

    def close(self) -> None:
        if self.ok:
            import cv2

            self.ok = False
            cv2.destroyWindow(self.title)
