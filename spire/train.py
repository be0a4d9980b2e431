"""`python -m spire.train`: train a heatmap point detector, resumable, single process or DDP.

Why one CLI owns the whole recipe: the shipped model is trained with it, so everything that
decides the result (data roots and splits, the validation split, normalisation statistics,
codec, augmentation, schedule, seed, commit) is recorded next to the weights, and a run that is
cut off (`--time-limit-min`, Ctrl-C, a lost session) continues exactly with `--resume`.

    python -m spire.train --model hrpe_lite --data /data/nuaa-sirst /data/sirst-v2 \
        --val-data /data/sirst-v2 --val-split val --imgsz 256 --epochs 200 --out runs/lite
    torchrun --nproc_per_node 2 -m spire.train ...         # DDP (gloo on CPU, nccl on GPU)

Writes OUT/last.pt, OUT/best.pt (+ OUT/metadata.json describing best.pt), OUT/log.csv,
OUT/train_args.json and OUT/summary.json. Recipe (method.md §6): AdamW, linear warm-up over the
first epoch (<= --warmup-iters), ReduceLROnPlateau on the validation F1, model selection on the
validation F1 (never on a test list), 2 x MSE on PRPS / Gaussian targets.
"""
from __future__ import annotations

import dataclasses
import errno
import signal
import sys
import time
from pathlib import Path

import torch

from edge.cli import run_cli
from edge.errors import SpireEdgeError

from .cli import UsageError, git_commit, write_json
from .data import Reporter, TrainDataset, collate_skip
from .plan import Mixture, PlanSampler
from .augment import AugmentConfig
from . import engine
from .engine import RunState, build_meta, load_last, save_best, save_last, write_log
from .train_config import RUN_CONTROL, TrainConfig, build_parser, parse_config  # noqa: F401  (public API)
from .train_contract import deployment, inherit_deployment, load_init
from .train_data import build_data, copy_paste_bank, domain_weights
from .validation import Validation, validate, validation_path  # noqa: F401  (public API)


def make_ema(model, decay: float, resume=None):
    """--ema: an AveragedModel of `model` (buffers too, so BN statistics are averaged), restored from
    last.pt on --resume; None when the decay is 0.

    Why: with a few thousand steps per run and validation every few epochs, the raw weights at an
    evaluation are one noisy point of the trajectory; the average is what a longer schedule
    would converge towards, and it is what gets validated and saved as best.pt.
    """
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    if resume is not None and resume.ckpt.get("ema") is not None:
        ema.load_state_dict(resume.ckpt["ema"])
    return ema


def set_learning_rate(opt, sched, lr: float) -> None:
    """Put every param group at `lr`; the plateau scheduler restarts its patience from there."""
    for g in opt.param_groups:
        g["lr"] = float(lr)
    sched.num_bad_epochs = 0
    sched._last_lr = [float(lr) for _ in opt.param_groups]


@dataclasses.dataclass
class Job:
    """One run's fixed frame: its options, where it runs and writes, and what it resumes."""

    cfg: TrainConfig
    info: object
    out: Path
    quiet: bool
    reporter: Reporter
    resume: object | None
    claimed: str | None = None  # the folder this process claimed (edge.outputs.runfolders), released when the run ends


@dataclasses.dataclass
class Parts:
    """What is trained on what: the network, its input and decoder, the data, the validation path."""

    model: torch.nn.Module
    mcfg: object
    pre: object
    codec: object
    init: dict | None
    store: object
    val_sets: list
    split: dict
    val: tuple  # (preprocess, codec, Predictor mode, description): validation_path
    aug: AugmentConfig


@dataclasses.dataclass
class Loop:
    """The optimisation state carried from epoch to epoch (saved in last.pt)."""

    opt: object
    sched: object
    sampler: PlanSampler
    batches: int
    warm: object
    st: RunState
    ema: object
    meta: dict
    ds: TrainDataset
    net: torch.nn.Module
    val_cache: list | None


def _start(cfg: TrainConfig) -> Job:
    """Processes, threads and seed; the run folder (never overwritten) and what --resume continues."""
    info = engine.setup_distributed(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    claimed = None
    if not cfg.resume:  # a run is never overwritten: refuse, or --exist-ok -> OUT2, OUT3 (edge.outputs.runfolders)
        from edge.outputs.runfolders import train_out_folder

        where = train_out_folder(cfg.out, cfg.exist_ok) if info.is_main else None  # claimed atomically
        where = engine.broadcast_object((str(where[0]), where[1]) if where else None, info)
        if where[1] and info.is_main:
            print(where[1], file=sys.stderr)
        cfg = dataclasses.replace(cfg, out=where[0])
        claimed = cfg.out if info.is_main else None
    out = Path(cfg.out)
    resume = load_last(out) if cfg.resume else None
    if cfg.resume and info.is_main:
        print(f"note: {out / 'last.pt'} not found; starting a new run" if resume is None else
              f"resuming {out / 'last.pt'} (options from train_args.json; only "
              f"{', '.join(k for k in RUN_CONTROL if k not in ('resume', 'out', 'quiet'))} may change)", file=sys.stderr)
    return Job(cfg, info, out, cfg.quiet or not info.is_main, Reporter(enabled=info.is_main), resume, claimed)


def _parts(job: Job) -> Parts:
    """The network (fresh, --init or resumed), its normalisation, codec, data and validation path."""
    from spire.models import create_model

    cfg, resume = job.cfg, job.resume
    model = create_model(cfg.model)
    mcfg = model.cfg.replace(input_size=cfg.imgsz)
    if cfg.codec:
        mcfg = mcfg.replace(codec={**mcfg.codec, "type": cfg.codec})
    pre = mcfg.preprocess_config(cfg.imgsz)
    init = load_init(cfg, model) if cfg.init and resume is None else None
    cfg = job.cfg = inherit_deployment(cfg, init)
    need_stats = pre.norm.mode == "mean-std" and resume is None and init is None
    store, val_sets, split, norm = build_data(cfg, need_stats, pre.channels, job.reporter, job.quiet)
    if resume is not None:
        mcfg = mcfg.replace(norm=resume.meta["preprocess"]["norm"])
    elif init is not None:  # the weights were trained on inputs normalised this way
        mcfg = mcfg.replace(norm=init["meta"]["preprocess"]["norm"])
    elif norm is not None:
        mcfg = mcfg.replace(norm=norm.to_dict())
    pre, codec = mcfg.preprocess_config(cfg.imgsz), mcfg.build_codec(cfg.imgsz)
    mcfg = mcfg.replace(codec=codec.to_dict())
    model.cfg = mcfg
    native = (not mcfg.scale_up) if cfg.native_val is None else cfg.native_val
    if cfg.val_fit:  # how frames reach the exports is the model's own: the sidecar carries it to them
        pre = dataclasses.replace(pre, fit=cfg.val_fit)
    aug = AugmentConfig(zoom=cfg.zoom, dihedral=not cfg.no_flip, crop=None if mcfg.scale_up else cfg.imgsz,
                        photometric=cfg.photometric)
    parts = Parts(model, mcfg, pre, codec, init, store, val_sets, split,
                  validation_path(cfg, mcfg, pre, codec, native), aug)
    if job.info.is_main:
        print(f"train: {split['train_frames']} frames ({len(store.positives)} with {store.targets} targets, "
              f"{len(store.negatives)} background); {split['val_frames_excluded_from_train']} frame(s) showing "
              f"validation pixels excluded from training, {split['exact_duplicates_skipped']} exact duplicate(s) "
              f"skipped; val: {split['val_frames']} frames ({parts.val[3]}); norm {pre.norm.to_dict()}")
    return parts


def _loop_state(job: Job, p: Parts) -> Loop:
    """Optimiser, schedule, sampler, warm-up, EMA and the run's meta (restored on --resume)."""
    cfg, info, model = job.cfg, job.info, p.model
    model.to(info.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=cfg.lr_factor,
                                                       patience=cfg.lr_patience, min_lr=cfg.min_lr)
    mix = Mixture(cfg.bg_ratio, domain_weights(cfg, p.store), cfg.epoch_size,
                  domain_weights(cfg, p.store, cfg.bg_weights), cfg.hard_ratio)
    sampler = PlanSampler(p.store, cfg.seed, mix, info.rank, info.world)
    batches = -(-sampler.epoch_len() // cfg.batch)
    st = RunState()
    if job.resume is not None:
        st = job.resume.restore(model, opt, sched)
        if cfg.set_lr:
            set_learning_rate(opt, sched, cfg.set_lr)
            if info.is_main:
                print(f"note: learning rate set to {cfg.set_lr:g} from epoch {st.epoch + 1} (--set-lr)")
    elif cfg.set_lr:
        raise UsageError("--set-lr changes a resumed run's learning rate; use --lr for a new run")
    bank = copy_paste_bank(cfg, p.store, p.split)
    init = ({"path": str(cfg.init), "sha256": p.init["sha256"]} if p.init is not None
            else (job.resume.meta.get("training") or {}).get("init") if job.resume is not None else None)
    meta = build_meta(model, *deployment(cfg, p.mcfg, p.pre, p.codec), {
        "model": cfg.model, "imgsz": cfg.imgsz, "epochs": cfg.epochs, "batch": cfg.batch, "world_size": info.world,
        "seed": cfg.seed, "commit": git_commit(), "loss": cfg.loss, "lr": cfg.lr, "split": p.split, "init": init,
        "augment": dataclasses.asdict(p.aug), "bg_ratio": cfg.bg_ratio, "ema": cfg.ema or None,
        "validation": p.val[3]})
    net = model if not info.distributed else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[info.local_rank] if info.device.type == "cuda" else None)
    return Loop(opt, sched, sampler, batches, engine.Warmup([cfg.lr], min(cfg.warmup_iters, batches)), st,
                make_ema(model, cfg.ema, job.resume), meta, TrainDataset(p.store, p.pre, p.codec, p.aug, cfg.seed, *bank),
                net, [[] for _ in p.val_sets] if cfg.cache else None)


class StopControl:
    """First Ctrl-C / SIGTERM or --time-limit-min: finish the batch, save last.pt, stop (a second: at once)."""

    def __init__(self, job: Job) -> None:
        self.job, self.sig, self.t_start = job, 0, time.monotonic()
        self.limit = job.cfg.time_limit_min * 60.0
        self._old = {}

    def __enter__(self) -> "StopControl":
        self._old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)

    def _on_signal(self, signum, frame) -> None:
        if self.sig:
            raise KeyboardInterrupt
        self.sig = int(signum)
        # a validation pass can take minutes on a CPU: say that the signal was heard and what comes next
        print(f"spire.train: {signal.Signals(signum).name} received; stopping after the current batch or "
              "validation pass and saving last.pt (send it again to stop at once)", file=sys.stderr, flush=True)

    def __call__(self) -> bool:
        local = bool(self.sig) or (self.limit > 0 and time.monotonic() - self.t_start > self.limit)
        info = self.job.info
        if info.distributed:  # every rank stops at the same batch
            t = torch.tensor([1.0 if local else 0.0], device=info.device)
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
            return bool(t.item())
        return local


def _epoch(job: Job, p: Parts, lp: Loop, should_stop: StopControl) -> bool:
    """One epoch: train, validate when due, save last (and best), log; True when the run must stop."""
    from tqdm import tqdm

    cfg, info, st = job.cfg, job.info, lp.st
    epoch = st.epoch
    lp.sampler.set_epoch(epoch, skip=st.step * cfg.batch)
    loader = torch.utils.data.DataLoader(lp.ds, batch_size=cfg.batch, sampler=lp.sampler, collate_fn=collate_skip,
                                         num_workers=cfg.workers, pin_memory=info.device.type == "cuda")
    bar = tqdm(total=lp.batches, initial=st.step, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
               disable=job.quiet, leave=False)
    t0 = time.monotonic()
    r = engine.train_one_epoch(lp.net, loader, engine.StepRule(lp.opt, cfg.loss, cfg.grad_clip, lp.warm, lp.ema),
                               device=info.device, global_step=st.global_step, start_step=st.step,
                               should_stop=should_stop, progress=None if job.quiet else bar)
    bar.close()
    if info.distributed:  # log the loss of all ranks, not rank 0's share only
        t = torch.tensor([r["loss_sum"], float(r["batches"])], dtype=torch.float64, device=info.device)
        torch.distributed.all_reduce(t)
        r["loss_sum"], r["batches"] = float(t[0]), int(t[1])
    st.absorb(r, time.monotonic() - t0)
    args = dataclasses.asdict(cfg)
    if r["stopped"] and st.step < lp.batches:
        if info.is_main:
            save_last(job.out, p.model, lp.meta, lp.opt, lp.sched, st, args, lp.ema)
            print(f"stopped in epoch {epoch + 1} after {st.step}/{lp.batches} batches; continue with --resume",
                  file=sys.stderr)
        return True
    row = st.finish_epoch(lp.opt.param_groups[0]["lr"])
    scored = p.model if lp.ema is None else lp.ema.module  # the weights that are validated and shipped
    if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs or r["stopped"]:
        val = None
        if info.is_main:
            te = time.monotonic()
            vpre, vcodec, vmode, _ = p.val
            val = validate(scored, Validation(p.val_sets, vpre, vcodec, vmode, job.reporter, cfg.max_val_frames,
                                              lp.val_cache, job.quiet), info)
            val["seconds"] = time.monotonic() - te
        val = engine.broadcast_object(val, info)
        lp.sched.step(val["f1"])
        st.record_val(row, val)
    if info.is_main:
        save_last(job.out, p.model, lp.meta, lp.opt, lp.sched, st, args, lp.ema)
        if st.improved:
            save_best(job.out, scored, lp.meta, st)
        write_log(job.out / "log.csv", st.history)
        print(st.epoch_line(cfg.epochs), flush=True)
    return bool(r["stopped"])


def _summary(job: Job, p: Parts, lp: Loop, stopped: bool, stop: StopControl) -> dict:
    """OUT/summary.json: how far the run got, its best epoch, and whether every rank holds the same weights."""
    st, info = lp.st, job.info
    summary = {"out": str(job.out), "epochs_done": st.epoch, "epochs": job.cfg.epochs, "stopped_early": stopped,
               "best": st.best, "best_epoch": st.best_epoch, "world_size": info.world,
               "data_problems": job.reporter.messages, "seconds": time.monotonic() - stop.t_start,
               "stopped_by_signal": stop.sig or None}
    sums = [engine.param_checksum(p.model)]
    if info.distributed:
        sums = [None] * info.world
        torch.distributed.all_gather_object(sums, engine.param_checksum(p.model))
    summary.update(rank_checksums=sums, ranks_agree=len(set(sums)) == 1)
    if info.is_main:
        write_json(job.out / "summary.json", summary)
    return summary


def train(cfg: TrainConfig) -> dict:
    """Run (or resume) one training run; returns the summary written to OUT/summary.json."""
    from edge.outputs.runfolders import release_claim

    job = _start(cfg)
    try:
        parts = _parts(job)
        lp = _loop_state(job, parts)
        if job.info.is_main:
            job.out.mkdir(parents=True, exist_ok=True)
            write_json(job.out / "train_args.json", dataclasses.asdict(job.cfg))
        stopped = False
        with StopControl(job) as stop:
            while lp.st.epoch < job.cfg.epochs and not stopped:
                stopped = _epoch(job, parts, lp, stop)
        summary = _summary(job, parts, lp, stopped, stop)
    finally:  # the claim ends with the run; a run that failed before writing leaves no empty folder
        release_claim(job.claimed)
    engine.cleanup_distributed()
    return summary


def print_next(cfg: TrainConfig, summary: dict) -> None:
    """`saved:` the model kept and its operating point, then `next:` the command that deploys it."""
    best = Path(summary["out"]) / "best.pt"
    b = summary.get("best") or {}
    if not best.is_file():
        print(f"saved: nothing yet (no validation finished); continue with --resume --out {summary['out']}")
        return
    print(f"saved: {best} (epoch {summary.get('best_epoch')}: F1 {b.get('f1', 0):.3f}, recall "
          f"{b.get('recall', 0):.3f}, {b.get('fppi', 0):.3f} false pts/frame on the validation frames, at "
          f"threshold {b.get('thr')} picked on them)")
    print(f"next: python -m export --weights {best} --target openvino --precision int8 --data {cfg.data[0]}")


# What a write fails with when the disk is full, the quota is spent or the folder became read-only.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def main(argv=None) -> int:
    cfg = parse_config(argv)
    try:
        summary = train(cfg)
    except KeyboardInterrupt:  # a second Ctrl-C / SIGTERM: stopped at once (last.pt is the last epoch's)
        print("interrupted: stopped at once; continue with --resume", file=sys.stderr)
        return 130
    except OSError as e:  # a full disk or a read-only / over-quota folder: one line, not a traceback
        if e.errno not in DISK_ERRNOS:
            raise
        raise SpireEdgeError(f"{e.filename or cfg.out}: cannot write ({e.strerror or e}); free space (or pick a "
                             "writable --out) and continue the run with --resume (last.pt is the last saved "
                             "epoch's, written atomically)") from None
    print_next(cfg, summary)
    sig = summary.get("stopped_by_signal")
    return 128 + int(sig) if sig else 0  # 130 after Ctrl-C, 143 after SIGTERM, as a shell reports them


if __name__ == "__main__":
    sys.exit(run_cli(main))
