"""The built-in demo clip: one real thermal video with a label per frame, shipped inside the package.

`IR_DRONE_154` is a 325-frame, 320×256, 30 fps thermal clip of a small drone (2–3 px, its box
8–9 px) against sky and cloud, every frame labelled with the box centre, from the infrared part
of Svanström, Alonso-Fernandez and Englund, "A dataset for multi-sensor drone detection", Data in
Brief 39 (2021), released under CC0 1.0 (see README.md and LICENSE beside this file). It is laid
out as a one-clip folder of the ir-drone layout (videos/, labels/), so every reader of that
layout (`edge.datasets.open_dataset`, `edge.run --source`, `benchmarks.run --data`) reads it as
it reads any labelled clip folder.

Found through importlib.resources, so it works the same from a checkout, an editable install
and a wheel; a zipped install is unpacked once into a temporary folder (OpenCV needs a file).
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path

__all__ = ["DEMO_CLIP", "DEMO_FPS", "DEMO_HW", "demo_root", "demo_video", "demo_labels", "demo_description"]

DEMO_CLIP = "IR_DRONE_154"
DEMO_FPS = 30.0
DEMO_HW = (256, 320)
_FILES = (f"videos/{DEMO_CLIP}.mp4", f"labels/{DEMO_CLIP}.csv")


@lru_cache(maxsize=1)
def demo_root() -> Path:
    """The folder holding videos/IR_DRONE_154.mp4 and labels/IR_DRONE_154.csv (ir-drone layout)."""
    from edge.errors import DatasetError

    here = resources.files(__name__)
    if isinstance(here, Path):  # installed as plain files (wheel, editable, checkout)
        root = here
    else:  # a zip / custom loader: copy the two files out once
        root = Path(tempfile.mkdtemp(prefix="spire_edge_demo_"))
        atexit.register(shutil.rmtree, root, True)
        for rel in _FILES:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(here.joinpath(rel).read_bytes())
    missing = [rel for rel in _FILES if not (root / rel).is_file()]
    if missing:
        raise DatasetError(f"{root}: the built-in demo clip is missing ({', '.join(missing)}); reinstall "
                           "spire-edge (pip install --force-reinstall spire-edge) or pass --source")
    return root


def demo_video() -> Path:
    return demo_root() / _FILES[0]


def demo_labels() -> Path:
    return demo_root() / _FILES[1]


def demo_description() -> str:
    return (f"{DEMO_CLIP}: built-in real thermal clip, 325 frames 320x256 at 30 fps, a 2-3 px drone against "
            "sky and cloud, every frame labelled (CC0 1.0; Svanstrom et al., Data in Brief 39, 2021)")
