"""The prepared SSHD-Net GPU command (weights/train/sshd_gpu.sh) must stay a valid spire.train command.

Nothing here has a GPU, so the recipe is only ever run for real on a lent machine; this keeps it from
rotting silently when spire.train's options change (the one-step CPU try is in the script's header).
"""

import os
import subprocess
from pathlib import Path

from spire.train_config import parse_config

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "weights" / "train" / "sshd_gpu.sh"


def recipe_argv(tmp_path, *extra):
    """Run the script with PYTHON pointing at a stub that records its argv instead of training."""
    stub = tmp_path / "python"
    record = tmp_path / "argv.txt"
    stub.write_text(f'#!/bin/sh\nfor a in "$@"; do echo "$a"; done > {record}\n')
    stub.chmod(0o755)
    env = {**os.environ, "PYTHON": str(stub), "DATA": "/data"}
    subprocess.run(["bash", str(SCRIPT), *extra], check=True, env=env, cwd=tmp_path)
    argv = record.read_text().splitlines()
    assert argv[:2] == ["-m", "spire.train"]
    return argv[2:]


def test_the_gpu_recipe_parses_as_a_full_sshd_run_on_every_training_set(tmp_path):
    cfg = parse_config(recipe_argv(tmp_path))
    assert cfg.model == "sshd" and cfg.device == "cuda"
    assert [Path(d).name for d in cfg.data] == ["nuaa-sirst", "sirst-v2", "ir-drone", "irstd-1k"]
    assert [Path(d).name for d in cfg.val_data] == ["sirst-v2", "irstd-1k", "ir-drone"]
    assert 0 < cfg.time_limit_min <= 10  # fits the ~10 minutes of a lent GPU
    assert cfg.init is None  # from scratch: never the official weights


def test_options_given_last_win_so_the_cpu_try_runs_one_step(tmp_path):
    cfg = parse_config(recipe_argv(tmp_path, "--device", "cpu", "--epochs", "1", "--batch", "2"))
    assert (cfg.device, cfg.epochs, cfg.batch) == ("cpu", 1, 2)
