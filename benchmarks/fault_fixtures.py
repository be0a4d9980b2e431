"""The broken, hostile and huge inputs `benchmarks.faults` feeds the package, each built once per run.

Why a module of its own: the catalogue (`benchmarks.fault_cases`) should read as a list of cases,
not as file-writing code. Every fixture here is a name -> a builder that writes it under the run's
work folder and returns its path; `Fixtures[name]` builds it on first use and caches it, so a
`--quick` run builds only what its cases name.

What they are: copies of the built-in demo clip (edge.demo) with edited label files, copies of a
committed ONNX artifact with edited sidecars, joined MPEG-1 files whose header counts a third of
their frames, and PNGs of 60000 x 60000 / 30000 x 30000 pixels written as a valid 3.5 MB / 0.9 MB
file without ever holding the pixels (one deflate block of zeros, repeated; see `huge_png`).
"""
from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "edge" / "demo"
EXPORTS = REPO / "weights" / "shipped" / "export"
ONNX32 = EXPORTS / "spire_s_512_fp32_onnx"
SPIRE_N8 = REPO / "weights" / "spire-n" / "export" / "spire_n_512_int8_onnx"
OV8 = EXPORTS / "spire_s_512_int8_openvino_model"


# ------------------------------------------------------------------ writers
def _chunk(f, typ: bytes, data: bytes) -> None:
    f.write(struct.pack(">I", len(data)) + typ + data + struct.pack(">I", zlib.crc32(typ + data) & 0xFFFFFFFF))


def huge_png(path: Path, w: int, h: int, rows_per_block: int = 1000) -> Path:
    """A valid all-black grey PNG of w x h written in seconds: every row is zeros (filter byte 0 + w
    zeros), so one raw-deflate block of `rows_per_block` rows, ended by a full flush (no reference
    across it), is repeated; the zlib trailer's adler32 of n zero bytes is (n mod 65521) << 16 | 1."""
    assert h % rows_per_block == 0
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = co.compress(b"\x00" * ((w + 1) * rows_per_block)) + co.flush(zlib.Z_FULL_FLUSH)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # a final empty block
    n = (w + 1) * h
    stream = b"\x78\xda" + block * (h // rows_per_block) + tail + struct.pack(">I", ((n % 65521) << 16) | 1)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        _chunk(f, b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
        for k in range(0, len(stream), 1 << 20):
            _chunk(f, b"IDAT", stream[k:k + (1 << 20)])
        _chunk(f, b"IEND", b"")
    return path


def _clip(dst: Path, rows: list[str] | None = None, extra: list[str] | None = None, bom: bool = False) -> Path:
    """A copy of the demo clip folder; `rows` replace the first label rows, `extra` are appended."""
    shutil.copytree(DEMO / "videos", dst / "videos")
    (dst / "labels").mkdir()
    lines = (DEMO / "labels" / "IR_DRONE_154.csv").read_text().splitlines()
    if rows:
        lines = [lines[0], *rows, *lines[1 + len(rows):]]
    text = "\n".join([*lines, *(extra or [])]) + "\n"
    (dst / "labels" / "IR_DRONE_154.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return dst


def _artifact(dst: Path, edit: Callable[[dict], None] | None = None, src: Path = ONNX32) -> Path:
    """A copy of a committed artifact folder whose metadata.json went through `edit`."""
    shutil.copytree(src, dst)
    if edit is not None:
        side = dst / "metadata.json"
        d = json.loads(side.read_text())
        edit(d)
        side.write_text(json.dumps(d, indent=2))
    return dst


def noise_video(path: Path, fourcc: str, fps: float, frames: int) -> Path:
    """A 96x64 clip of seeded noise frames: the raw material of the broken-video faults."""
    import cv2

    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (96, 64))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        vw.write(cv2.cvtColor(rng.integers(0, 255, (64, 96), dtype=np.uint8), cv2.COLOR_GRAY2BGR))
    vw.release()
    return path


def _joined_mpeg(dst: Path) -> Path:
    """Three 20-frame MPEG-1 program streams joined: the header says 20 frames, the file holds 60."""

    dst.mkdir()
    one = noise_video(dst / "one.mpg", "PIM1", 25.0, 20)
    joined = dst / "joined.mpg"
    joined.write_bytes(one.read_bytes() * 3)
    one.unlink()
    return joined


def _frames_dir(dst: Path, big: tuple[int, int] | None = None) -> Path:
    """Four 96 x 64 PNG frames (+ one huge black PNG named to sort between them)."""
    import cv2

    dst.mkdir()
    rng = np.random.default_rng(1)
    for i in (0, 1, 3, 4):
        cv2.imwrite(str(dst / f"f{i}.png"), rng.integers(0, 255, (64, 96), dtype=np.uint8))
    if big:
        huge_png(dst / "f2.png", *big)
    return dst


def _nuaa_pair(dst: Path) -> Path:
    """Two NUAA-layout roots whose 4 frames each have the same names and different pixels."""
    import cv2

    rng = np.random.default_rng(2)
    for root in ("a", "b"):
        (dst / root / "images").mkdir(parents=True)
        (dst / root / "masks").mkdir()
        for i in range(4):
            img = rng.integers(0, 60, (64, 64), dtype=np.uint8)
            mask = np.zeros((64, 64), np.uint8)
            img[30:33, 20 + 4 * i:23 + 4 * i] = 250
            mask[30:33, 20 + 4 * i:23 + 4 * i] = 255
            cv2.imwrite(str(dst / root / "images" / f"frame_{i:04d}.png"), img)
            cv2.imwrite(str(dst / root / "masks" / f"frame_{i:04d}_pixels0.png"), mask)
        (dst / root / "train.txt").write_text("".join(f"frame_{i:04d}\n" for i in range(4)))
    return dst


def black_calibration(dst: Path) -> Path:
    """A NUAA-layout root of 8 all-black frames: calibration data PTQ must refuse."""
    import cv2

    (dst / "images").mkdir(parents=True)
    (dst / "masks").mkdir()
    for i in range(8):
        cv2.imwrite(str(dst / "images" / f"b{i}.png"), np.zeros((64, 64), np.uint8))
        cv2.imwrite(str(dst / "masks" / f"b{i}_pixels0.png"), np.zeros((64, 64), np.uint8))
    (dst / "train.txt").write_text("".join(f"b{i}\n" for i in range(8)))
    return dst


def _used_export(dst: Path) -> Path:
    """An export --out parent whose spire_s_512_fp32_onnx folder holds the user's own notes."""
    art = _artifact(dst / ONNX32.name)
    (art / "my_notes.txt").write_text("measured on the board, do not lose\n")
    return dst


def _file(dst: Path, data: bytes = b"a file, not a folder\n") -> Path:
    dst.write_bytes(data)
    return dst


def _ov_damaged(dst: Path, missing: bool) -> Path:
    art = _artifact(dst, src=OV8)
    b = next(art.glob("*.bin"))
    b.unlink() if missing else b.write_bytes(b.read_bytes()[:1000])
    return art


def _truncated_avi(dst: Path) -> Path:
    """A 30-frame MJPG AVI cut in half (round 1: it must stop with its reason printed)."""

    dst.mkdir()
    path = noise_video(dst / "clip.avi", "MJPG", 10.0, 30)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def _demo_frame(dst: Path, sixteen: bool) -> Path:
    """The demo clip's first frame as an 8-bit PNG, or as 16 bits (v * 64 + 1000), in a folder of its own."""
    import cv2

    from edge.datasets.video import decode_frames

    v = decode_frames(DEMO / "videos" / "IR_DRONE_154.mp4", {0})[0]
    dst.mkdir()
    cv2.imwrite(str(dst / "frame0.png"), v.astype(np.uint16) * 64 + 1000 if sixteen else v)
    return dst


def _read_only_export(dst: Path) -> Path:
    dst.mkdir()
    _artifact(dst / ONNX32.name)
    for p in (dst / ONNX32.name, dst):
        p.chmod(0o555)
    return dst


def _sidecar(**codec_or_pre) -> Callable[[Path], Path]:
    """Builder of an ONNX artifact copy with one sidecar value set ('codec.thr', 'norm.std', ...)."""
    (key, value), = codec_or_pre.items()

    def edit(d: dict) -> None:
        part, _, name = key.partition("__")
        where = {"codec": d["codec"], "pre": d["preprocess"], "norm": d["preprocess"]["norm"], "extra": d["extra"]}[part]
        where.update(value if isinstance(value, dict) else {name: value})

    return lambda dst: _artifact(dst, edit)


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "clip": lambda d: _clip(d),
    "clip_nan": lambda d: _clip(d, ["0,nan,143.5,8,8,drone"]),
    "clip_inf": lambda d: _clip(d, ["0,inf,143.5,8,8,drone"]),
    "clip_bom": lambda d: _clip(d, bom=True),
    "clip_off": lambda d: _clip(d, ["0,-40,143.5,8,8,drone", "1,9999,143.5,8,8,drone"],
                                ["5000,10,10,8,8,drone", "5001,10,10,8,8,drone"]),
    "empty_mp4": lambda d: _file(d.with_suffix(".mp4"), b""),
    "text_mp4": lambda d: _file(d.with_suffix(".mp4"), b"not a video\n" * 20),
    "joined_mpeg": _joined_mpeg,
    "frames_60k": lambda d: _frames_dir(d, (60000, 60000)),
    "frames_30k": lambda d: _frames_dir(d, (30000, 30000)),
    "afile": _file,
    "board_nosuch": lambda d: _file(d.with_suffix(".json"), json.dumps({"backend": "nosuch"}).encode()),
    "nuaa_pair": _nuaa_pair,
    "black_calib": black_calibration,
    "used_export": _used_export,
    "ov_missing_bin": lambda d: _ov_damaged(d, True),
    "ov_truncated_bin": lambda d: _ov_damaged(d, False),
    "art_weights_file": _sidecar(extra__={"weights_file": "/etc/passwd", "weights_sha256": "0" * 64}),
    "art_thr0": _sidecar(codec__thr=0), "art_thr_neg": _sidecar(codec__thr=-1), "art_thr7": _sidecar(codec__thr=7),
    "art_thr_abc": _sidecar(codec__thr="abc"), "art_thr_null": _sidecar(codec__thr=None),
    "art_topk0": _sidecar(codec__top_k=0), "art_std0": _sidecar(norm__std=[0]),
    "art_mode": _sidecar(norm__mode="nosuch"), "art_fit": _sidecar(pre__fit="stretch"),
    "art_letterbox": _sidecar(pre__letterbox="left"), "art_pct": _sidecar(norm__={"low_pct": 99.0, "high_pct": 1.0}),
    "truncated_avi": _truncated_avi, "frame8": lambda d: _demo_frame(d, False),
    "frame16": lambda d: _demo_frame(d, True), "ro_export": _read_only_export,
    "spire_s32": lambda d: _artifact(d), "spire_n8": lambda d: _artifact(d, src=SPIRE_N8),
}


class Fixtures:
    """name -> path, built on first use under `root` (each in its own sub-path)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._built: dict[str, Path] = {}

    def __getitem__(self, name: str) -> Path:
        if name not in self._built:
            self._built[name] = BUILDERS[name](self.root / name)
        return self._built[name]
