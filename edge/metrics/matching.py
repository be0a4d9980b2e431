"""One-to-one matching of predicted points to ground-truth points, in numpy.

Every point metric (precision, Pd, Fa, localisation error) is a count over a matching, so the
matching rule *is* the metric. Two rules live here:

- `match_greedy`: the SPIRE convention. Ground truths are visited in their given order; each takes
  the nearest prediction not used yet, and the pair counts when its distance is <= `max_dist`.
  Cheap and what the published numbers use, but order-dependent: an early GT can steal the
  prediction a later GT needed.
- `match_hungarian`: the most pairs within the gate `max_dist`, and among those the smallest total
  distance (order-independent). Uses `scipy.optimize.linear_sum_assignment` when scipy is
  installed (imported lazily: `edge` must not need scipy) and a small numpy Kuhn-Munkres
  otherwise; both give the same assignment cost.

Coordinates are (x, y) in the same pixel space for both sets (original-image pixels for the
published conventions).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import HIT_RADIUS_PX  # noqa: F401  (the hit radius: edge.metrics.constants)

__all__ = ["Match", "pairwise_distances", "match_greedy", "match_hungarian", "match", "linear_assignment", "HIT_RADIUS_PX"]



@dataclass(frozen=True)
class Match:
    """Result of matching M ground truths against N predictions.

    `gt_idx[k]` and `pred_idx[k]` form the k-th true-positive pair at distance `dist[k]`
    (pixels). Unmatched ground truths are misses (FN), unmatched predictions false points (FP).
    """

    gt_idx: np.ndarray  # (K,) int64
    pred_idx: np.ndarray  # (K,) int64
    dist: np.ndarray  # (K,) float64
    n_gt: int
    n_pred: int

    @property
    def tp(self) -> int:
        return int(self.gt_idx.size)

    @property
    def fp(self) -> int:
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        return self.n_gt - self.tp

    def gt_matched(self) -> np.ndarray:
        """(M,) bool: which ground truths were detected."""
        out = np.zeros(self.n_gt, dtype=bool)
        out[self.gt_idx] = True
        return out

    def pred_matched(self) -> np.ndarray:
        """(N,) bool: which predictions are true positives."""
        out = np.zeros(self.n_pred, dtype=bool)
        out[self.pred_idx] = True
        return out


def _as_xy(a, what: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{what} must be an (N, 2) array of (x, y) points, got shape {arr.shape}")
    return arr


def pairwise_distances(gt_xy, pred_xy) -> np.ndarray:
    """(M, N) Euclidean distances between ground truths (rows) and predictions (columns)."""
    g = _as_xy(gt_xy, "gt_xy")
    p = _as_xy(pred_xy, "pred_xy")
    return np.sqrt(((g[:, None, :] - p[None, :, :]) ** 2).sum(-1))


def _build(gi, pi, d, n_gt, n_pred) -> Match:
    gi = np.asarray(gi, dtype=np.int64)
    pi = np.asarray(pi, dtype=np.int64)
    return Match(gi, pi, np.asarray(d, dtype=np.float64), int(n_gt), int(n_pred))


def match_greedy(gt_xy, pred_xy, max_dist: float = HIT_RADIUS_PX) -> Match:
    """SPIRE's GT-driven greedy one-to-one matching (distance <= `max_dist` is a hit).

    Each ground truth, in order, takes the nearest prediction not used yet (ties: lowest index);
    if that one is farther than `max_dist` the ground truth is a miss and the prediction stays
    free for later ground truths.
    """
    d = pairwise_distances(gt_xy, pred_xy)
    m, n = d.shape
    used = np.zeros(n, dtype=bool)
    gi, pi, dd = [], [], []
    for g in range(m):
        if used.all():
            break
        row = np.where(used, np.inf, d[g])
        j = int(np.argmin(row))
        if row[j] <= max_dist:
            used[j] = True
            gi.append(g)
            pi.append(j)
            dd.append(row[j])
    return _build(gi, pi, dd, m, n)


def _hungarian_numpy(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost assignment of a rectangular matrix (shortest augmenting paths, O(n^2 m)).

    Returns (rows, cols) like `scipy.optimize.linear_sum_assignment`: every row of the shorter
    side is assigned, rows sorted ascending.
    """
    cost = np.asarray(cost, dtype=np.float64)
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    n, m = cost.shape  # n <= m
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, dtype=np.int64)  # p[j]: row (1-based) assigned to column j; 0 = free
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            free = ~used[1:]
            cur = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    cols = np.nonzero(p[1:])[0]
    rows = p[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)


def linear_assignment(cost: np.ndarray, use_scipy: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost rectangular assignment; scipy when available (or forced), else numpy."""
    if use_scipy is not False:
        try:
            from scipy.optimize import linear_sum_assignment
        except ImportError:
            if use_scipy:
                raise
        else:
            r, c = linear_sum_assignment(cost)
            return r.astype(np.int64), c.astype(np.int64)
    return _hungarian_numpy(cost)


def match_hungarian(gt_xy, pred_xy, max_dist: float = HIT_RADIUS_PX, use_scipy: bool | None = None) -> Match:
    """Order-independent matching: most pairs within `max_dist`, then least total distance.

    Pairs farther than the gate get a cost larger than any sum of gated distances, so the solver
    first maximises the number of gated pairs; assigned pairs outside the gate are dropped.
    `use_scipy=None` uses scipy when installed, False forces the numpy solver.
    """
    d = pairwise_distances(gt_xy, pred_xy)
    m, n = d.shape
    if m == 0 or n == 0:
        return _build([], [], [], m, n)
    inside = d <= max_dist
    if not inside.any():
        return _build([], [], [], m, n)
    big = float(d[inside].sum()) + 1.0 + max(m, n) * (max_dist + 1.0)
    cost = np.where(inside, d, big)
    r, c = linear_assignment(cost, use_scipy=use_scipy)
    keep = inside[r, c]
    r, c = r[keep], c[keep]
    return _build(r, c, d[r, c], m, n)


def match(gt_xy, pred_xy, max_dist: float = HIT_RADIUS_PX, method: str = "greedy") -> Match:
    """Dispatch on `method`: 'greedy' (SPIRE) or 'hungarian'."""
    if method == "greedy":
        return match_greedy(gt_xy, pred_xy, max_dist)
    if method == "hungarian":
        return match_hungarian(gt_xy, pred_xy, max_dist)
    raise ValueError(f"unknown matching method {method!r}; use 'greedy' or 'hungarian'")
