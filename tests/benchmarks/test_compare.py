"""benchmarks.compare: models take turns over the same frames; FPS is a median ratio of one run."""
from __future__ import annotations

import json

import pytest

from benchmarks import compare as cmp
from benchmarks.device import int8_isa
from edge.scoring import LabelledFrame
from tests.conftest import spots


class CountingPredictor:
    """Wraps a Predictor and records the order in which the passes started."""

    def __init__(self, inner, name, log):
        self.inner, self.name, self.log = inner, name, log
        self.cfg, self.model_path, self.conf, self.size = inner.cfg, inner.model_path, inner.conf, inner.size

    def predict(self, frame, name=None, thr=None):
        if name == "f0":  # the first frame of a pass
            self.log.append(self.name)
        return self.inner.predict(frame, name, thr=thr)


def _frames(n=4):
    return [LabelledFrame(spots(64, 64, [(20, 30)], seed=i), f"f{i}", [[20.0, 30.0]]) for i in range(n)]


def test_models_take_turns_and_each_gets_a_median_fps_and_its_own_metrics(fake_model):
    from edge.inference.predictor import Predictor

    log = []
    preds = [CountingPredictor(Predictor(fake_model), n, log) for n in ("a", "b")]
    rows = cmp.compare(preds, ["a", "b"], _frames(), rounds=3, warmup=0, progress=False)
    assert log == ["a", "b", "b", "a", "a", "b"]  # ABBAAB: a load spike hits both alike
    assert [len(r.fps) for r in rows] == [3, 3] and all(r.fps_median > 0 for r in rows)
    assert rows[0].metrics["recall"] == 1.0 and rows[0].metrics["tp"] == 4
    md = cmp.markdown(rows, "4 frames", "numpy", "a host")
    assert "1.00×" in md and md.count("| a |") == 1 and "a host" in md


def test_the_command_writes_a_new_run_folder_each_time(fake_model, tmp_path, capsys):

    out = tmp_path / "cmp"
    argv = [str(fake_model), str(fake_model), "--backend", "numpy", "--rounds", "1", "--frames", "5",
            "--out", str(out), "--quiet"]
    assert cmp.main(argv) == 0 and cmp.main(argv) == 0
    first = json.loads((out / "compare.json").read_text())
    assert first["n_frames"] == 5 and len(first["models"]) == 2 and "thread" in first["host"]
    assert (tmp_path / "cmp2" / "compare.md").is_file()  # the first run is kept, never overwritten
    assert "saved:" in capsys.readouterr().out


def test_one_model_is_no_comparison(fake_model):
    with pytest.raises(SystemExit):
        cmp.main([str(fake_model), "--backend", "numpy"])


@pytest.mark.parametrize("flags, isa", [
    ("fpu sse avx avx2 fma", "AVX2 without VNNI"),
    ("avx2 avx512f avx512_vnni", "AVX512-VNNI"),
    ("avx2 avx_vnni amx_int8 amx_tile", "AMX-INT8"),
    ("sse sse2", None),
])
def test_the_int8_instruction_set_is_read_from_the_cpu_flags(tmp_path, flags, isa):
    f = tmp_path / "cpuinfo"
    f.write_text(f"processor\t: 0\nmodel name\t: X\nflags\t\t: {flags}\n")
    assert int8_isa(f) == isa


def test_arm_features_name_the_dot_product_and_no_flags_say_nothing(tmp_path):
    f = tmp_path / "cpuinfo"
    f.write_text("processor\t: 0\nFeatures\t: fp asimd evtstrm aes asimddp\n")
    assert int8_isa(f) == "NEON dot product"
    f.write_text("processor\t: 0\n")
    assert int8_isa(f) is None


def test_an_output_path_under_a_file_is_refused_before_any_pass(fake_model, tmp_path):
    from edge.outputs.runfolders import OutputFolderError

    blocker = tmp_path / "afile"
    blocker.write_text("mine")
    with pytest.raises(OutputFolderError, match="afile"):
        cmp.main([str(fake_model), str(fake_model), "--backend", "numpy", "--out", str(blocker / "cmp")])
    assert blocker.read_text() == "mine"
