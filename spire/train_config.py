"""`spire.train`'s options: the TrainConfig dataclass, its command line and the resume rules.

Why a separate module: the options are data (saved as OUT/train_args.json and read back on
--resume, reused by quantize.qat's fine-tuning), and the training loop in `spire.train` is long
enough on its own.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from edge.datasets import FORMATS

from .cli import UsageError

# --finetune: a small dataset of the user's own camera on top of a trained model (--init). A lower
# learning rate than training from scratch (the README's fine-tune recipes used 2e-3 to 5e-4),
# every frame of a short clip (neighbours differ enough once there are only a few hundred), a
# short warm-up, validation every epoch (a few minutes of training must leave a best.pt), and the
# training crop size of the family. Options given on the command line win over these.
FINETUNE = {"lr": 5e-4, "epochs": 20, "frame_stride": 1, "val_frame_stride": 1, "warmup_iters": 50,
            "eval_every": 1, "lr_patience": 2, "imgsz": 192, "batch": 16, "bg_ratio": 0.3, "photometric": 0.3}

# Options that may change when a run is resumed; everything else is taken from train_args.json.
RUN_CONTROL = ("epochs", "time_limit_min", "threads", "workers", "device", "resume", "out", "quiet", "set_lr")


@dataclass
class TrainConfig:
    """Every option of a run (saved as OUT/train_args.json)."""

    data: list[str] = field(default_factory=list)
    model: str = "spire_n"
    format: str = "auto"
    train_split: str = "train"
    val_data: list[str] | None = None
    val_split: str = "val"
    frame_stride: int = 10
    val_frame_stride: int = 10
    data_weights: list[float] | None = None
    bg_weights: list[float] | None = None
    epoch_size: int = 0
    photometric: float = 0.0
    hard_negatives: str | None = None
    hard_ratio: float = 0.0
    copy_paste: float = 0.0
    val_fraction: float = 0.2
    synthetic: int = 0
    imgsz: int = 256
    epochs: int = 100
    batch: int = 8
    lr: float = 5e-3
    weight_decay: float = 1e-4
    warmup_iters: int = 1000
    loss: str = "mse"
    codec: str | None = None
    eval_every: int = 5
    lr_patience: int = 3
    lr_factor: float = 0.1
    min_lr: float = 1e-6
    bg_ratio: float = 0.2
    zoom: tuple[float, float] = (1.0, 1.15)
    no_flip: bool = False
    native_val: bool | None = None
    val_fit: str | None = None
    val_imgsz: int = 512
    max_val_frames: int = 0
    grad_clip: float = 0.0
    ema: float = 0.0
    seed: int = 0
    out: str = "runs/train"
    resume: bool = False
    exist_ok: bool = False
    workers: int = 0
    threads: int | None = None
    device: str = "auto"
    time_limit_min: float = 0.0
    set_lr: float | None = None
    init: str | None = None
    finetune: bool = False
    cache: bool = False
    quiet: bool = False


def build_parser() -> argparse.ArgumentParser:
    """spire.train's command line; every default is the TrainConfig field's (written once, there)."""
    p = argparse.ArgumentParser(prog="python -m spire.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for section in (_data_options, _sampling_options, _optimiser_options, _validation_options, _run_options):
        section(p, _adder(p))
    return p


def _adder(p, defaults: TrainConfig | None = None):
    """`add_argument` whose default is the TrainConfig field the option sets (flags default to False;
    an explicit `default=None` is a sentinel: decided later from other options)."""
    d = defaults or TrainConfig()

    def add(*flags, group=None, **kw):
        dest = kw.get("dest") or flags[0].lstrip("-").replace("-", "_")
        if kw.get("action") not in ("store_true", "store_false") and not kw.get("required") and "default" not in kw:
            v = getattr(d, dest)
            kw["default"] = list(v) if isinstance(v, tuple) else v
        return (group or p).add_argument(*flags, **kw)

    return add


def _data_options(p, a) -> None:
    a("--model", default=None, help=f"registered model name (spire.models.list_models()); default: --init's "
      f"architecture, else {TrainConfig.model}")
    a("--data", nargs="+", default=None, help="training dataset root(s) (--resume reads them from OUT/train_args.json)")
    a("--format", choices=("auto", *FORMATS))
    a("--train-split", help="list name (or .txt path) of every --data root")
    a("--val-data", nargs="+",
      help="external validation root(s); every training frame showing the same pixels as one of their frames is "
           "removed from training; the model is selected on the WORST of their F1s")
    a("--val-split")
    a("--frame-stride", type=int,
      help="video-clip roots: train on every k-th frame (neighbours are near-duplicates at 30 fps)")
    a("--val-frame-stride", type=int, help="video-clip roots: validate on every k-th frame")
    a("--val-fraction", type=float, help="carved from training without --val-data")
    a("--synthetic", type=int, help="add N synthetic frames (edge.datasets.synthetic)")
    a("--init", help="start from this spire.train checkpoint's weights and normalisation (fine-tuning; a new run, "
                     "new optimiser)")
    a("--finetune", action="store_true",
      help="fine-tune --init on a small dataset of your own: " + ", ".join(f"--{k.replace('_', '-')} {v}"
                                                                           for k, v in FINETUNE.items())
      + " unless given; validates as the model is deployed")


def _sampling_options(p, a) -> None:
    a("--data-weights", type=float, nargs="+",
      help="share of each --data root in an epoch's target and background views (default: as the data comes)")
    a("--bg-weights", type=float, nargs="+",
      help="share of each --data root in the background views (default: --data-weights)")
    a("--epoch-size", type=int, help="target-centred views per epoch with --data-weights (0: all positives)")
    a("--photometric", type=float,
      help="probability of a sensor-like photometric change per view (AGC gain/offset, gamma, noise, blur)")
    a("--hard-negatives",
      help="a python -m spire.mine CSV of false alarms on the training frames: --hard-ratio of the background views "
           "are crops around them")
    a("--hard-ratio", type=float, help="share of background views centred on a mined false alarm")
    a("--copy-paste", type=float,
      help="share of the plain background views that get 1-3 real targets pasted in (cut from the training "
           "frames' labels, spire.paste)")
    a("--imgsz", type=int, help="network input / crop side (multiple of 32)")
    a("--bg-ratio", type=float, help="share of background (target-free) views")
    a("--zoom", type=float, nargs=2, metavar=("LO", "HI"))
    a("--no-flip", action="store_true", help="no flips / transposes")


def _optimiser_options(p, a) -> None:
    a("--epochs", type=int)
    a("--batch", type=int, help="batch per process")
    a("--lr", type=float)
    a("--weight-decay", type=float)
    a("--warmup-iters", type=int, help="capped at one epoch")
    a("--loss", choices=["mse", "focal"])
    a("--codec", choices=["prps", "gaussian"], help="override the model's target codec")
    a("--lr-patience", type=int, help="ReduceLROnPlateau patience, in evaluations")
    a("--lr-factor", type=float)
    a("--min-lr", type=float)
    a("--grad-clip", type=float)
    a("--ema", type=float, metavar="DECAY",
      help="validate and save an exponential moving average of the weights (torch.optim.swa_utils; e.g. 0.998: "
           "a horizon of ~500 steps); 0: the raw weights")
    a("--seed", type=int)


def _validation_options(p, a) -> None:
    a("--eval-every", type=int, help="validate every k epochs (and at the end)")
    g = p.add_mutually_exclusive_group()
    a("--native-val", group=g, dest="native_val", action="store_true",
      help="validate whole frames at native resolution (default for scale_up=False models)")
    a("--letterbox-val", group=g, dest="native_val", action="store_false", help="validate letterboxed to --imgsz")
    p.set_defaults(native_val=TrainConfig.native_val)  # neither flag: decided by the model
    a("--val-fit", choices=["native", "pad"],
      help="validate as edge.run runs the exports: frames that fit the --val-imgsz input at their own size "
           "(native) or padded to it (pad), larger ones tiled; recorded in the checkpoint's preprocess.fit, so "
           "the epoch kept and its threshold are the runtime's (default: --native-val / --letterbox-val)")
    a("--val-imgsz", type=int, help="the exports' input size for --val-fit")
    a("--max-val-frames", type=int, help="validate on the first N frames only (0: all)")


def _run_options(p, a) -> None:
    a("--out")
    a("--resume", action="store_true", help="continue OUT/last.pt exactly")
    a("--exist-ok", action="store_true",
      help="OUT already holds a run: start this new one in the next free OUT2, OUT3, ... instead of refusing "
           "(a run is never overwritten)")
    a("--workers", type=int, help="DataLoader worker processes")
    a("--threads", type=int, help="torch.set_num_threads")
    a("--device", help="auto | cpu | cuda")
    a("--time-limit-min", type=float, help="stop cleanly (saving last) after N minutes")
    a("--set-lr", type=float,
      help="with --resume: continue at this learning rate (a manual step decay; the plateau schedule "
           "goes on from it)")
    a("--cache", action="store_true", help="keep decoded frames in memory")
    a("--quiet", action="store_true", help="no progress bars")


def explicit_options(argv) -> set[str]:
    """The options given on the command line: every default set to a marker no user can type."""
    unset = object()
    p = build_parser()
    p.set_defaults(**{f.name: unset for f in dataclasses.fields(TrainConfig)})
    return {k for k, v in vars(p.parse_known_args(argv)[0]).items() if v is not unset}


def init_arch(init: str) -> str:
    """The architecture of an --init checkpoint (a ladder name or a path), so --model need not repeat it."""
    from spire.models.checkpoint import read_checkpoint_file, resolve_checkpoint

    ckpt = read_checkpoint_file(resolve_checkpoint(init))
    arch = ckpt.get("arch") if isinstance(ckpt, dict) else None
    if not arch:
        raise UsageError(f"--init {init}: not a spire.train checkpoint (no architecture inside); pass a "
                         "ladder name (spire-s) or a best.pt written by spire.train")
    return str(arch)


def parse_config(argv=None) -> TrainConfig:
    """CLI -> TrainConfig; with --resume, OUT/train_args.json wins except for RUN_CONTROL options."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    from spire.models.registry import is_model, list_models

    if ns.finetune:
        if not ns.init:
            raise UsageError("--finetune starts from a trained model: add --init spire-s (a ladder name or a "
                             "checkpoint)")
        given = explicit_options(argv)
        for k, v in FINETUNE.items():
            if k not in given:
                setattr(ns, k, v)
    if ns.model is None:
        ns.model = init_arch(ns.init) if ns.init else TrainConfig.model
    if not is_model(ns.model):
        raise UsageError(f"--model {ns.model!r}: unknown model; choose one of {', '.join(list_models())}")
    from spire.models.registry import canonical_name

    kw = {k: v for k, v in vars(ns).items()}
    kw["model"] = canonical_name(kw["model"])
    kw["zoom"] = tuple(kw["zoom"])
    cfg = TrainConfig(**kw)
    saved = Path(cfg.out) / "train_args.json"
    if cfg.resume and saved.is_file():
        import json

        old = json.loads(saved.read_text())
        old["zoom"] = tuple(old.get("zoom", cfg.zoom))
        if isinstance(old.get("val_data"), str):  # runs saved before several validation roots existed
            old["val_data"] = [old["val_data"]]
        keep = {k: getattr(cfg, k) for k in RUN_CONTROL}
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        cfg = TrainConfig(**{**{k: v for k, v in old.items() if k in names}, **keep})
    if not cfg.data:
        raise UsageError("--data: give the training dataset root(s) (--resume takes them from OUT/train_args.json)")
    if cfg.data_weights is not None and len(cfg.data_weights) != len(cfg.data):
        raise UsageError(f"--data-weights: {len(cfg.data_weights)} weight(s) for {len(cfg.data)} --data root(s); "
                         "give one weight per root")
    if cfg.data_weights is not None and (min(cfg.data_weights) < 0 or max(cfg.data_weights) <= 0):
        raise UsageError("--data-weights: weights must be >= 0 and at least one > 0")
    if cfg.bg_weights is not None and (cfg.data_weights is None or len(cfg.bg_weights) != len(cfg.data)
                                       or min(cfg.bg_weights) < 0 or max(cfg.bg_weights) <= 0):
        raise UsageError("--bg-weights: needs --data-weights, one weight >= 0 per --data root, at least one > 0")
    if not 0.0 <= cfg.hard_ratio < 1.0 or (cfg.hard_ratio > 0) != bool(cfg.hard_negatives):
        raise UsageError("--hard-ratio R (0 <= R < 1) and --hard-negatives FILE go together: mine the file with "
                         "python -m spire.mine --data ... --split train --out FILE")
    if not 0.0 <= cfg.copy_paste <= 1.0:
        raise UsageError(f"--copy-paste {cfg.copy_paste}: must be a share of the background views in [0, 1]")
    if not 0.0 <= cfg.ema < 1.0:
        raise UsageError(f"--ema {cfg.ema}: the decay must be in [0, 1) (0.998 averages the last ~500 steps; 0 is off)")
    if cfg.frame_stride < 1 or cfg.val_frame_stride < 1:
        raise UsageError("--frame-stride / --val-frame-stride must be >= 1 (1 keeps every frame)")
    if cfg.threads is not None and cfg.threads < 1:
        raise UsageError(f"--threads {cfg.threads}: must be a whole number of CPU threads >= 1 (leave it out for "
                         "torch's default)")
    if cfg.imgsz % 32:
        raise UsageError(f"--imgsz {cfg.imgsz}: must be a multiple of 32 (e.g. {max(32, cfg.imgsz // 32 * 32)})")
    check_numbers(cfg)
    return cfg


def check_numbers(cfg: TrainConfig) -> None:
    """The options that used to end in a traceback minutes into a run, refused before any frame is read.

    `--batch 0`, `--lr -1` / `nan`, training on the validation data itself (every training frame was
    removed and compute_stats failed), and an `--out` under a file (the first write failed).
    """
    import math

    from edge.outputs.runfolders import check_out_path

    if isinstance(cfg.batch, bool) or not isinstance(cfg.batch, int) or cfg.batch < 1:
        raise UsageError(f"--batch {cfg.batch}: must be a whole number of frames >= 1")
    for flag, v in (("--lr", cfg.lr), ("--min-lr", cfg.min_lr), ("--set-lr", cfg.set_lr)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise UsageError(f"{flag} {v}: the learning rate must be a finite number > 0 (default {TrainConfig.lr:g})")
    if not 0 < cfg.lr_factor < 1 or not math.isfinite(cfg.lr_factor):
        raise UsageError(f"--lr-factor {cfg.lr_factor}: must be in (0, 1) (the plateau decay multiplies the lr)")
    if cfg.val_data:
        splits_meet = cfg.val_split == cfg.train_split or "all" in (cfg.val_split, cfg.train_split)
        same = sorted({str(Path(d).resolve()) for d in cfg.data} & {str(Path(v).resolve()) for v in cfg.val_data})
        if same and splits_meet:
            raise UsageError(f"--val-data {same[0]} --val-split {cfg.val_split} is the training data itself "
                             f"(--data, --train-split {cfg.train_split}): the model would be selected on frames it "
                             "trained on; pass another split or another validation root")
    check_out_path(cfg.out)
