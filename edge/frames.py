"""Frame reading: every image file or array enters the package through `read_frame`.

One gate for all inputs (training, calibration, the device runtime) means one set of checks and
one set of error messages: a corrupt PNG, an empty file or a NaN array fails here, in one line
that names the file and the fix, instead of deep inside a resize or a network.

Output: H×W (grey) or H×W×3 **RGB**; uint8 and uint16 are kept as they are (raw 14-in-16-bit
radiometric frames stay 16-bit so the percentile AGC in `edge.inference.preprocess` sees every level);
float arrays are returned as float32 when finite.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.errors import FrameError

# What cv2.imdecode reads and what raw IR frames come as; anything else is still tried.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# Frames above this many pixels are refused from the file header, before decoding: a 60000x60000
# PNG is a 3.5 MB file but 10.8 GB decoded (OpenCV raised, ending the run), a 30000x30000 one took
# 209 s and 3.85 GB. 100 MP is twice the largest sensor frame the runtime tiles comfortably (an
# 8000x6000 frame runs in 338 MB). One limit per process: `edge.run --max-pixels` sets it, since
# dataset readers call `read_frame` deep inside; 0 or None turns it off.
MAX_PIXELS: int | None = 100_000_000


def _fail(name: str, reason: str, fix: str) -> FrameError:
    return FrameError(f"{name}: {reason}; {fix}")


def _read_file(path: Path, name: str) -> np.ndarray:
    if not path.exists():
        raise _fail(name, "no such file", "check the path")
    if path.is_dir():
        raise _fail(name, "is a folder, not an image", "pass an image file")
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # fromfile+imdecode: non-ASCII paths work
    except OSError as e:
        raise _fail(name, f"cannot be read ({e.strerror or e})", "check the file permissions") from None
    if data.size == 0:
        raise _fail(name, "empty file (0 bytes)", "re-copy or re-export the image")
    _check_size(header_size(data[:65536].tobytes()), name)
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as e:  # OpenCV's own limits (OPENCV_IO_MAX_IMAGE_PIXELS), a decoder's allocation
        raise _fail(name, f"OpenCV cannot decode it ({str(e).strip().splitlines()[-1][:120]})",
                    "re-export it smaller, or as PNG, JPG, BMP or TIFF") from None
    if img is None:
        raise _fail(
            name, "not a readable image (corrupt or unsupported format)",
            "re-export it as PNG, JPG, BMP or TIFF",
        )
    if img.ndim == 3 and img.shape[2] in (3, 4):  # OpenCV decodes colour as BGR(A)
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return img


def _check_size(wh: tuple[int, int] | None, name: str) -> None:
    limit = MAX_PIXELS
    if wh is None or not limit or wh[0] * wh[1] <= limit:
        return
    raise _fail(name, f"{wh[0]}x{wh[1]} = {wh[0] * wh[1] / 1e6:.0f} MP, above the {limit / 1e6:g} MP limit "
                "(not decoded)", "crop or downscale it, or raise edge.run --max-pixels")


def header_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, BMP or TIFF header without decoding; None when unknown."""
    import struct

    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if head[:2] == b"BM" and len(head) >= 26:
        w, h = struct.unpack("<ii", head[18:26])
        return abs(w), abs(h)
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(head, struct)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_size(head, struct)
    return None


def _jpeg_size(head: bytes, struct) -> tuple[int, int] | None:
    """The first SOFn segment's size (markers C0-CF except C4 DHT, C8 JPG, CC DAC)."""
    i = 2
    while i + 9 <= len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        seg = struct.unpack(">H", head[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", head[i + 5:i + 9])
            return w, h
        i += 2 + seg
    return None


def _tiff_size(head: bytes, struct) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first IFD."""
    e = "<" if head[:2] == b"II" else ">"
    off = struct.unpack(e + "I", head[4:8])[0]
    if off + 2 > len(head):
        return None
    n, got = struct.unpack(e + "H", head[off:off + 2])[0], {}
    for k in range(n):
        p = off + 2 + 12 * k
        if p + 12 > len(head):
            break
        tag, typ = struct.unpack(e + "HH", head[p:p + 4])
        if tag in (256, 257):
            got[tag] = struct.unpack(e + ("H" if typ == 3 else "I"), head[p + 8:p + (10 if typ == 3 else 12)])[0]
    return (got[256], got[257]) if len(got) == 2 else None


def _check_array(img: np.ndarray, name: str, from_array: bool) -> np.ndarray:
    if img.size == 0:
        raise _fail(name, f"zero-size frame (shape {img.shape})", "pass a frame with at least one pixel")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]  # arrays are taken as RGB(A): drop alpha
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise _fail(name, f"wrong shape {img.shape}", "pass H×W grey or H×W×3 RGB")
    if img.dtype == np.uint8 or img.dtype == np.uint16:
        return img
    if img.dtype.kind == "f":
        img = img.astype(np.float32, copy=False)
        if not np.isfinite(img).all():
            raise _fail(name, "contains NaN or Inf values", "replace invalid pixels before passing the frame")
        return img
    if img.dtype.kind in "iu" and not from_array:
        # e.g. a signed 16-bit TIFF: keep the values, as float32, for the AGC
        return img.astype(np.float32)
    raise _fail(name, f"unsupported dtype {img.dtype}", "convert it to uint8, uint16 or float32")


def read_frame(src: str | Path | np.ndarray, name: str | None = None) -> np.ndarray:
    """Read (or check) one frame.

    Args:
        src: an image path (PNG/JPG/BMP 8-bit grey or colour, PNG/TIFF 16-bit) or an array
            (H×W, H×W×1, H×W×3 RGB, H×W×4 RGBA) of dtype uint8, uint16 or float.
        name: what error messages call the frame (default: the path, or '<array>').

    Returns:
        H×W or H×W×3 RGB array, uint8 / uint16 kept, floats as float32.

    Raises:
        FrameError: one line '<name>: <reason>; <fix>' for a missing, empty, corrupt,
            zero-size, NaN/Inf or wrongly shaped frame.
    """
    if isinstance(src, np.ndarray):
        return _check_array(src, name or "<array>", from_array=True)
    if isinstance(src, (str, Path)):
        path = Path(src)
        name = name or str(path)
        return _check_array(_read_file(path, name), name, from_array=False)
    raise _fail(name or "<frame>", f"unsupported input type {type(src).__name__}", "pass a path or a numpy array")
