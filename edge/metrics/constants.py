"""Every constant of the metrics, in one place: radii, gates, tolerances, threshold grids, SCR bands.

Why one module: a number such as the 5 px hit radius decides every F1 the package prints; written
in each tool it drifts (it once sat in six files). The matchers, `PointMetrics`, `edge.scoring`,
the fidelity report, `spire.evaluate`, `spire.mine`, pictures (`edge.outputs.annotate`) and the command
defaults read these names; changing a convention is one line here.
"""
from __future__ import annotations

import math

__all__ = ["HIT_RADIUS_PX", "BASICIRSTD_HIT_PX", "PAIR_GATE_PX", "IDENTICAL_TOL_PX", "THR_GRID", "SWEEP_FLOOR",
           "SCR_RING", "SCR_BANDS"]

# The hit radius of the SPIRE metric, in original-image pixels: a prediction within it of a label
# is that label found. Every matcher, metric, sweep and command default reads this one value.
HIT_RADIUS_PX = 5.0
# BasicIRSTD's convention (Pd and false points per frame reported beside SPIRE's by spire.evaluate).
BASICIRSTD_HIT_PX = 3.0

# FP32 vs INT8 (quantize.fidelity): points further apart than the gate are different detections,
# not a shift; two decodes are "identical" when they pair one-to-one within the tolerance.
PAIR_GATE_PX = 3.0
IDENTICAL_TOL_PX = 0.5

# Decode thresholds tried when choosing an operating point on validation (edge.metrics.operating);
# the codec's default (0.35) suits a converged PRPS map, a model's own best point often lies elsewhere.
THR_GRID = tuple(round(0.15 + 0.05 * i, 2) for i in range(17))  # 0.15 .. 0.95 (a sharp model's clutter can peak at 0.8)
# spire.evaluate decodes down to this score so the PR / Pd-FPPI sweeps have candidates.
SWEEP_FLOOR = 0.05

# Signal-to-clutter ratio: the rings around a target (r_target, r_in, r_out, px) and the bands of
# PointMetrics' per-SCR breakdown.
SCR_RING = (1.5, 5.0, 10.0)
SCR_BANDS = (0.0, 2.0, 4.0, 8.0, math.inf)
