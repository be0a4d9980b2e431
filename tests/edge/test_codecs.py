"""Codecs: registry, encode shapes, encode->decode round trip, and the faithful mode against a
straight port of the official per-cell loops (method.md §2, §4) on hand-made maps and images."""
import math

import numpy as np
import pytest

from edge.codecs import CODECS, GaussianCodec, PRPSCodec, build_codec
from edge.codecs.peaks import find_peaks
from edge.codecs.prps import crop_shifted
from edge.inference.preprocess import Letterbox, Normalization, PreprocessConfig, letterbox


# --------------------------------------------------------------- official reference (loops)
def ref_official_decode(hm, thr, vr, K):
    """The official nrx_heatmap_nms + nrx_get_max_preds + quarter post-processing, as loops."""
    H, W = hm.shape
    pad = np.pad(hm, 1, constant_values=-np.inf)
    pool = np.max([pad[dy:dy + H, dx:dx + W] for dy in range(3) for dx in range(3)], axis=0)
    nms = hm * (pool == hm)
    cands = [(x, y, nms[y, x]) for y, x in zip(*np.where(nms > thr))]
    cands.sort(key=lambda t: t[2], reverse=True)
    sel = []
    for x, y, c in cands:
        if all(not (max(c, s) - min(c, s) > np.float32(vr) * max(c, s)) for _, _, s in sel):
            sel.append((x, y, c))
            if len(sel) == K:
                break
    coords = np.zeros((K, 2))
    vals = np.zeros(K)
    for i, (x, y, c) in enumerate(sel):
        coords[i], vals[i] = (x, y), c
    for i in range(K):
        x, y = coords[i]
        if x != 0 and y != 0:
            px, py = int(math.floor(x + 0.5)), int(math.floor(y + 0.5))
            if 1 < px < W - 1 and 1 < py < H - 1:
                coords[i] += 0.25 * np.sign([hm[py, px + 1] - hm[py, px - 1], hm[py + 1, px] - hm[py - 1, px]])
    return coords, vals


def ref_official_prps(img, kps, hw, sigma=2, prior=True):
    """The official nrxKeypointToHeatMap_targetEnhance (prior=False: oneMapwithManyPoints)."""
    r = sigma * 3
    d = np.arange(2 * r + 1) - r
    kernel = np.exp(-(d[None] ** 2 + d[:, None] ** 2) / (2 * sigma**2)).astype(np.float32)
    heat = np.zeros(hw, np.float32)
    for kp, (x, y) in zip(kps, (kps / 4 + 0.5).astype(int)):
        if (x, y) == (0, 0):
            continue
        ul, br = [x - r, y - r], [x + r, y + r]
        if ul[0] > hw[1] - 1 or ul[1] > hw[0] - 1 or br[0] < 0 or br[1] < 0:
            continue
        patch = kernel
        if prior:
            cx, cy = int(kp[0]), int(kp[1])
            nb = img[max(0, cy - 5):min(img.shape[0], cy + 6), max(0, cx - 5):min(img.shape[1], cx + 6)]
            iy, ix, _ = np.unravel_index(np.argmax(nb), nb.shape)
            bx, by = max(0, cx - 5) + ix, max(0, cy - 5) + iy
            crop = crop_shifted(img, bx, by, r)
            if crop.min() != crop.max():
                crop = np.interp(crop.ravel(), (crop.min(), crop.max()), (0, 255)).reshape(crop.shape)
            g = np.dot(crop[..., :3], [0.2989, 0.5870, 0.1140]) / 255.0
            q = kernel * g
            m, M = q.min(), q.max()
            patch = np.zeros_like(q) if m == M else ((q - m) / (M - m) - m) / (M - m)
        gx = (max(0, -ul[0]), min(br[0], hw[1] - 1) - ul[0])
        gy = (max(0, -ul[1]), min(br[1], hw[0] - 1) - ul[1])
        ix0, iy0 = max(0, ul[0]), max(0, ul[1])
        for i in range(gy[0], gy[1] + 1):
            for j in range(gx[0], gx[1] + 1):
                hy, hx = iy0 + i - gy[0], ix0 + j - gx[0]
                heat[hy, hx] = (heat[hy, hx] + patch[i, j]) / 2 if heat[hy, hx] > 0 else patch[i, j]
    return heat


def _blobs(hw, pts, amp=200.0, s=1.2, bg=20.0):
    yy, xx = np.mgrid[: hw[0], : hw[1]]
    img = np.full(hw, bg, np.float32)
    for x, y in pts:
        img += amp * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * s**2))
    return np.clip(img, 0, 255).astype(np.uint8)


# --------------------------------------------------------------- registry / shapes
@pytest.mark.parametrize("name", sorted(CODECS))
@pytest.mark.parametrize("faithful", [False, True])
def test_registry_round_trip_and_encode_shape(name, faithful):
    codec = build_codec({"type": name, "input_size": 128, "stride": 4, "faithful": faithful})
    again = build_codec(codec.to_dict())
    assert type(again) is type(codec) and again.to_dict() == codec.to_dict()
    assert codec.to_dict()["type"] == name and codec.heatmap_size == 32
    img = np.zeros((128, 128, 3), np.float32)
    img[60:63, 40:43] = 255
    hm = codec.encode(np.array([[41.0, 61.0]]), image=img)["heatmap"]
    assert hm.shape == (32, 32) and hm.dtype == np.float32
    assert 0.99 <= hm.max() <= 1.01 and hm.min() >= 0
    assert codec.encode(np.zeros((0, 2)), image=img)["heatmap"].max() == 0


def test_bad_codec_configs():
    with pytest.raises(ValueError):
        build_codec({"type": "dsnt", "input_size": 64})
    with pytest.raises(ValueError):
        PRPSCodec(100, stride=8)
    with pytest.raises(ValueError):
        GaussianCodec(64, refine="spline")
    with pytest.raises(ValueError, match="letterbox"):
        PRPSCodec(64).encode([[10, 10]])  # PRPS needs the image


# --------------------------------------------------------------- round trip (default mode)
@pytest.mark.parametrize("name", sorted(CODECS))
def test_round_trip_through_letterbox_sub_pixel(name):
    rng = np.random.default_rng(7)
    cfg = PreprocessConfig(256, 1, Normalization("mean-std", (0.2,), (0.2,)))
    codec = build_codec({"type": name, "input_size": 256})
    errs = []
    for _ in range(6):
        hw = (int(rng.integers(150, 260)), int(rng.integers(200, 320)))
        pts = rng.uniform(12, np.array(hw[::-1]) - 12, (3, 2))
        img, lb = letterbox(_blobs(hw, pts), cfg)
        hm = codec.encode(lb.forward(pts), image=img)["heatmap"]
        out = codec.decode(hm, lb)
        assert len(out) == 3
        errs += list(np.linalg.norm(pts[:, None] - out.xy[None], axis=2).min(1))
    assert np.mean(errs) < 0.5 and np.max(errs) < 1.0, errs


@pytest.mark.parametrize("method, tol", [("quadratic", 0.02), ("centroid", 1.5), ("none", 2.0)])
def test_refine_methods_on_an_exact_gaussian(method, tol):
    codec = GaussianCodec(128, refine=method)
    pts = np.array([[50.3, 70.8], [90.6, 20.1]])
    out = codec.decode(codec.encode(pts)["heatmap"][None, None])  # (1, 1, h, w) accepted
    d = np.linalg.norm(pts[:, None] - out.xy[None], axis=2).min(1)
    assert d.max() < tol, d


def test_default_decode_has_no_relative_cut_and_batches():
    hm = np.zeros((32, 32), np.float32)
    hm[5, 5], hm[20, 20], hm[10, 25] = 1.0, 0.5, 0.36
    default = PRPSCodec(128)
    assert len(default.decode(hm)) == 3  # no 65 % cut
    assert len(PRPSCodec(128, faithful=True).decode(hm)) == 1
    batch = default.decode_batch(np.stack([hm, np.zeros_like(hm)])[:, None])
    assert [len(p) for p in batch] == [3, 0]
    np.testing.assert_allclose(batch[0].scores, [1.0, 0.5, 0.36])  # sorted by score


# --------------------------------------------------------------- faithful decode (§4)
def test_faithful_decode_rules_on_a_hand_made_map():
    codec = PRPSCodec(128, faithful=True)  # thr .35, vr .35, K 8, quarter
    hm = np.zeros((32, 32), np.float32)
    hm[10, 10], hm[10, 11], hm[10, 9] = 1.0, 0.3, 0.1  # right > left: +0.25 in x
    hm[11, 10] = 0.2  # down > up: +0.25 in y
    hm[20, 1], hm[20, 2] = 0.9, 0.5  # x = 1: never refined
    hm[25, 25] = 0.64  # under 65 % of the best: the vr cut drops it
    hm[5, 20] = 0.66  # just above: kept
    hm[3, 30] = 0.3  # under thr
    out = codec.decode(hm)
    np.testing.assert_allclose(out.scores, [1.0, 0.9, 0.66])
    np.testing.assert_allclose(out.xy, [[10.25 * 4, 10.25 * 4], [4, 80], [80, 20]])
    # K slots: 12 equal peaks -> exactly K, in row-major order (stable sort)
    many = np.zeros((32, 32), np.float32)
    many[2:26:2, 4] = 0.9
    out = codec.decode(many)
    assert len(out) == 8 and list(out.xy[:, 1]) == [4.0 * y for y in range(2, 18, 2)]


def test_faithful_zero_coordinates_stay_zero_after_the_inverse():
    lb = Letterbox.fit((192, 276), 128, "faithful")
    hm = np.zeros((32, 32), np.float32)
    hm[12, 0] = 0.9  # column 0
    out = PRPSCodec(128, faithful=True).decode(hm, lb)
    assert out.xy[0, 0] == 0.0 and out.xy[0, 1] == pytest.approx(lb.inverse([[0, 48]])[0, 1])
    out = PRPSCodec(128).decode(hm, lb)  # default mode: a real coordinate
    assert out.xy[0, 0] == pytest.approx(lb.inverse([[1.5, 0]])[0, 0])


def test_faithful_decode_equals_the_official_loops_on_random_maps():
    rng = np.random.default_rng(3)
    for trial in range(30):
        hm = rng.random((24, 24)).astype(np.float32) ** 3
        hm[0, :] = hm[:, 0] = 0  # the official output drops a real peak at cell (0, 0)
        vr = float(rng.choice([0.35, 0.2, 0.9]))
        codec = GaussianCodec(96, faithful=True, thr=0.3, vr=vr, top_k=int(rng.integers(1, 9)))
        ref, vals = ref_official_decode(hm, codec.thr, vr, codec.top_k)
        keep = vals > 0
        out = codec.decode(hm)
        np.testing.assert_allclose(out.xy, ref[keep] * 4, err_msg=f"trial {trial}")
        np.testing.assert_allclose(out.scores, vals[keep], rtol=1e-6)


# --------------------------------------------------------------- faithful encode (§2)
def test_faithful_prps_equals_the_official_loops_on_a_hand_made_image():
    rng = np.random.default_rng(5)
    img = rng.integers(0, 60, (128, 128, 3)).astype(np.float32)
    img[40:43, 50:53] = 250  # target
    img[44, 58] = 255  # a brighter pixel within 11×11 of the second label
    img[0:3, 0:3] = 240  # corner target: the crop must shift inside
    img[100:110, 100:110] = 30  # flat-ish region
    kps = np.array([[51.2, 41.1], [53.0, 43.0], [1.0, 1.0], [2.5, 2.0], [126.0, 3.0], [104.0, 104.0], [300.0, 5.0]])
    codec = PRPSCodec(128, faithful=True)
    hm = codec.encode(kps, image=img)["heatmap"]
    ref = ref_official_prps(img, kps, (32, 32))
    np.testing.assert_array_equal(hm, ref)
    # (1, 1) -> cell (0, 0): skipped; the two close labels overlap -> mean of their patches
    alone = codec.encode(kps[[0]], image=img)["heatmap"]
    other = codec.encode(kps[[1]], image=img)["heatmap"]
    both = codec.encode(kps[:2], image=img)["heatmap"]
    ov = (alone > 0) & (other > 0)
    np.testing.assert_allclose(both[ov], (alone[ov] + other[ov]) / 2, rtol=1e-6)
    assert codec.encode(kps[[2]], image=img)["heatmap"].max() == 0
    assert codec.encode(kps[[3]], image=img)["heatmap"].max() > 0  # (2.5, 2) -> cell (1, 1)
    np.testing.assert_array_equal(crop_shifted(img, 1, 1, 6), img[0:13, 0:13])
    np.testing.assert_array_equal(crop_shifted(img, 126, 3, 6), img[0:13, 115:128])


def test_faithful_gaussian_equals_the_official_loops():
    kps = np.array([[40.0, 40.0], [46.0, 42.0], [0.5, 0.5], [127.0, 64.0]])
    hm = GaussianCodec(128, faithful=True).encode(kps)["heatmap"]
    np.testing.assert_array_equal(hm, ref_official_prps(None, kps, (32, 32), prior=False))


def test_peak_finding_matches_a_full_max_pool():
    rng = np.random.default_rng(0)
    hm = rng.random((40, 50)).astype(np.float32)
    hm[7, 7] = hm[7, 8] = 2.0  # a plateau: both cells are peaks, as with ==maxpool
    pad = np.pad(hm, 1, constant_values=-np.inf)
    pool = np.max([pad[dy:dy + 40, dx:dx + 50] for dy in range(3) for dx in range(3)], axis=0)
    idx, vals = find_peaks(hm, 0.5)
    ry, rx = np.where((pool == hm) & (hm > 0.5))
    np.testing.assert_array_equal(idx, ry * 50 + rx)
    np.testing.assert_array_equal(vals[:, 0], hm[ry, rx])
    assert vals.shape == (len(idx), 9)


def test_quadratic_refine_at_borders_and_with_negative_neighbours():
    codec = GaussianCodec(64, thr=0.3)  # stride 4: cell c -> 4c + 1.5 input px
    hm = np.zeros((16, 16), np.float32)
    hm[0, 7], hm[0, 8], hm[1, 7] = 1.0, 0.5, 0.6  # top row: moves in x, never in y
    hm[9, 15], hm[8, 15], hm[9, 14] = 0.9, 0.4, 0.7  # last column: moves in y, never in x
    hm[12, 4], hm[12, 5], hm[12, 3] = 0.8, 0.4, -0.1  # a negative neighbour: raw parabola
    out = codec.decode(hm)
    (x0, y0), (x1, y1), (x2, y2) = out.xy
    assert y0 == 1.5 and 4 * 7 + 1.5 < x0 < 4 * 7.5 + 1.5
    assert x1 == 4 * 15 + 1.5 and 4 * 8.5 + 1.5 < y1 < 4 * 9 + 1.5
    off = 0.5 * (-0.1 - 0.4) / (-0.1 + 0.4 - 1.6)  # raw parabola vertex, in cells
    assert x2 == pytest.approx(4 * (4 + off) + 1.5, abs=1e-4) and y2 == 4 * 12 + 1.5


def test_points_container():
    from edge.inference.points import Points

    p = Points([[1, 2], [3, 4], [5, 6]], [0.9, 0.2, 0.5])
    assert len(p) == 3 and p.xy.dtype == np.float32 and p.scores.dtype == np.float32
    assert len(p.filter(0.5)) == 2 and p.filter(0.5).scores.tolist() == pytest.approx([0.9, 0.5])
    assert p.sorted().scores.tolist() == pytest.approx([0.9, 0.5, 0.2])
    assert p.to_list()[0] == {"x": 1.0, "y": 2.0, "score": pytest.approx(0.9)}
    assert len(Points.empty()) == 0 and Points.empty().xy.shape == (0, 2)
    assert len(Points.concat([p, Points.empty(), p])) == 6
    assert Points(np.zeros((2, 2))).scores.tolist() == [1.0, 1.0]
    for bad in [dict(xy=np.zeros((2, 3))), dict(xy=np.zeros((2, 2)), scores=np.zeros(3)),
                dict(xy=[[np.nan, 1.0]]), dict(xy=[[1.0, 1.0]], scores=[np.inf])]:
        with pytest.raises(ValueError):
            Points(**bad)
    with pytest.raises(ValueError):
        GaussianCodec(64).decode_batch(np.zeros((2, 1, 16, 16), np.float32), [None])
    with pytest.raises(ValueError):
        GaussianCodec(64).decode(np.zeros((2, 16, 16), np.float32))


def test_default_prps_target_follows_the_intensity_prior():
    """Default PRPS (not faithful) shapes the Gaussian by the image: the map spreads along a bright streak and
    fades over dark background, while a flat image gives the plain Gaussian (removing the prior fails this)."""
    from edge.codecs import GaussianCodec, PRPSCodec

    prps, gauss = PRPSCodec(64), GaussianCodec(64)
    p = np.array([[33.5, 32.0]], np.float32)  # in input px; cell (8, 8)
    img = np.zeros((64, 64), np.float32)
    img[30:35, 32:50] = 255  # a target streak running to the right of the labelled point
    q, g = prps.encode(p, image=img)["heatmap"], gauss.encode(p)["heatmap"]
    assert np.unravel_index(g.argmax(), g.shape) == (8, 8) and q.max() == pytest.approx(1.0)
    assert np.unravel_index(q.argmax(), q.shape) == (8, 9)  # the peak moves onto the bright side
    right, left = q[:, 9:13].sum(), q[:, 4:8].sum()
    assert right > 2.0 * left  # the mass follows the streak ...
    assert g[:, 9:13].sum() == pytest.approx(g[:, 4:8].sum(), rel=0.35)  # ... where a Gaussian is symmetric
    assert q[5:7].max() < 0.25 * g[5:7].max()  # dark rows above the streak are suppressed
    flat = prps.encode(p, image=np.full((64, 64), 100, np.float32))["heatmap"]
    np.testing.assert_allclose(flat, g, atol=0.05)  # no contrast: the plain Gaussian


@pytest.mark.parametrize("faithful", [False, True])
def test_decode_at_t_is_the_low_threshold_decode_filtered_at_t(faithful):
    """benchmarks.track --sweep-thr decodes once at a low threshold and re-filters: that must be
    exactly decode(thr=t), also with more than 4·K peaks (the partial-sort path) and with ties at
    the K-th score (INT8 outputs take few distinct values)."""
    rng = np.random.default_rng(3)
    codec = GaussianCodec(128, faithful=faithful, top_k=8)
    for trial in range(40):
        hm = rng.random((32, 32)).astype(np.float32)
        if trial % 2:  # quantised map: many equal scores
            hm = np.round(hm * 16) / 16
        low = codec.decode(hm, thr=0.05)
        for t in (0.1, 0.3, 0.5, 0.7, 0.85, 0.95):
            ref = codec.decode(hm, thr=t)
            keep = low.scores > np.float32(t)
            np.testing.assert_array_equal(low.xy[keep], ref.xy)
            np.testing.assert_array_equal(low.scores[keep], ref.scores)
