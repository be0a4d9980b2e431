"""Target-level metrics (SPIRE, BasicIRSTD, Hungarian conventions), numpy only.

`matching` pairs points, `points.PointMetrics` scores point detectors (SPIRE convention),
`masks.MaskMetrics` scores mask outputs (BasicIRSTD convention), `curves` draws PR and Pd-FPPI
curves (matplotlib imported lazily).
"""
from .matching import Match, match, match_greedy, match_hungarian
from .masks import MaskMetrics
from .points import PointMetrics

__all__ = ["Match", "match", "match_greedy", "match_hungarian", "PointMetrics", "MaskMetrics"]
