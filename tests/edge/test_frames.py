"""read_frame: every supported input reads with the right dtype/channels, every bad one fails in
one line that names the file."""
import cv2
import numpy as np
import pytest

from edge.errors import FrameError, SpireEdgeError
from edge.frames import read_frame


def _one_line_naming(err: pytest.ExceptionInfo, name: str):
    msg = str(err.value)
    assert "\n" not in msg and name in msg and ";" in msg, msg
    assert isinstance(err.value, SpireEdgeError) and isinstance(err.value, ValueError)


def test_grey_png_stays_2d_uint8(tmp_path):
    img = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    p = tmp_path / "grey.png"
    cv2.imwrite(str(p), img)
    out = read_frame(p)
    assert out.dtype == np.uint8 and out.shape == (12, 10)
    np.testing.assert_array_equal(out, img)


def test_colour_file_comes_back_rgb(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200  # pure red in RGB
    p = tmp_path / "red.bmp"
    cv2.imwrite(str(p), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = read_frame(str(p))
    assert out.shape == (4, 5, 3)
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_file_keeps_uint16(tmp_path, suffix):
    raw = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 27) % 16384  # 14 bits in 16
    p = tmp_path / f"raw{suffix}"
    assert cv2.imwrite(str(p), raw)
    out = read_frame(p)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, raw)


def test_arrays_are_checked_and_normalised():
    assert read_frame(np.zeros((3, 4, 1), np.uint8)).shape == (3, 4)
    assert read_frame(np.zeros((3, 4, 4), np.uint8)).shape == (3, 4, 3)
    f = read_frame(np.ones((3, 4), np.float64))
    assert f.dtype == np.float32


@pytest.mark.parametrize(
    "arr, reason",
    [
        (np.zeros((0, 5), np.uint8), "zero-size"),
        (np.full((4, 4), np.nan, np.float32), "NaN"),
        (np.array([[1.0, np.inf]], np.float32), "Inf"),
        (np.zeros((2, 3, 2), np.uint8), "wrong shape"),
        (np.zeros((2, 3), bool), "dtype"),
    ],
)
def test_bad_arrays_fail_in_one_line(arr, reason):
    with pytest.raises(FrameError) as e:
        read_frame(arr, name="cam0/frame_17")
    _one_line_naming(e, "cam0/frame_17")
    assert reason in str(e.value)


def test_corrupt_png_bytes(tmp_path):
    p = tmp_path / "broken.png"
    good = cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1].tobytes()
    p.write_bytes(good[:20] + b"garbage" * 5)  # PNG signature, then nonsense
    with pytest.raises(FrameError) as e:
        read_frame(p)
    _one_line_naming(e, "broken.png")


def test_empty_and_missing_files(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(FrameError) as e:
        read_frame(p)
    _one_line_naming(e, "empty.png")
    assert "empty" in str(e.value)
    with pytest.raises(FrameError) as e:
        read_frame(tmp_path / "nope.png")
    _one_line_naming(e, "nope.png")
    with pytest.raises(FrameError) as e:
        read_frame(tmp_path)
    _one_line_naming(e, str(tmp_path))


def test_real_dataset_frame_reads():
    from tests.conftest import shared

    root = shared("data", "nuaa-sirst", "images")
    files = sorted(root.glob("*.png"))[:2] if root.exists() else []
    if not files:
        pytest.skip(f"{root}: no NUAA-SIRST frames (the shared data belong in ../shared beside the checkout)")
    for f in files:
        img = read_frame(f)
        assert img.dtype == np.uint8 and img.ndim in (2, 3) and min(img.shape[:2]) > 32
