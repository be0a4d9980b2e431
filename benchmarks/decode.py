"""Decode speed: how the numpy peak decoder compares with one 3×3 `cv2.dilate` of the same map.

The decoder runs on the device's CPU once per frame, next to the accelerator; the goal is that
it costs no more than 3× a single 3×3 dilate of the output map (the cheapest thing any
max-pool NMS must do), so it never becomes the bottleneck. Maps are synthetic network outputs
(low noise floor plus a few Gaussian targets) of a 640×512 and a 512×512 input at stride 4.

    python -m benchmarks.decode [--repeats 3000] [--targets 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from edge.codecs import PRPSCodec
from edge.inference.preprocess import Letterbox

KERNEL = np.ones((3, 3), np.uint8)


def synthetic_map(h: int, w: int, targets: int, seed: int = 0) -> np.ndarray:
    """A plausible raw output map: noise floor ~0.02 ± 0.03 and `targets` peaks of 0.5–1."""
    rng = np.random.default_rng(seed)
    hm = rng.normal(0.02, 0.03, (h, w)).astype(np.float32)
    yy, xx = np.mgrid[:h, :w]
    for x, y, a in zip(rng.uniform(2, w - 2, targets), rng.uniform(2, h - 2, targets), rng.uniform(0.5, 1.0, targets)):
        hm += (a * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0)).astype(np.float32)
    return hm


def paired_medians_us(fa, fb, repeats: int) -> tuple[float, float]:
    """Median wall times (µs) of fa() and fb(), called alternately so that both see the same
    machine load (each call timed on its own, after a warm-up)."""
    ta, tb = [], []
    clock = time.perf_counter_ns
    for i in range(repeats + min(200, repeats)):
        t0 = clock()
        fa()
        t1 = clock()
        fb()
        t2 = clock()
        if i >= min(200, repeats):
            ta.append(t1 - t0)
            tb.append(t2 - t1)
    return statistics.median(ta) / 1e3, statistics.median(tb) / 1e3


def bench(w: int, h: int, repeats: int, targets: int, stride: int = 4) -> dict:
    """Time decode (to image px, through a letterbox) and one dilate on the map of a w×h input."""
    mh, mw = h // stride, w // stride
    hm = synthetic_map(mh, mw, targets)
    codec = PRPSCodec(max(w, h), stride=stride, thr=0.35)
    lb = Letterbox.fit((h, w), max(w, h), "center", scale_up=False)
    n = len(codec.decode(hm, lb))
    t_decode, t_dilate = paired_medians_us(lambda: codec.decode(hm, lb), lambda: cv2.dilate(hm, KERNEL), repeats)
    return {"input": f"{w}x{h}", "map": f"{mw}x{mh}", "points": n,
            "decode_us": t_decode, "dilate_us": t_dilate, "ratio": t_decode / t_dilate}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3000, help="timed calls per measurement (median)")
    ap.add_argument("--targets", type=int, default=5, help="synthetic targets per map")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)  # one core, as a decode thread on the device
    rows = [bench(640, 512, args.repeats, args.targets), bench(512, 512, args.repeats, args.targets)]
    print(f"{'input':>9} {'map':>8} {'points':>6} {'decode µs':>10} {'dilate µs':>10} {'ratio':>6}")
    for r in rows:
        print(f"{r['input']:>9} {r['map']:>8} {r['points']:>6} {r['decode_us']:>10.1f} {r['dilate_us']:>10.1f} {r['ratio']:>6.2f}")
    worst = max(r["ratio"] for r in rows)
    verdict = "meets" if worst <= 3.0 else "misses"
    dec = " / ".join(f"{r['decode_us']:.1f}" for r in rows)
    dil = " / ".join(f"{r['dilate_us']:.1f}" for r in rows)
    print(f"decode {dec} µs vs dilate {dil} µs (640x512 / 512x512): "
          f"worst ratio {worst:.2f}x, {verdict} the <= 3x goal (median of {args.repeats}, numpy {np.__version__}, "
          f"opencv {cv2.__version__})")
    return 0


if __name__ == "__main__":
    from edge.cli import run_cli

    raise SystemExit(run_cli(main))
