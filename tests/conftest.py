"""Shared test helpers: a numpy fake backend, fixture sidecars that pass validation, ../shared paths.

Why: the runtime's tests (edge.run, the Predictor, tiling) must stand on their own, as `edge`
does: a numpy "model" registered as one more row of the target table (`edge.model.targets`) runs
through the real sidecar -> backend -> Predictor path without torch, ONNX or any runtime, and
test modules take their helpers from here instead of importing each other. The shared data and
weights live in `../shared` beside the checkout (or `$SPIRE_EDGE_SHARED`); a test that needs
them is skipped with the path it looked for.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.backends.base import Backend
from edge.model.targets import TARGETS, Target

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPIRE_EDGE_SHARED") or REPO.parent / "shared").resolve()
IMGSZ = 64


def shared(*parts: str) -> Path:
    """A path under the shared data/weights folder (it may not exist)."""
    return SHARED.joinpath(*parts)


def needs_shared(*parts: str):
    """skipif mark for a test that needs `shared(*parts)`, naming the path and where it should be."""
    p = shared(*parts)
    return pytest.mark.skipif(not p.exists(), reason=f"{p} not found: the shared data and weights belong in "
                              f"../shared beside the checkout ({REPO.parent}), or set SPIRE_EDGE_SHARED")


# ------------------------------------------------------------------ the numpy fake backend
def dog_kernel() -> np.ndarray:
    """24×24 difference of Gaussians (σ 2 and 6), ×9: a 3×3 bright spot peaks at ~1."""
    r = np.arange(24) - 11.5  # k=24, pad=10, stride 4: output cell c is centred on input px 4c+1.5

    def g(s):
        e = np.exp(-(r[:, None] ** 2 + r[None] ** 2) / (2 * s * s))
        return e / e.sum()

    return ((g(2.0) - g(6.0)) * 9.0).astype(np.float32)


def dog_response(x: np.ndarray, kernel: np.ndarray | None = None) -> np.ndarray:
    """(1, C, S, S) ImageNet-normalised input -> (1, 1, S/4, S/4): conv(stride 4, pad 10) of channel 0."""
    k = dog_kernel() if kernel is None else kernel
    img = np.asarray(x, np.float32)[0, 0] * 0.229 + 0.485
    pad = np.pad(img, 10)
    full = cv2.filter2D(pad, cv2.CV_32F, k, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    s = img.shape[0]
    return full[0:s - 3:4, 0:s - 3:4][None, None].astype(np.float32)


def tiny_module():
    """The same DoG as a torch module (for tests that put a torch model in the Predictor or export one)."""
    import torch
    import torch.nn.functional as F

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("w", torch.tensor(dog_kernel())[None, None])

        def forward(self, x):
            return F.conv2d(x[:, 0:1] * 0.229 + 0.485, self.w, stride=4, padding=10)

    return Tiny().eval()


class NumpyDoGBackend(Backend):
    """The fake runtime: its "model file" is the DoG kernel (.npy); inference is `dog_response`."""

    name = "numpy"

    def _load(self) -> None:
        self.kernel = np.load(self.model_file())

    def _infer(self, x: np.ndarray) -> np.ndarray:
        return dog_response(x, self.kernel)


FAKE_TARGET = Target("npy", "numpy", "tests.conftest:NumpyDoGBackend", "numpy", "dev", "_npy", ".npy",
                     precisions=(), bench_precisions=())


def register_fake_target() -> None:
    """Add the fake runtime to the target table (what adding a real one takes: one row + its backend)."""
    TARGETS[FAKE_TARGET.format] = FAKE_TARGET


# ------------------------------------------------------------------ fixture artifacts
def write_fixture_sidecar(folder: Path, fmt: str, model_file: str, imgsz: int = IMGSZ, precision: str = "fp32",
                          thr: float = 0.3, scale_up: bool = False, channels: int = 3) -> Path:
    """A metadata.json that passes validation: PRPS codec, ImageNet-RGB (3 ch) or mean-std (1 ch) input."""
    from edge.codecs import PRPSCodec
    from edge.inference.preprocess import Normalization, PreprocessConfig
    from edge.model.sidecar import ModelMeta, file_sha256, io_specs, write_sidecar

    inp, out = io_specs(imgsz, channels, 4, "images", "heatmap")
    norm = Normalization("imagenet-rgb") if channels == 3 else Normalization("mean-std", (0.4,), (0.2,))
    cfg = PreprocessConfig(imgsz, channels, norm, "center", scale_up)
    meta = ModelMeta(arch="tiny-dog", format=fmt, model_file=model_file, model_sha256=file_sha256(folder / model_file),
                     precision=precision, input=inp, output=out, preprocess=cfg.to_dict(),
                     codec=PRPSCodec(imgsz, thr=thr, vr=0.35, top_k=8).to_dict())
    return write_sidecar(folder, meta)


def fake_artifact(root: Path, imgsz: int = IMGSZ, **meta_kw) -> Path:
    """root/tiny_npy_<S>/: the DoG kernel as model.npy + its metadata.json (the fake target's artifact)."""
    register_fake_target()
    folder = Path(root) / f"tiny_npy_{imgsz}"
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "model.npy", dog_kernel())
    write_fixture_sidecar(folder, FAKE_TARGET.format, "model.npy", imgsz, **meta_kw)
    return folder


def spots(h: int, w: int, xy, seed: int = 0, level: int = 220) -> np.ndarray:
    """uint8 H×W frame: faint noise around 20 with 3×3 spots of `level` at `xy`."""
    rng = np.random.default_rng(seed)
    img = np.clip(20 + rng.normal(0, 1.0, (h, w)), 0, 255)
    for x, y in xy:
        img[y - 1:y + 2, x - 1:x + 2] = level
    return img.astype(np.uint8)


@pytest.fixture(scope="session")
def fake_model(tmp_path_factory) -> Path:
    """The fake target's 64 px artifact folder (numpy only: no torch, no runtime); its row leaves the
    target table when the session ends, so nothing after the tests sees a table they changed."""
    yield fake_artifact(tmp_path_factory.mktemp("fake_model"))
    TARGETS.pop(FAKE_TARGET.format, None)


def nuaa_subset(root: Path, names, lists: dict) -> Path:
    """A NUAA-layout root with `names` copied from ../shared/data/nuaa-sirst and the split lists given
    ({"train": names, ...}): the small real fixture the training, evaluation and INT8 tests share."""
    import shutil

    nuaa = shared("data", "nuaa-sirst")
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    for n in names:
        shutil.copy(nuaa / "images" / f"{n}.png", root / "images")
        shutil.copy(nuaa / "masks" / f"{n}_pixels0.png", root / "masks")
    for split, members in lists.items():
        (root / f"{split}.txt").write_text("\n".join(members) + "\n")
    return root

