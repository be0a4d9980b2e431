"""The one preprocessing: letterbox geometry both ways, normalisation, bit depths, stats."""
import numpy as np
import pytest

from edge.inference.preprocess import (
    Letterbox, Normalization, PreprocessConfig, compute_stats, letterbox, normalize, percentile_agc, preprocess,
)


def _centroid(img2d):
    ys, xs = np.mgrid[: img2d.shape[0], : img2d.shape[1]]
    w = img2d.astype(np.float64)
    return np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


def test_faithful_letterbox_matches_the_official_276x192_numbers():
    lb = Letterbox.fit((192, 276), 512, "faithful")
    assert lb.faithful
    assert lb.sx == pytest.approx(1.85818, abs=1e-5)
    assert lb.sy == pytest.approx(1.85955, abs=1e-5)
    assert lb.ty == pytest.approx(77.913, abs=1e-3) and lb.tx == pytest.approx(0.0, abs=1e-6)
    # index w−1 maps to S'−1 (the quirk), and the inverse has no +0.5
    np.testing.assert_allclose(lb.forward([[275, 191]]), [[511, 512 - 77.913 - 1]], atol=2e-3)
    np.testing.assert_allclose(lb.inverse([[0, 77.91304]]), [[0, 0]], atol=1e-4)


@pytest.mark.parametrize("hw, S, scale_up", [((192, 276), 512, True), ((512, 640), 640, True),
                                             ((1080, 1920), 512, True), ((150, 200), 256, False),
                                             ((37, 53), 64, True)])
def test_center_forward_inverse_exact_and_half_pixel(hw, S, scale_up):
    lb = Letterbox.fit(hw, S, "center", scale_up)
    h, w = hw
    nh, nw = lb.resized_hw
    px, py = lb.pad_xy
    assert lb.sx == nw / w and lb.sy == nh / h
    assert px == (S - nw) // 2 and py == (S - nh) // 2
    if not scale_up and max(hw) <= S:
        assert (lb.sx, lb.sy) == (1.0, 1.0)
    rng = np.random.default_rng(0)
    p = rng.uniform(-0.5, [w - 0.5, h - 0.5], (50, 2))
    q = lb.forward(p)
    np.testing.assert_allclose(q[:, 0], (p[:, 0] + 0.5) * lb.sx - 0.5 + px, atol=1e-3)
    np.testing.assert_allclose(q[:, 1], (p[:, 1] + 0.5) * lb.sy - 0.5 + py, atol=1e-3)
    np.testing.assert_allclose(lb.inverse(q), p, atol=2e-3)
    r = rng.uniform(0, S - 1, (50, 2))
    np.testing.assert_allclose(lb.forward(lb.inverse(r)), r, atol=2e-3)


@pytest.mark.parametrize("hw, S, mode", [((100, 140), 256, "center"), ((300, 500), 128, "center"),
                                         ((192, 276), 512, "faithful"), ((64, 64), 64, "center")])
def test_bright_pixel_lands_where_forward_says(hw, S, mode):
    lb = Letterbox.fit(hw, S, mode)
    rng = np.random.default_rng(1)
    for _ in range(5):
        x, y = int(rng.integers(3, hw[1] - 3)), int(rng.integers(3, hw[0] - 3))
        img = np.zeros(hw, np.float32)
        img[y, x] = 1000.0
        out = lb.apply(img)
        assert out.shape == (S, S)
        np.testing.assert_allclose(_centroid(out), lb.forward([[x, y]])[0], atol=0.5)


def test_padding_is_zero_and_dtype_kept():
    lb = Letterbox.fit((100, 200), 256)
    out = lb.apply(np.full((100, 200, 3), 255, np.uint8))
    assert out.dtype == np.uint8 and out.shape == (256, 256, 3)
    px, py = lb.pad_xy
    assert out[: py].max() == 0 and out[py + lb.resized_hw[0]:].max() == 0 and out[py:py + 10].min() == 255
    with pytest.raises(ValueError):
        lb.apply(np.zeros((10, 10), np.uint8))


def test_imagenet_rgb_on_grey_and_rgb():
    cfg = PreprocessConfig(64, 3, Normalization("imagenet-rgb"))
    grey = np.full((64, 64), 255, np.uint8)
    x, lb = preprocess(grey, cfg)
    assert x.shape == (3, 64, 64) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 10, 10], (1 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225], rtol=1e-5)
    rgb = np.zeros((32, 64, 3), np.uint8)
    rgb[..., 1] = 255
    x, lb = preprocess(rgb, cfg)
    np.testing.assert_allclose(x[:, 32, 32], (np.array([0, 1, 0]) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225], rtol=1e-5)
    # padding rows are 0 pixels, normalised
    np.testing.assert_allclose(x[:, 0, 0], -np.array([0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225], rtol=1e-5)


def test_single_channel_mean_std_from_rgb():
    cfg = PreprocessConfig(32, 1, Normalization("mean-std", (0.25,), (0.5,)))
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 255
    x, _ = preprocess(rgb, cfg)
    assert x.shape == (1, 32, 32)
    assert x[0, 5, 5] == pytest.approx((76 / 255 - 0.25) / 0.5, abs=2e-3)  # cv2 grey of pure red


def test_16bit_goes_through_percentile_agc():
    rng = np.random.default_rng(0)
    raw = rng.integers(3000, 3400, (60, 80)).astype(np.uint16)  # narrow 14-bit band
    raw[30, 40] = 16000  # a hot target above the 99.5th percentile
    cfg = PreprocessConfig(128, 1, Normalization("mean-std", (0.0,), (1.0,)))
    img, lb = letterbox(raw, cfg)
    assert img.dtype == np.float32 and img.shape == (128, 128, 1)
    assert img.max() > 250 and img.min() == 0.0
    inner = img[lb.pad_xy[1] + 2: lb.pad_xy[1] + lb.resized_hw[0] - 2, 2:-2]
    assert inner.mean() > 60  # the band is spread over 0..255, not crushed to black
    agc = percentile_agc(raw, 0.5, 99.5)
    assert agc[30, 40] == 255.0 and np.isclose(np.percentile(agc, 50), 127.5, atol=20)
    assert percentile_agc(np.full((4, 4), 7, np.uint16)).max() == 0.0  # flat frame stays flat


def test_agc_mode_stretches_8bit_too():
    dim = np.random.default_rng(0).integers(10, 40, (40, 40)).astype(np.uint8)
    img, _ = letterbox(dim, PreprocessConfig(64, 1, Normalization("percentile-agc")))
    assert img.max() > 250
    img, _ = letterbox(dim, PreprocessConfig(64, 1, Normalization("mean-std", (0.1,), (0.2,))))
    assert img.max() < 40


def test_compute_stats_and_configs_round_trip(tmp_path):
    frames = [np.full((10, 10), 51, np.uint8), np.full((10, 10), 153, np.uint8)]
    norm = compute_stats(frames, channels=1)
    assert norm.mode == "mean-std"
    assert norm.mean[0] == pytest.approx(0.4, abs=1e-5) and norm.std[0] == pytest.approx(0.2, abs=1e-5)
    cfg = PreprocessConfig(96, 1, norm, "faithful", False)
    assert PreprocessConfig.from_dict(cfg.to_dict()) == cfg
    assert Normalization.from_dict(Normalization().to_dict()) == Normalization()
    x = normalize(np.full((96, 96, 1), 102.0, np.float32), cfg)
    assert x.shape == (1, 96, 96) and x[0, 0, 0] == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("kw", [dict(imgsz=100), dict(channels=2), dict(letterbox="stretch"),
                                dict(channels=1, norm=Normalization("imagenet-rgb"))])
def test_bad_configs_rejected(kw):
    with pytest.raises(ValueError):
        PreprocessConfig(**kw)
    with pytest.raises(ValueError):
        Normalization("mean-std")
