"""`python -m spire.promote RUN --why "..." --out DIR`: a run's last epoch as a shippable checkpoint.

Why: `spire.train` keeps as `best.pt` the epoch with the best worst-set F1 of its quick
validation (whole frames, one joint threshold). Measured the way the model will run
(`edge.run`: tiles, the deployment threshold, the built-in clip), another epoch can be the
better model, and the last one is the only other epoch a run keeps. This writes DIR/best.pt
(last.pt's weights, its EMA average for an --ema run, without optimiser state), DIR/metadata.json (its sidecar: the last
epoch's validation row as `training.best`, and `training.promoted` with the reason) and
copies log.csv and train_args.json, so `python -m quantize.release DIR --to weights/RUNG` takes it like any finished
run. The run itself is left as it is, and DIR must not exist: nothing is overwritten.

    python -m spire.promote runs/abl/n_hard_photo --why "runtime-path val prefers epoch 12" \\
        --out runs/abl/n_hard_photo_last
"""
from __future__ import annotations

import argparse
import copy
import shutil
import sys
from pathlib import Path

from edge.cli import run_cli

from .cli import UsageError

COPIED = ("log.csv", "train_args.json")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m spire.promote", description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a spire.train output folder (holds last.pt and log.csv)")
    p.add_argument("--why", required=True, help="the validation measurement that prefers the last epoch "
                   "(kept in the sidecar)")
    p.add_argument("--out", required=True, help="new folder for the promoted checkpoint (must not exist)")
    return p


def last_validation(state: dict) -> dict:
    """The validation numbers last.pt's own history holds for its epoch, as `training.best` stores them."""
    row = (state.get("history") or [{}])[-1]
    if row.get("val_f1") is None:
        raise UsageError(f"epoch {state.get('epoch')} (last.pt's) was not validated; resume the run to an epoch that "
                         "is (its --eval-every), then promote it")
    best = {k[4:]: v for k, v in row.items()
            if k.startswith("val_") and not k.startswith(("val_f1_", "val_fppi_", "val_seconds"))}
    sets = {k[7:]: {"f1": v, "fppi": row[f"val_fppi_{k[7:]}"]} for k, v in row.items() if k.startswith("val_f1_")}
    return dict(best, sets=sets) if sets else best


def promote(run: Path, out: Path, why: str) -> Path:
    from edge.model.sidecar import file_sha256
    from spire.engine import RunState, save_best
    from spire.models import load_checkpoint

    run, out = Path(run), Path(out)
    last = run / "last.pt"
    for f in (last, *(run / c for c in COPIED)):
        if not f.is_file():
            raise UsageError(f"{f}: missing; is {run} a spire.train output folder?")
    if out.exists():
        raise UsageError(f"--out {out} already exists; name a new folder (a promoted model is never overwritten)")
    model, ckpt = load_checkpoint(last)
    if ckpt.get("ema") is not None:  # an --ema run validated (and ships) the average, not the raw weights
        model.load_state_dict({k[len("module."):]: v for k, v in ckpt["ema"].items() if k.startswith("module.")})
    epoch = int(ckpt["state"]["epoch"])
    st = RunState(best=dict(last_validation(ckpt["state"]), epoch=epoch), best_epoch=epoch)
    meta = copy.deepcopy(ckpt["meta"])
    meta["training"]["promoted"] = {"from": str(last), "sha256": file_sha256(last), "epoch": epoch, "why": why}
    try:  # create-exclusive: the check above and this claim, so two promotions at once never share a folder
        out.mkdir(parents=True)
    except FileExistsError:
        raise UsageError(f"--out {out} was created by another command just now; name a new folder") from None
    path = save_best(out, model, meta, st)  # best.pt + its sidecar, as spire.train writes them
    for c in COPIED:
        shutil.copy2(run / c, out / c)
    return path


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    path = promote(Path(args.run), Path(args.out), args.why)
    print(f"promoted: {args.run}/last.pt -> {path}; next: python -m quantize.release {args.out} --to weights/shipped")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
