"""benchmarks.misses.classify: each missed label lands in the first class that applies."""
from __future__ import annotations

import numpy as np

from benchmarks.misses import classify


def _frame():
    f = np.full((100, 120), 50, np.uint8)
    f[29:32, 29:32] = 250  # a bright target at (30, 30)
    return f


def test_found_labels_are_not_misses_and_each_class_is_reachable():
    f = _frame()
    gt = np.array([[30.0, 30.0]])
    assert classify(f, gt, np.array([[31.0, 30.0]]), np.array([0.9]), 0.5) == []  # found
    assert classify(f, gt, np.array([[31.0, 30.0]]), np.array([0.3]), 0.5) == ["below thr"]
    assert classify(f, gt, np.array([[39.0, 30.0]]), np.array([0.9]), 0.5) == ["off centre"]
    assert classify(f, gt, np.empty((0, 2)), np.empty(0), 0.5) == ["in clutter"]  # it stands out: SCR high
    assert classify(f, np.array([[80.0, 60.0]]), np.empty((0, 2)), np.empty(0), 0.5) == ["faint"]  # flat there
    assert classify(f, np.array([[3.0, 50.0]]), np.empty((0, 2)), np.empty(0), 0.5) == ["near edge"]
