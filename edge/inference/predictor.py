"""Frame in, target points out: the one inference path shared by `edge.run`, calibration checks and benchmarks.

The sidecar is read once: it fixes the preprocessing (edge.inference.preprocess, the same code training
used), the decoder (edge.codecs, same parameters as training) and the backend. A frame that fits
the model input is padded, or letterboxed when the model was trained with scale_up (the faithful
SPIRE way); a larger frame is tiled at native resolution (edge.inference.tiling) so few-pixel targets are
not shrunk away. Points always come back in original image pixels.

Every path from a frame to points goes through here: `edge.run`, `spire.evaluate`, training-time
validation, the fidelity reports and the benchmarks, on exported artifacts and on torch models
alike (`spire.torch_backend`), so a model scores the same wherever it is scored. Modes, by name:
'auto' (the deployment path above), 'tile', 'resize' (letterbox every frame to the input) and
'native' (whole frames padded to 32 px, never scaled or cut; backends that take any input size).
The decode threshold is an argument of `predict` (`thr`), never a changed attribute.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from edge.backends import BACKENDS, Backend, load_backend
from edge.frames import read_frame
from edge.inference.points import Points
from edge.inference.preprocess import Letterbox, normalize, preprocess, preprocess_native, to_255, to_channels
from edge.inference.tiling import TileConfig, global_filter, merge_peaks, tile_grid

MODES = ("auto", "tile", "resize", "native", "static")
STAGES = ("read", "preprocess", "infer", "decode")


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def _model_file(model_path: Path, meta) -> Path:
    """The file the sidecar describes, for a folder or a file argument."""
    p = Path(model_path)
    return (p if p.is_dir() else p.parent) / meta.model_file


def resolve_model(model_path: str | Path | None, backend: str | None, precision: str | None = None) -> Path:
    """The artifact to run: a path as given; a ladder name ('spire-s') -> that rung's artifact for
    the backend; None -> the default rung's. Without a backend, the first installed of
    edge.model.zoo.BACKEND_PREFERENCE (openvino, onnxruntime, tflite) picks the format."""
    from edge.model import zoo

    name = backend or zoo.default_backend()
    fmt = BACKENDS[name].format if name in BACKENDS else "onnx"  # an unknown name fails in load_backend
    if model_path is None:
        return zoo.default_artifact(fmt, precision)
    if fmt == "torch":
        return zoo.named_checkpoint(model_path)
    return zoo.resolve_artifact(model_path, fmt, precision)


def default_mode(mode: str, deployed: int | None, scale_up: bool, imgsz: int | None = None) -> str:
    """What 'auto' means for a checkpoint run through torch (`spire.evaluate`, `edge.run --model best.pt`).

    With exports (`deployed`, their input size) or a size asked for: what the device runs, tiles of
    that size, so the checkpoint scores what its artifact scores. Without either, a model trained
    for native resolution (no scale_up) runs whole frames, padded to 32, as training validated it:
    tiles and padding change what a model with whole-frame context (an SE gate) sees (spire-n lost
    30 points of recall on 320x256 clips tiled at 192). Any other mode is kept.
    """
    if mode == "auto" and deployed is None and imgsz is None and not scale_up:
        return "native"
    return mode


class Predictor:
    """A loaded model plus its preprocessing and decoder.

    `Predictor("spire-s")(frame)` is the Python API (edge.__init__): a ladder name, an artifact
    folder / model file, or a checkpoint (`best.pt`, with torch installed); calling it returns Points.

    Args:
        model_path: ladder name, artifact folder or model file (None: the default rung's artifact
            for `backend`, or for the first installed runtime of openvino, onnxruntime, tflite).
        backend: 'onnxruntime' | 'openvino' | 'tflite' | 'tensorrt' | 'torch' (edge.model.targets; None: from the sidecar).
        threads: runtime CPU threads.
        mode: 'auto' (pad/letterbox frames that fit, tile larger ones) | 'tile' | 'resize' | 'native'.
        conf: score threshold overriding the codec's `thr` (None: the sidecar's).
        precision: which shipped artifact when `model_path` is None ('fp32' | 'int8').
        overlap: minimum tile overlap in px (>= 32).
        merge_px: peaks from different tiles closer than this are one target.
        raw16: (scale, offset) of the sensor's linear raw -> 8-bit map; 16-bit / float frames then
            become round((raw - offset) / scale) in 0..255, the camera's own 8-bit frame, so both bit
            depths give the same points (None: the percentile AGC; see edge.inference.preprocess).
        imgsz: input / tile size for a backend that takes any size (torch); None: the size of the
            checkpoint's deployment contract when it states one (`edge.model.contract`), else its own.
    """

    raw16: tuple[float, float] | None = None  # the sensor's raw -> 8-bit map (None: percentile AGC)

    def __init__(self, model_path: str | Path | None = None, backend: str | None = None,
                 threads: int | None = None, mode: str = "auto", conf: float | None = None,
                 precision: str | None = None, overlap: int = 32, merge_px: float = 3.0, imgsz: int | None = None,
                 raw16: tuple[float, float] | None = None):
        from edge.argcheck import check_conf, check_raw16, check_threads
        from edge.model.sidecar import read_sidecar

        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        threads, conf = check_threads(threads, "threads"), check_conf(conf, "conf")
        self.raw16 = check_raw16(raw16, "raw16")
        self.model_path = resolve_model(model_path, backend, precision)
        self.meta = read_sidecar(self.model_path)
        be = load_backend(self.model_path, backend, threads, meta=self.meta)
        size = int(self.meta.input["shape"][2])
        if getattr(be, "dynamic_input", False):
            from edge.model.contract import deployed_size

            # an exported artifact is deployed at its own input size; a checkpoint as its contract says
            deployed = deployed_size(self.meta.to_dict(), _model_file(self.model_path, self.meta))
            size = int(imgsz or deployed or size)
            be.set_input_size(size)
            mode = default_mode(mode, deployed, self.meta.preprocess_config().scale_up, imgsz)
        elif imgsz and int(imgsz) != size:
            raise ValueError(f"{self.model_path}: the artifact's input is fixed at {size} px; export one at {imgsz} "
                             f"(`python -m export --imgsz {imgsz}`)")
        cfg = dataclasses.replace(self.meta.preprocess_config(), imgsz=size)
        self._setup(be, cfg, self._build_codec(conf, size), size, mode, overlap, merge_px)

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
        dynamic = bool(getattr(backend, "dynamic_input", False))  # the runtime takes any input size
        if mode == "native" and not dynamic:
            raise ValueError(f"mode 'native' needs a backend that runs any input size (torch); {backend.name} runs a "
                             "static input: use 'auto' (tiles at native resolution)")
        # A backend that runs any input size runs a frame that fits the input as the model's
        # preprocessing says (`fit`): at its own size padded to 32 px ("native"), or padded to S
        # ("pad"), which changes what a model with whole-frame context (an SE gate) sees, so it is
        # chosen on validation per model (spire-n, OpenVINO INT8, threshold re-chosen: sirst-v2/val F1
        # 0.782 -> 0.852 and ir-drone/val 0.916 -> 0.931 padded; the older stage-1 model had lost 3 points).
        # Larger frames are tiled at S, which scored 7 points higher on sirst-v2/val than whole
        # 1920x1080 frames.
        wants_native = mode == "auto" and cfg.fit == "native" and not cfg.scale_up
        self.fits_native = wants_native and dynamic
        # A model chosen at the frames' own size on a runtime that cannot run them so (LiteRT, TensorRT):
        # it still runs, padded, but its scores near the padding differ from what was validated.
        self.note = None if not wants_native or dynamic else (
            f"{backend.name} runs a fixed {int(size)}x{int(size)} input, so frames that fit are padded to it; this "
            "model was chosen running frames at their own size (fit native) and may score lower near the padding: "
            "a runtime that takes any input size (--backend openvino or onnxruntime) runs it as validated")
        self.backend = backend
        self.cfg = cfg
        self.size = int(size)
        self.codec = codec
        self.mode = mode
        # >= 32 px of overlap (a target and its blur fit in it), but never more than half a tile
        self.tiles = TileConfig(self.size, min(max(32, int(overlap)), self.size // 2), float(merge_px))

    def _build_codec(self, conf: float | None, size: int):
        cfg = dict(self.meta.codec, input_size=int(size))
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
        if self.mode in ("resize", "native"):
            return False
        return hw[0] > self.size or hw[1] > self.size  # 'auto' and 'static'

    # 'static': what a fixed-input runtime does with any backend (frames that fit are padded to S,
    # larger ones tiled): the reference a torch model is compared against for ONNX/LiteRT/TensorRT.

    def predict(self, frame: np.ndarray | str | Path, name: str | None = None,
                thr: float | None = None) -> tuple[Points, dict]:
        """Detect targets in one frame.

        Args:
            frame: H×W / H×W×3 RGB array (uint8, uint16 or finite float) or an image path.
            name: what a FrameError calls the frame.
            thr: decode threshold for this frame (None: the codec's); lower keeps candidates for a
                PR sweep, `Points.filter(codec.thr)` then gives the operating point's points.
        Returns:
            (Points in original image px, {'read', 'preprocess', 'infer', 'decode'} in ms).
        Raises:
            FrameError: corrupt / empty / NaN / wrongly shaped frame.
        """
        t0 = time.perf_counter()
        img = read_frame(frame, name)
        timings = {"read": _ms(t0), "preprocess": 0.0, "infer": 0.0, "decode": 0.0}
        if self.raw16 is not None and img.dtype != np.uint8:  # the camera's own 8-bit view (edge.inference.preprocess)
            from edge.inference.preprocess import raw_to_8bit

            t = time.perf_counter()
            img = raw_to_8bit(img, *self.raw16)
            timings["preprocess"] += _ms(t)
        if self.uses_tiles(img.shape[:2]):
            pts = self._predict_tiled(img, timings, thr)
        else:
            pts = self._run_one(img, timings, thr)
        return pts, timings

    def warmup(self, n: int = 2) -> None:
        """Run the backend `n` times on a zero input so first-frame costs stay out of the latencies."""
        x = np.zeros(self.backend.input_shape, np.float32)
        for _ in range(max(0, int(n))):
            self.backend.infer(x)

    def __call__(self, frame, name: str | None = None, thr: float | None = None) -> Points:
        """`predict` without the timings: Points in image px (the Python API's one call)."""
        return self.predict(frame, name, thr)[0]

    def _run_one(self, img: np.ndarray, timings: dict, thr: float | None = None) -> Points:
        """preprocess -> infer -> decode on a whole frame (pad or letterbox as the sidecar says,
        or pad to 32 px at native resolution in mode 'native')."""
        t = time.perf_counter()
        native = self.mode == "native" or self.fits_native
        x, lb = preprocess_native(img, self.cfg) if native else preprocess(img, self.cfg)
        timings["preprocess"] += _ms(t)
        return self._infer_decode(x, lb, timings, thr)

    def _infer_decode(self, x: np.ndarray, lb, timings: dict, thr: float | None = None) -> Points:
        t = time.perf_counter()
        heat = self.backend.infer(x[None])
        timings["infer"] += _ms(t)
        t = time.perf_counter()
        pts = self.codec.decode(heat, lb, thr)
        timings["decode"] += _ms(t)
        return pts

    def _predict_tiled(self, img: np.ndarray, timings: dict, thr: float | None = None) -> Points:
        """Native-resolution S×S tiles; each keeps the peaks in its core; near-duplicates merged.

        Gain (8-bit scaling / percentile AGC) and channel conversion run once on the whole frame,
        so every tile sees the same gain; each tile is then only zero-padded (never scaled) and
        normalised with the same edge.inference.preprocess functions the whole-frame path uses.
        """
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
            pts = self._infer_decode(x, lb, timings, thr)
            if len(pts):
                pts = Points.trusted(pts.xy + np.array([tile.x, tile.y], np.float32), pts.scores)
                parts.append(pts[tile.owns(pts.xy)])
        t = time.perf_counter()
        merged = Points.concat(parts)
        merged = merged[merge_peaks(merged.xy, merged.scores, self.tiles.merge_px)]
        merged = merged[global_filter(merged.scores, getattr(self.codec, "top_k", None), self._frame_vr())]
        timings["decode"] += _ms(t)
        return merged

    def _frame_vr(self) -> float | None:
        """The codec's relative-to-best rule, re-applied across tiles when the codec applies it."""
        return getattr(self.codec, "vr", None) if getattr(self.codec, "faithful", False) else None

    def __repr__(self) -> str:
        return f"Predictor({self.model_path}, backend={self.backend.name}, mode={self.mode}, S={self.size})"
