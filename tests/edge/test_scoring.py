"""edge.scoring: the one labelled-frame type, the one skip rule, and every scoring loop going through `score`."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from edge.errors import FrameError
from edge.metrics import PointMetrics
from edge.inference.points import Points
from edge.scoring import LabelledFrame, RunScores, SourceFrames, score

ROOT = Path(__file__).resolve().parents[2]

# The loops that score a predictor on labelled frames (issue 24): each must call edge.scoring.score.
SCORING_MODULES = ("spire/evaluate.py", "spire/validation.py", "spire/thresholds.py", "spire/mine.py",
                   "quantize/fidelity.py", "benchmarks/ladder.py", "benchmarks/measure.py")
# Where `.predict(` may still sit in a loop, and why it is not a scoring loop of its own.
LOOP_PREDICT_ALLOWED = {
    "edge/run.py": "the live runtime loop (writer, tracker, real time); it scores through RunScores.add",
    "edge/scoring.py": "the scoring loop itself",
    "benchmarks/measure.py": "untimed warm-up predictions before the scored passes",
    "benchmarks/track_data.py": "caches every peak per clip for the tracker benchmark (track metrics, not points)",
}


class _Pred:
    """A predictor answering each frame's labels shifted by 1 px; `bad` names raise FrameError."""

    def __init__(self, bad=()):
        self.bad, self.calls = set(bad), []

    def predict(self, frame, name=None, thr=None):
        self.calls.append(name)
        if name in self.bad:
            raise FrameError(f"{name}: NaN pixels")
        xy = np.array([[10.0, 11.0]], np.float32)
        return Points(xy, np.ones(1, np.float32)), {"read": 0.5, "infer": 2.0}


def _frame(name, points=((9.0, 11.0),), frame=None, clip=None):
    return LabelledFrame(np.zeros((20, 30), np.uint8) if frame is None else frame, name,
                         None if points is None else np.asarray(points, np.float32), clip)


def test_labelled_frame_takes_size_and_float_points_from_what_it_is_given():
    fr = LabelledFrame(np.zeros((20, 30, 3), np.uint8), "a", [[1, 2], [3, 4]])
    assert fr.hw == (20, 30) and fr.points.dtype == np.float32 and fr.points.shape == (2, 2) and fr.readable
    assert LabelledFrame("x.png", "x", np.zeros((0, 2)), hw=(8, 9)).hw == (8, 9)
    assert not LabelledFrame(OSError("gone"), "y", None).readable


def test_skip_rule_unreadable_and_unlabelled_frames_are_skipped_and_counted_never_predicted():
    pred = _Pred(bad={"nan"})
    frames = [_frame("ok", clip="c1"), _frame("broken", frame=OSError("cannot decode")), _frame("nolabel", points=None),
              _frame("nan"), _frame("empty", points=np.zeros((0, 2)), clip="c1")]
    res = score(pred, frames, progress=False)
    assert res.skipped == {"unreadable": 2, "unlabelled": 1} and res.frames == 2
    assert pred.calls == ["ok", "nan", "empty"]  # the read error and the unlabelled frame are not predicted
    r = res.compute()
    assert (r["tp"], r["fp"], r["fn"], r["images"], r["target_free_frames"]) == (1, 1, 0, 2, 1)
    assert res.scores.clips_report()["clips"]["c1"]["images"] == 2
    assert res.stage_ms == {"read": [0.5, 0.5], "infer": [2.0, 2.0]} and res.seconds_per_frame > 0


def test_run_scores_add_applies_the_same_rule_as_score():
    run = RunScores()
    assert run.add(_frame("a"), Points(np.array([[9.0, 11.0]], np.float32), np.ones(1, np.float32)))
    assert not run.add(_frame("b", points=None), Points.empty())
    assert len(run) == 1 and run.skipped == {"unreadable": 0, "unlabelled": 1}


def test_score_fills_a_given_point_metrics_and_limit_counts_scored_frames_only():
    kept = PointMetrics()
    seen = []
    res = score(_Pred(), [_frame("x", points=None), _frame("a"), _frame("b"), _frame("c")], metrics=kept, thr=0.1,
                on_frame=lambda fr, pts: seen.append(fr.name), progress=False, limit=2)
    assert res.metrics is kept and len(kept) == 2 and len(kept.frames) == 2  # kept frames: sweeps still work
    assert seen == ["a", "b"] and res.skipped["unlabelled"] == 1
    assert score(_Pred(), [_frame("a")], progress=False, limit=0).frames == 0


def test_source_items_become_labelled_frames(tmp_path):
    from edge.sources import Item

    class _Src(list):
        pass

    src = _Src([Item(0, "clip#000000", np.zeros((4, 5), np.uint8), np.array([[1.0, 2.0]]), 0.1, "clip"),
                Item(1, "clip#000001", FrameError("bad"), None, 0.1, "clip")])
    frames = list(SourceFrames(src))
    assert len(SourceFrames(src)) == 2 and frames[0].clip == "clip" and frames[0].index == 0 and frames[0].hw == (4, 5)
    assert not frames[1].readable and frames[1].points is None


def test_eval_frames_hand_broken_frames_to_the_skip_rule(tmp_path):
    pytest.importorskip("torch")
    from spire.data import Reporter, iter_eval_frames

    class _DS:
        names = ["good", "broken", "nolabel"]

        def __getitem__(self, i):
            from edge.datasets.core import Sample

            if i == 1:
                raise FrameError("broken: cannot be decoded")
            return Sample(self.names[i], None, np.zeros((8, 8), np.uint8), np.array([[2.0, 3.0]], np.float32),
                          labelled=i == 0)

    broken = LabelledFrame.read(_DS(), 1)
    assert not broken.readable and broken.name == "broken" and broken.index == 1 and broken.points is None
    reporter = Reporter(enabled=False)
    cache = []
    for _ in range(2):  # the second pass reads the usable frame from the cache, the broken ones again
        res = score(_Pred(), iter_eval_frames(_DS(), reporter, cache), progress=False)
        assert res.frames == 1 and res.skipped == {"unreadable": 1, "unlabelled": 1} and len(reporter.messages) == 2
    assert len(cache) == 1 and cache[0].name == "good"


def _tree(rel: str) -> ast.Module:
    return ast.parse((ROOT / rel).read_text(), rel)


@pytest.mark.parametrize("rel", SCORING_MODULES)
def test_each_scoring_loop_calls_edge_scoring_score(rel):
    tree = _tree(rel)
    imported = any(isinstance(n, ast.ImportFrom) and n.module == "edge.scoring" and any(a.name == "score" for a in n.names)
                   for n in ast.walk(tree))
    called = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "score" for n in ast.walk(tree))
    assert imported and called, f"{rel} must score through edge.scoring.score"


def test_edge_run_updates_the_one_accumulator_through_run_scores_add():
    src = (ROOT / "edge/run.py").read_text()
    assert "RunScores()" in src and "self.metrics.add(LabelledFrame.from_item(item), pts)" in src
    assert ".metrics.update(" not in src


def test_no_other_module_loops_a_predictor_over_frames():
    """A `.predict(` call inside a for/while loop is a scoring loop of its own: only the listed places may have one."""
    found = set()
    for pkg in ("edge", "spire", "quantize", "export", "benchmarks"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for loop in (n for n in ast.walk(_tree(rel)) if isinstance(n, (ast.For, ast.While, ast.AsyncFor))):
                for n in ast.walk(loop):
                    if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "predict"
                            and n.args):
                        found.add(rel)
    extra = found - set(LOOP_PREDICT_ALLOWED)
    assert not extra, f"these modules loop a predictor over frames; score through edge.scoring.score: {sorted(extra)}"
