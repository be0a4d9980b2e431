"""The ONE preprocessing used by training, calibration and the device runtime.

frame (any bit depth) -> 0..255 float -> letterbox to S×S -> normalise -> (C, S, S) float32,
plus the `Letterbox` that maps points both ways. Training, INT8 calibration and inference all
call these functions, so a model never sees at deployment an input it was not trained on, and
decoded points land on the original frame's pixels exactly.

Two letterbox conventions:
- 'center' (default): cv2.resize with its half-pixel convention, integer centred pads, so
  forward(x) = (x + 0.5)·sx − 0.5 + pad_x with the exact per-axis scale (new_w/w, new_h/h).
  Shrinking uses INTER_AREA (same half-pixel geometry as INTER_LINEAR, but it averages every
  source pixel instead of skipping some, so 2-pixel targets survive a 3× downscale);
  enlarging uses INTER_LINEAR.
- 'faithful': SPIRE's official 3-point affine (index w−1 -> S'−1, warpAffine, float pads),
  needed to reproduce the official weights' outputs bit for bit (method.md §1).

Bit depth, the exact rule (`to_255`): an 8-bit frame is used as it is (0..255 is what the models
were trained on); a 16-bit or float frame has no fixed 0..255 scale and goes through the
percentile AGC (its p0.5..p99.5 stretched to 0..255), which ignores the sensor's gain and offset
(raw·a + b, a > 0, gives the points of raw). A 16-bit frame therefore gives the points of the
8-bit frame `percentile_agc(v)` (its contrast stretched), not of v itself: on sirst-v2/val
spire-n scores F1 0.679 on the 8-bit frames and 0.572 on the same frames as 64·v + 1000
(hrpe_lite: 0.880 and 0.833).
A camera whose 8-bit output is a fixed linear map of its raw output, v = (raw − offset) / scale,
gives the same points at both bit depths once that map is given (`raw_to_8bit`; `edge.run
--raw16 SCALE OFFSET`, `Predictor(raw16=(scale, offset))`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable

import cv2
import numpy as np

from edge.frames import read_frame

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORM_MODES = ("imagenet-rgb", "mean-std", "percentile-agc")
_GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # cv2 RGB2GRAY weights


@dataclass(frozen=True)
class Normalization:
    """How 0..255 pixels become network inputs: (x/255 − mean) / std per channel.

    mode:
      'imagenet-rgb'   faithful SPIRE: 3 channels, ImageNet mean/std (the defaults).
      'mean-std'       per-dataset statistics (see `compute_stats`), usually one channel.
      'percentile-agc' every frame, 8-bit too, is stretched from its low_pct..high_pct
                       percentiles to 0..255 first (automatic gain control), then mean/std.
    16-bit and float frames always get the percentile AGC (they have no fixed 0..255 scale).
    mean/std hold 1 value (broadcast) or one per channel, in units of [0, 1] pixels.
    """

    mode: str = "imagenet-rgb"
    mean: tuple = ()
    std: tuple = ()
    low_pct: float = 0.5
    high_pct: float = 99.5

    def __post_init__(self) -> None:
        if self.mode not in NORM_MODES:
            raise ValueError(f"Normalization.mode must be one of {NORM_MODES}, got {self.mode!r}")
        mean, std = tuple(float(v) for v in self.mean), tuple(float(v) for v in self.std)
        if self.mode == "imagenet-rgb" and not mean and not std:
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        if self.mode == "percentile-agc" and not mean and not std:
            mean, std = (0.0,), (1.0,)  # AGC output already spans 0..1
        if not mean or len(mean) != len(std):
            raise ValueError(f"Normalization({self.mode!r}) needs mean and std of equal length (1 or C)")
        if min(std) <= 0:
            raise ValueError(f"Normalization std must be > 0, got {std}")
        if not 0 <= self.low_pct < self.high_pct <= 100:
            raise ValueError(f"need 0 <= low_pct < high_pct <= 100, got {self.low_pct}, {self.high_pct}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        return cls(d["mode"], tuple(d.get("mean", ())), tuple(d.get("std", ())),
                   float(d.get("low_pct", 0.5)), float(d.get("high_pct", 99.5)))


LETTERBOXES = ("center", "faithful")  # PreprocessConfig.letterbox
FITS = ("native", "pad")  # PreprocessConfig.fit: how a frame smaller than the input is run


@dataclass(frozen=True)
class PreprocessConfig:
    """Network input geometry and normalisation; stored in every sidecar (`to_dict`)."""

    imgsz: int = 512
    channels: int = 3
    norm: Normalization = field(default_factory=Normalization)
    letterbox: str = "center"
    scale_up: bool = True
    # How a frame smaller than the input reaches a runtime that takes any size (OpenVINO, onnxruntime
    # with a free H x W, torch): "native" at its own size padded to 32 px, "pad" padded to the input
    # size as a fixed-input runtime does. A model with whole-frame context (an SE gate) scores the
    # two differently, so it is the model's own, chosen on validation (`quantize.pick --fit`).
    fit: str = "native"

    def __post_init__(self) -> None:
        if self.imgsz <= 0 or self.imgsz % 32:
            raise ValueError(f"imgsz must be a positive multiple of 32, got {self.imgsz}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.letterbox not in LETTERBOXES:
            raise ValueError(f"letterbox must be 'center' or 'faithful', got {self.letterbox!r}")
        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {FITS}, got {self.fit!r}")
        if len(self.norm.mean) not in (1, self.channels):
            raise ValueError(f"{self.norm.mode} has {len(self.norm.mean)} mean values for {self.channels} channel(s)")

    def to_dict(self) -> dict:
        return {"imgsz": self.imgsz, "channels": self.channels, "norm": self.norm.to_dict(),
                "letterbox": self.letterbox, "scale_up": self.scale_up, "fit": self.fit}

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessConfig":
        return cls(int(d["imgsz"]), int(d["channels"]), Normalization.from_dict(d["norm"]),
                   d.get("letterbox", "center"), bool(d.get("scale_up", True)), d.get("fit", "native"))


@dataclass(frozen=True)
class Letterbox:
    """Axis-aligned affine between image pixels and network-input pixels: x' = sx·x + tx.

    `src_hw` frame size, `dst_hw` input size; `faithful` marks SPIRE's official geometry (its
    `apply` is warpAffine; its decode keeps exact zeros, see the codecs).
    """

    src_hw: tuple
    dst_hw: tuple
    sx: float
    sy: float
    tx: float
    ty: float
    faithful: bool = False

    @classmethod
    def fit(cls, src_hw: tuple, imgsz: int, mode: str = "center", scale_up: bool = True) -> "Letterbox":
        """The letterbox taking an h×w frame to imgsz×imgsz."""
        h, w = int(src_hw[0]), int(src_hw[1])
        S = int(imgsz)
        if mode == "faithful":  # method.md §1: official AffineTransform, scale=(1, 1)
            r = min(S / h, S / w)
            pad_h, pad_w = (S - h * r) / 2, (S - w * r) / 2
            src = np.array([[0, 0], [w - 1, 0], [0, h - 1]], np.float32)
            dst = np.array([[pad_w, pad_h], [S - pad_w - 1, pad_h], [pad_w, S - pad_h - 1]], np.float32)
            M = cv2.getAffineTransform(src, dst)
            return cls((h, w), (S, S), float(M[0, 0]), float(M[1, 1]), float(M[0, 2]), float(M[1, 2]), True)
        s = min(S / h, S / w)
        if not scale_up:
            s = min(1.0, s)
        nw, nh = max(1, min(S, round(w * s))), max(1, min(S, round(h * s)))
        px, py = (S - nw) // 2, (S - nh) // 2
        sx, sy = nw / w, nh / h
        return cls((h, w), (S, S), sx, sy, 0.5 * sx - 0.5 + px, 0.5 * sy - 0.5 + py, False)

    @property
    def matrix(self) -> np.ndarray:
        """2×3 forward affine (image px -> input px)."""
        return np.array([[self.sx, 0.0, self.tx], [0.0, self.sy, self.ty]], np.float64)

    @property
    def resized_hw(self) -> tuple:
        """Size of the resized frame inside the padded square ('center')."""
        return round(self.src_hw[0] * self.sy), round(self.src_hw[1] * self.sx)

    @property
    def pad_xy(self) -> tuple:
        """Integer left/top pads ('center')."""
        return round(self.tx - 0.5 * self.sx + 0.5), round(self.ty - 0.5 * self.sy + 0.5)

    def forward(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) image px -> input px (float32)."""
        p = np.asarray(points, np.float64).reshape(-1, 2)
        return (p * (self.sx, self.sy) + (self.tx, self.ty)).astype(np.float32)

    def inverse(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) input px -> image px (float32); the exact inverse of `forward`."""
        p = np.asarray(points, np.float64).reshape(-1, 2)
        return ((p - (self.tx, self.ty)) / (self.sx, self.sy)).astype(np.float32)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Letterbox an H×W or H×W×C image (dtype kept); padding is 0."""
        S_h, S_w = self.dst_hw
        if image.shape[:2] != tuple(self.src_hw):
            raise ValueError(f"Letterbox is for {self.src_hw} frames, got {image.shape[:2]}")
        if self.faithful:
            return cv2.warpAffine(image, self.matrix, (S_w, S_h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        nh, nw = self.resized_hw
        px, py = self.pad_xy
        shrink = nw < self.src_hw[1] or nh < self.src_hw[0]
        resized = image if (nh, nw) == image.shape[:2] else cv2.resize(
            image, (nw, nh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        out = np.zeros((S_h, S_w) + image.shape[2:], image.dtype)
        out[py:py + nh, px:px + nw] = resized.reshape((nh, nw) + image.shape[2:])
        return out


def percentile_agc(frame: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> np.ndarray:
    """Per-frame automatic gain control: low..high percentile -> 0..255 float32 (clipped)."""
    lo, hi = np.percentile(frame, (low_pct, high_pct))
    if not hi > lo:  # flat frame: keep it flat instead of dividing by zero
        return np.zeros(frame.shape, np.float32)
    out = (frame.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    return np.clip(out, 0, 255, out=out)


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """H×W or H×W×3 -> H×W×channels (grey replicated, RGB -> grey with cv2's weights)."""
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == channels:
        return img
    if channels == 3:
        return np.repeat(img, 3, axis=2)
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.dtype in (np.uint8, np.uint16, np.float32) \
        else img.astype(np.float32) @ _GREY_WEIGHTS
    return grey[:, :, None]


def raw_to_8bit(frame: np.ndarray, scale: float, offset: float = 0.0) -> np.ndarray:
    """A sensor's linear 8-bit view of its raw frame: round((raw − offset) / scale) clipped to 0..255, uint8.

    With the camera's own map (scale 64, offset 1000 for raw = 64·v + 1000) this is exactly the
    8-bit frame v the camera would have sent, so both bit depths give the same points.
    """
    v = (np.asarray(frame, np.float64) - float(offset)) / float(scale)
    return np.clip(np.rint(v), 0, 255).astype(np.uint8)


def to_255(frame: np.ndarray, norm: Normalization) -> np.ndarray:
    """Any frame to the 0..255 scale (uint8 kept as uint8 unless AGC applies)."""
    if frame.dtype == np.uint8 and norm.mode != "percentile-agc":
        return frame
    return percentile_agc(frame, norm.low_pct, norm.high_pct)


def letterbox(frame, cfg: PreprocessConfig) -> tuple[np.ndarray, Letterbox]:
    """Frame (path or array) -> (float32 S×S×C image on the 0..255 scale, its Letterbox)."""
    img = to_channels(to_255(read_frame(frame), cfg.norm), cfg.channels)
    lb = Letterbox.fit(img.shape[:2], cfg.imgsz, cfg.letterbox, cfg.scale_up)
    out = lb.apply(img)  # geometry on uint8 when the frame is 8-bit, as the official code does
    if out.ndim == 2:
        out = out[:, :, None]
    return out.astype(np.float32, copy=False), lb


def normalize(image_lb: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """S×S×C 0..255 image -> (C, S, S) float32 network input."""
    img = np.asarray(image_lb, np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    mean = np.asarray(cfg.norm.mean, np.float32) * 255.0
    inv = 1.0 / (np.asarray(cfg.norm.std, np.float32) * 255.0)
    x = (img - mean) * inv
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def preprocess(frame, cfg: PreprocessConfig) -> tuple[np.ndarray, Letterbox]:
    """Frame -> (x float32 (C, S, S), Letterbox) = normalize(letterbox(frame))."""
    img, lb = letterbox(frame, cfg)
    return normalize(img, cfg), lb


def native_letterbox(hw: tuple[int, int], multiple: int = 32) -> Letterbox:
    """Pad-only 'center' letterbox of an h×w frame to the next multiple of `multiple` per axis.

    The models are fully convolutional, so a whole frame can run at its native resolution (no
    resize, so no target is blurred away), as BasicIRSTD evaluates NUAA-SIRST.
    """
    h, w = int(hw[0]), int(hw[1])
    H, W = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    px, py = (W - w) // 2, (H - h) // 2
    return Letterbox((h, w), (H, W), 1.0, 1.0, float(px), float(py), False)


def preprocess_native(frame, cfg: PreprocessConfig, multiple: int = 32) -> tuple[np.ndarray, Letterbox]:
    """Whole frame at native resolution -> (x float32 (C, H', W') padded to `multiple`, Letterbox).

    The same gain, channels and normalisation as `preprocess`; only the geometry differs (the
    frame is padded, never scaled). Needs a backend that runs any input size (torch).
    """
    img = to_channels(to_255(read_frame(frame), cfg.norm), cfg.channels)
    lb = native_letterbox(img.shape[:2], multiple)
    return normalize(lb.apply(img).astype(np.float32, copy=False), cfg), lb


def compute_stats(frames: Iterable, channels: int = 1, low_pct: float = 0.5,
                  high_pct: float = 99.5, agc: bool = False) -> Normalization:
    """Per-dataset mean/std (on [0, 1] pixels, padding excluded) -> Normalization('mean-std').

    `frames` yields paths or arrays; they are brought to 0..255 exactly as `letterbox` does
    (AGC for 16-bit/float frames, for all frames when `agc`). Computed once, stored in the
    sidecar. Returns mode 'percentile-agc' when `agc`, else 'mean-std'.
    """
    from tqdm import tqdm

    probe = Normalization("percentile-agc" if agc else "mean-std", (0.0,), (1.0,), low_pct, high_pct)
    s1 = np.zeros(channels, np.float64)
    s2 = np.zeros(channels, np.float64)
    n = 0
    for f in tqdm(frames, desc="pixel statistics", unit="frame", leave=False):
        img = to_channels(to_255(read_frame(f), probe), channels).reshape(-1, channels).astype(np.float64) / 255.0
        s1 += img.sum(0)
        s2 += np.square(img).sum(0)
        n += len(img)
    if n == 0:
        raise ValueError("compute_stats got no frames")
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 1e-12))
    return Normalization(probe.mode, tuple(mean.round(6).tolist()), tuple(np.maximum(std, 1e-6).round(6).tolist()),
                         low_pct, high_pct)
