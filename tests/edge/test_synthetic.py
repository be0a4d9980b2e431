"""Synthetic IR generator: determinism, sensor model, target SCR/position, clips, dataset, speed."""
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import numpy as np
import pytest

from edge.datasets import open_dataset, write_spire_json
from edge.metrics import PointMetrics
from edge.metrics.scr import measure_scr
from edge.datasets.synthetic import (Placed, SceneConfig, SensorConfig, SynthConfig, SyntheticDataset, TargetConfig,
                            demo_clip, make_frame, make_sequence)

QUIET = SynthConfig(sensor=SensorConfig(netd_k=0.0, col_fpn_k=0.0, defect_fraction=0.0, vignetting_k=0.0))


def test_deterministic_and_typed():
    a, b = make_frame((96, 130), seed=7), make_frame((96, 130), seed=7)
    np.testing.assert_array_equal(a.raw, b.raw)
    np.testing.assert_array_equal(a.points, b.points)
    assert not np.array_equal(a.raw, make_frame((96, 130), seed=8).raw)
    assert a.raw.shape == a.view.shape == (96, 130)
    assert a.raw.dtype == np.uint16 and a.raw.max() < 2 ** 14 and a.view.dtype == np.uint8
    assert a.view.max() == 255 and a.view.min() == 0  # AGC stretches to the full 8-bit range
    assert a.points.dtype == np.float32 and a.scr.shape == (len(a.points),)
    assert a.frame is a.view


@pytest.mark.parametrize("scene", ["sky", "sea", "ground"])
def test_chosen_scr_is_measured(scene):
    pts = [[40.3, 30.6], [100.8, 80.2], [60.5, 100.5]]
    f = make_frame((128, 160), seed=3, scene=scene, placed=Placed(pts, scr=[2.0, 5.0, 9.0], polarity=[1, -1, 1]),
                   config=replace(SynthConfig(), sensor=replace(SensorConfig(), defect_fraction=0.0)))
    np.testing.assert_allclose(f.scr, [2.0, 5.0, 9.0], rtol=0.05)
    np.testing.assert_allclose(measure_scr(f.raw, f.points), f.scr)
    np.testing.assert_array_equal(f.polarity, [1, -1, 1])
    assert f.scene == scene
    # the dark target is darker than its ring, the bright ones brighter
    for (x, y), p in zip(f.points, f.polarity):
        centre = f.raw[int(round(y)), int(round(x))].astype(float)
        ring = f.raw[int(round(y)) - 7, int(round(x)) - 7:int(round(x)) + 8].astype(float).mean()
        assert np.sign(centre - ring) == p


def test_subpixel_position_of_psf():
    cfg = replace(QUIET, scene=replace(SceneConfig(), cloud_cover=(0.0, 0.0)))
    x, y = 50.37, 40.81
    f = make_frame((96, 112), seed=1, config=cfg, scene="sky", placed=Placed([[x, y]], scr=[40.0], sigma=[1.2]))
    g = make_frame((96, 112), seed=1, config=cfg, scene="sky", placed=Placed(np.zeros((0, 2))))
    d = f.raw.astype(float) - g.raw.astype(float)  # the PSF alone (same seed, same clutter)
    yy, xx = np.mgrid[0:96, 0:112]
    cx, cy = (d * xx).sum() / d.sum(), (d * yy).sum() / d.sum()
    assert abs(cx - x) < 0.05 and abs(cy - y) < 0.05


def test_target_counts_and_separation():
    cfg = replace(SynthConfig(), targets=replace(TargetConfig(), count=(0, 5)))
    counts = {len(make_frame(160, seed=s, config=cfg).points) for s in range(12)}
    assert 0 in counts and max(counts) <= 5 and len(counts) > 2
    f = make_frame(200, seed=0, n_targets=4)
    assert len(f.points) == 4
    d = np.hypot(*(f.points[:, None] - f.points[None]).transpose(2, 0, 1))
    assert d[np.triu_indices(4, 1)].min() >= 24
    assert (f.points >= 12).all() and (f.points <= 200 - 1 - 12).all()
    assert len(make_frame(64, seed=0, n_targets=0).points) == 0


def test_sensor_defects_and_noise():
    cfg = replace(SynthConfig(), sensor=replace(SensorConfig(), defect_fraction=0.01))
    f = make_frame(64, seed=2, config=cfg, n_targets=0)
    assert (f.raw == 2 ** 14 - 1).sum() > 5 and (f.raw == 0).sum() > 5
    clip = make_sequence(3, 64, seed=2, config=cfg, n_targets=0)
    hot = [set(np.flatnonzero(c.raw == 2 ** 14 - 1)) for c in clip]
    assert hot[0] == hot[1] == hot[2]  # fixed per sensor
    assert not np.array_equal(clip[0].raw, clip[1].raw)  # temporal noise
    n1 = make_frame(64, seed=5, n_targets=0, config=replace(SynthConfig(), sensor=replace(SensorConfig(), netd_k=0.0)))
    n2 = make_frame(64, seed=5, n_targets=0, config=replace(SynthConfig(), sensor=replace(SensorConfig(), netd_k=0.1)))
    diff = n2.raw.astype(float) - n1.raw.astype(float)
    ok = (n1.raw > 0) & (n1.raw < 2 ** 14 - 1)
    assert abs(diff[ok].std() - 0.1 * 60) < 0.6  # NETD 0.1 K at 60 counts/K


def test_sequence_motion_is_smooth():
    clip = make_sequence(12, (120, 150), seed=4, n_targets=3)
    assert len(clip) == 12 and all(len(c.points) == 3 for c in clip)
    p = np.stack([c.points for c in clip])
    step = np.linalg.norm(np.diff(p, axis=0), axis=2)
    assert step.max() < 2.0 * 1.6  # speed <= 2 px/frame, curved path a little longer
    assert np.linalg.norm(np.diff(p, 2, axis=0), axis=2).max() < 0.5  # no jumps
    assert np.allclose([c.scr for c in clip], clip[0].scr, rtol=0.1)  # SCR held per target


def test_demo_clip_is_fixed():
    a, b = demo_clip(n_frames=3, size=(64, 80)), demo_clip(n_frames=3, size=(64, 80))
    assert len(a) == 3 and a[0].raw.shape == (64, 80)
    np.testing.assert_array_equal(a[2].raw, b[2].raw)
    assert all(len(f.points) == 3 and (f.polarity == 1).all() for f in a)


def test_synthetic_dataset_sample_interface(tmp_path):
    ds = SyntheticDataset(4, size=(72, 88), seed=3)
    assert len(ds) == 4 and ds.names[1] == "synthetic_3_000001" and ds.format == "synthetic"
    s = ds[1]
    assert s.frame.dtype == np.uint8 and s.frame.shape == (72, 88) and s.mask is None
    assert s.scr.shape == (len(s.points),)
    np.testing.assert_array_equal(ds[1].frame, s.frame)
    assert SyntheticDataset(1, 64, raw=True)[0].frame.dtype == np.uint16
    with pytest.raises(IndexError):
        ds[4]
    pm = PointMetrics()
    for smp in ds:
        pm.update(smp.points, smp.points, smp.frame.shape, scr=smp.scr)
    assert pm.compute()["fn"] == 0 and "per_scr" in pm.compute()
    write_spire_json(ds, tmp_path / "out")
    back = open_dataset(tmp_path / "out", split=ds.split)
    assert back.names == ds.names
    np.testing.assert_allclose(back[1].points, s.points, atol=1e-4)
    np.testing.assert_array_equal(back[1].frame, s.frame)


def test_512_frame_is_fast():
    make_frame(512, seed=0, scene="ground")
    for k in ("sky", "sea", "ground"):  # CPU time, best of 3: robust on a shared machine
        best = min(_cpu_time(lambda: make_frame(512, seed=1, scene=k, n_targets=3)) for _ in range(3))
        assert best < 0.050, f"{k}: {best * 1e3:.1f} ms"


def _cpu_time(fn):
    t = time.process_time()
    fn()
    return time.process_time() - t


def test_imports_without_scipy_or_matplotlib():
    code = textwrap.dedent("""
        import builtins
        real = builtins.__import__
        def guard(name, *a, **k):
            if name.split('.')[0] in ('scipy', 'matplotlib', 'torch'):
                raise ImportError(name + ' blocked')
            return real(name, *a, **k)
        builtins.__import__ = guard
        from edge.datasets.synthetic import make_frame
        print(len(make_frame(64, seed=0, n_targets=1).points))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.strip() == "1"
