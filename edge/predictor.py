"""Frame in, target points out: the one inference path shared by `edge.run`, calibration checks and benchmarks.

The sidecar is read once: it fixes the preprocessing (edge.preprocess, the same code training
used), the decoder (edge.codecs, same parameters as training) and the backend. A frame that fits
the model input is padded, or letterboxed when the model was trained with scale_up (the faithful
SPIRE way); a larger frame is tiled at native resolution (edge.tiling) so few-pixel targets are
not shrunk away. Points always come back in original image pixels.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edge.backends import BACKENDS, Backend, load_backend
from edge.frames import read_frame
from edge.points import Points
from edge.tiling import TileConfig, global_filter, merge_peaks, tile_grid

MODES = ("auto", "tile", "resize")
STAGES = ("read", "preprocess", "infer", "decode")


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def resolve_model(model_path: str | Path | None, backend: str | None, precision: str | None = None) -> Path:
    """The artifact to run: `model_path`, else the shipped one for the backend's format (edge.zoo)."""
    if model_path is not None:
        return Path(model_path)
    from edge.zoo import default_artifact

    fmt = BACKENDS[backend].format if backend in BACKENDS else "onnx"
    return default_artifact(fmt, precision)


class Predictor:
    """A loaded model plus its preprocessing and decoder.

    Args:
        model_path: artifact folder or model file (None: the shipped artifact for `backend`).
        backend: 'onnxruntime' | 'openvino' | 'tflite' | 'tensorrt' (None: from the sidecar).
        threads: runtime CPU threads.
        mode: 'auto' (pad/letterbox frames that fit, tile larger ones) | 'tile' | 'resize'.
        conf: score threshold overriding the codec's `thr` (None: the sidecar's).
        precision: which shipped artifact when `model_path` is None ('fp32' | 'int8').
        overlap: minimum tile overlap in px (>= 32).
        merge_px: peaks from different tiles closer than this are one target.
        raw16: (scale, offset) of the sensor's linear raw -> 8-bit map; 16-bit / float frames then
            become round((raw - offset) / scale) in 0..255, the camera's own 8-bit frame, so both bit
            depths give the same points (None: the percentile AGC; see edge.preprocess).
    """

    raw16: tuple[float, float] | None = None  # the sensor's raw -> 8-bit map (None: percentile AGC)

    def __init__(self, model_path: str | Path | None = None, backend: str | None = None,
                 threads: int | None = None, mode: str = "auto", conf: float | None = None,
                 precision: str | None = None, overlap: int = 32, merge_px: float = 3.0,
                 raw16: tuple[float, float] | None = None):
        from edge.argcheck import check_conf, check_raw16, check_threads
        from edge.sidecar import read_sidecar

        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        threads, conf = check_threads(threads, "threads"), check_conf(conf, "conf")
        self.raw16 = check_raw16(raw16, "raw16")
        self.model_path = resolve_model(model_path, backend, precision)
        self.meta = read_sidecar(self.model_path)
        self._setup(load_backend(self.model_path, backend, threads, meta=self.meta), self.meta.preprocess_config(),
                    self._build_codec(conf), int(self.meta.input["shape"][2]), mode, overlap, merge_px)

    @classmethod
    def from_parts(cls, backend: Backend, cfg, codec, size: int, mode: str = "auto", overlap: int = 32,
                   merge_px: float = 3.0, model_path: str | Path | None = None) -> "Predictor":
        """A Predictor around an already-built backend (e.g. a torch module in benchmarks), no sidecar.

        Why: the benchmark's torch rows must share this exact read/preprocess/tile/decode path with
        the artifact rows, without touching the Predictor's internals from outside.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self = cls.__new__(cls)
        self.model_path, self.meta = model_path, None
        self._setup(backend, cfg, codec, size, mode, overlap, merge_px)
        return self

    def _setup(self, backend: Backend, cfg, codec, size: int, mode: str, overlap: int, merge_px: float) -> None:
        self.backend = backend
        self.cfg = cfg
        self.size = int(size)
        self.codec = codec
        self.mode = mode
        # >= 32 px of overlap (a target and its blur fit in it), but never more than half a tile
        self.tiles = TileConfig(self.size, min(max(32, int(overlap)), self.size // 2), float(merge_px))

    def _build_codec(self, conf: float | None):
        cfg = dict(self.meta.codec)
        if conf is not None:
            cfg["thr"] = float(conf)
        from edge.codecs import build_codec

        return build_codec(cfg)

    @property
    def conf(self) -> float:
        return float(getattr(self.codec, "thr", 0.0))

    # ------------------------------------------------------------------ paths
    def uses_tiles(self, hw: tuple[int, int]) -> bool:
        """Whether a frame of this H×W goes through tiling under the current mode."""
        if self.mode == "tile":
            return True
        if self.mode == "resize":
            return False
        return hw[0] > self.size or hw[1] > self.size

    def predict(self, frame: np.ndarray | str | Path, name: str | None = None) -> tuple[Points, dict]:
        """Detect targets in one frame.

        Args:
            frame: H×W / H×W×3 RGB array (uint8, uint16 or finite float) or an image path.
            name: what a FrameError calls the frame.
        Returns:
            (Points in original image px, {'read', 'preprocess', 'infer', 'decode'} in ms).
        Raises:
            FrameError: corrupt / empty / NaN / wrongly shaped frame.
        """
        t0 = time.perf_counter()
        img = read_frame(frame, name)
        timings = {"read": _ms(t0), "preprocess": 0.0, "infer": 0.0, "decode": 0.0}
        if self.raw16 is not None and img.dtype != np.uint8:  # the camera's own 8-bit view (edge.preprocess)
            from edge.preprocess import raw_to_8bit

            t = time.perf_counter()
            img = raw_to_8bit(img, *self.raw16)
            timings["preprocess"] += _ms(t)
        if self.uses_tiles(img.shape[:2]):
            pts = self._predict_tiled(img, timings)
        else:
            pts = self._run_one(img, timings)
        return pts, timings

    def warmup(self, n: int = 2) -> None:
        """Run the backend `n` times on a zero input so first-frame costs stay out of the latencies."""
        x = np.zeros(self.backend.input_shape, np.float32)
        for _ in range(max(0, int(n))):
            self.backend.infer(x)

    def __call__(self, frame, name: str | None = None) -> Points:
        return self.predict(frame, name)[0]

    def _run_one(self, img: np.ndarray, timings: dict) -> Points:
        """preprocess -> infer -> decode on a whole frame (pad or letterbox as the sidecar says)."""
        from edge.preprocess import preprocess

        t = time.perf_counter()
        x, lb = preprocess(img, self.cfg)
        timings["preprocess"] += _ms(t)
        return self._infer_decode(x, lb, timings)

    def _infer_decode(self, x: np.ndarray, lb, timings: dict) -> Points:
        t = time.perf_counter()
        heat = self.backend.infer(x[None])
        timings["infer"] += _ms(t)
        t = time.perf_counter()
        pts = self.codec.decode(heat, lb)
        timings["decode"] += _ms(t)
        return pts

    def _predict_tiled(self, img: np.ndarray, timings: dict) -> Points:
        """Native-resolution S×S tiles; each keeps the peaks in its core; near-duplicates merged.

        Gain (8-bit scaling / percentile AGC) and channel conversion run once on the whole frame,
        so every tile sees the same gain; each tile is then only zero-padded (never scaled) and
        normalised with the same edge.preprocess functions the whole-frame path uses.
        """
        from edge.preprocess import Letterbox, normalize, to_255, to_channels

        t = time.perf_counter()
        img = to_channels(to_255(img, self.cfg.norm), self.cfg.channels)
        timings["preprocess"] += _ms(t)
        h, w = img.shape[:2]
        parts = []
        for tile in tile_grid(h, w, self.tiles):
            t = time.perf_counter()
            crop = tile.crop(img)
            lb = Letterbox.fit(crop.shape[:2], self.size, "center", scale_up=False)
            lb_img = lb.apply(crop)
            x = normalize(lb_img if lb_img.ndim == 3 else lb_img[:, :, None], self.cfg)
            timings["preprocess"] += _ms(t)
            pts = self._infer_decode(x, lb, timings)
            if len(pts):
                xy = pts.xy + np.array([tile.x, tile.y], np.float32)
                keep = tile.owns(xy)
                parts.append(Points(xy[keep], pts.scores[keep]))
        t = time.perf_counter()
        merged = Points.concat(parts)
        keep = merge_peaks(merged.xy, merged.scores, self.tiles.merge_px)
        merged = Points(merged.xy[keep], merged.scores[keep])
        order = global_filter(merged.scores, getattr(self.codec, "top_k", None), self._frame_vr())
        timings["decode"] += _ms(t)
        return Points(merged.xy[order], merged.scores[order])

    def _frame_vr(self) -> float | None:
        """The codec's relative-to-best rule, re-applied across tiles when the codec applies it."""
        return getattr(self.codec, "vr", None) if getattr(self.codec, "faithful", False) else None

    def __repr__(self) -> str:
        return f"Predictor({self.model_path}, backend={self.backend.name}, mode={self.mode}, S={self.size})"
