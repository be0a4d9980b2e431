"""Build hook: the wheel carries the default model's runtime artifacts, copied from weights/ at build time.

Why: a wheel holding only code cannot run `python -m edge.run` (no model), and a second copy of
the artifacts in the source tree would drift from weights/. So weights/ stays the one copy and
`build_py` copies into the built package `edge/_weights/`: ladder.json and, from the default
rung's export/ folder, its OpenVINO and ONNX artifacts at INT8 and FP32 (about 1.6 MB) plus
defaults.json restricted to them. edge.model.zoo finds them through importlib.resources when there is
no checkout. Left out (named by edge.model.zoo.not_in_wheel when asked for): the other rungs, the
torch checkpoints and the TFLite / TensorRT artifacts. Metadata lives in setup.cfg.
"""
import json
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
WHEEL_FORMATS = ("openvino", "onnx")
WHEEL_PRECISIONS = ("int8", "fp32")
PACKAGE_WEIGHTS = ("edge", "_weights")  # edge.model.zoo.PACKAGE_WEIGHTS


def copy_default_model(weights: Path, dst: Path) -> list[str]:
    """ladder.json + the default rung's OpenVINO/ONNX INT8/FP32 artifact folders into `dst`; their names."""
    ladder = json.loads((weights / "ladder.json").read_text())
    rung = ladder["models"][ladder["default"]]
    src_export, dst_export = weights / rung / "export", dst / rung / "export"
    if dst.exists():
        shutil.rmtree(dst)
    dst_export.mkdir(parents=True)
    shutil.copy2(weights / "ladder.json", dst / "ladder.json")
    kept = []
    for side in sorted(src_export.glob("*/metadata.json")):
        meta = json.loads(side.read_text())
        if meta.get("format") in WHEEL_FORMATS and meta.get("precision") in WHEEL_PRECISIONS:
            shutil.copytree(side.parent, dst_export / side.parent.name)
            kept.append(side.parent.name)
    if not kept:
        raise SystemExit(f"{src_export}: no OpenVINO/ONNX artifacts to put in the wheel; run python -m quantize.release first")
    defaults = src_export / "defaults.json"
    if defaults.is_file():
        chosen = {k: v for k, v in json.loads(defaults.read_text()).items() if v in kept}
        (dst_export / "defaults.json").write_text(json.dumps(chosen, indent=2) + "\n")
    return kept


PACKAGE_BOARDS = ("edge", "_boards")  # edge.device.boards.PACKAGE_BOARDS


def copy_board_profiles(boards: Path, dst: Path) -> list[str]:
    """Every boards/<name>/profile.json into the built package, so `--board NAME` works from a wheel."""
    names = []
    for prof in sorted(boards.glob("*/profile.json")):
        (dst / prof.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(prof, dst / prof.parent.name / "profile.json")
        names.append(prof.parent.name)
    return names


class BuildPyWithModel(build_py):
    """build_py, then the default model's artifacts into `edge/_weights` and the board profiles into `edge/_boards`."""

    def run(self):
        super().run()
        if not self.dry_run:
            kept = copy_default_model(ROOT / "weights", Path(self.build_lib, *PACKAGE_WEIGHTS))
            print(f"package data: {', '.join(kept)} -> {'/'.join(PACKAGE_WEIGHTS)}")
            boards = copy_board_profiles(ROOT / "boards", Path(self.build_lib, *PACKAGE_BOARDS))
            print(f"package data: board profiles {', '.join(boards)} -> {'/'.join(PACKAGE_BOARDS)}")


setup(cmdclass={"build_py": BuildPyWithModel})
