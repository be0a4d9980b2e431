"""benchmarks.run --ladder: one row per rung, accuracy equal to edge.run's, a failing rung says why."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import needs_shared, shared

SIRST = shared("data", "sirst-v2")
needs_sirst = needs_shared("data", "sirst-v2", "images")


def small_val(root: Path, n: int = 6) -> Path:
    """The first `n` sirst-v2/val frames with their masks, as a val list of their own."""
    names = (SIRST / "val.txt").read_text().split()[:n]
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name in names:
        shutil.copy(SIRST / "images" / f"{name}.png", root / "images")
        for m in (SIRST / "masks").glob(f"{name}_*"):
            shutil.copy(m, root / "masks")
    (root / "val.txt").write_text("\n".join(names) + "\n")
    return root


@needs_sirst
def test_ladder_rows_score_like_edge_run_and_a_missing_rung_fails_alone(tmp_path, capsys):
    from benchmarks.run import main
    from edge.run import main as edge_run

    val = small_val(tmp_path / "val")
    out = tmp_path / "ladder"
    argv = ["--ladder", "--data", str(val), "--split", "val", "--rungs", "spire-n", "no-such-rung",
            "--backends", "onnxruntime", "--precisions", "fp32", "--imgsz", "512", "--frames", "2",
            "--repeats", "2", "--warmup", "1", "--threads", "1", "--no-official", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    got = json.loads((out / "ladder.json").read_text())
    n, bad = got["rungs"]
    assert n["status"] == "ok" and n["params"] > 0 and n["gmac"] > 0 and n["latency_ms_p50"] > 0
    assert "_512_fp32_onnx" in n["artifact"]  # the rung's committed export, not a fresh one
    assert bad["status"].startswith("failed") and "no-such-rung" in bad["status"]
    table = (out / "ladder.md").read_text()
    assert "| spire-n |" in table and "| no-such-rung |" in table
    capsys.readouterr()
    assert edge_run(["--model", n["artifact"], "--backend", "onnxruntime", "--source", str(val), "--split", "val",
                     "--threads", "1", "--quiet", "--save", str(tmp_path / "run")]) == 0
    ref = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    mine = n["sets"]["val"]
    for k in ("precision", "recall", "f1", "fppi", "images", "targets"):
        assert mine[k] == pytest.approx(ref[k]), k
    assert main(argv) == 0  # a second table never overwrites the first
    assert (tmp_path / "ladder2" / "ladder.json").is_file()


def test_ladder_refuses_several_artifacts_per_rung_and_no_roots(tmp_path, capsys):
    from benchmarks.run import main

    assert main(["--ladder", "--data", str(tmp_path), "--backends", "openvino", "onnxruntime",
                 "--out", str(tmp_path / "o")]) == 2
    assert "one --backends" in capsys.readouterr().err
    assert main(["--ladder", "--out", str(tmp_path / "o")]) == 2
    assert "--ladder needs --data" in capsys.readouterr().err
    assert main(["--data", "a", "b", "--out", str(tmp_path / "o")]) == 2
    assert "with --ladder" in capsys.readouterr().err
