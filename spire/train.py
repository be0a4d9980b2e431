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
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch

from edge.cli import run_cli
from edge.errors import DatasetError
from edge.metrics.operating import THR_GRID, best_operating_point

from .cli import UsageError, carve_split, git_commit, open_roots, write_json
from .data import FrameStore, Reporter, TrainDataset, collate_skip, iter_eval_frames
from .plan import Mixture, PlanSampler
from .augment import AugmentConfig
from . import engine
from .engine import RunState, build_meta, load_last, save_best, save_last, write_log
from .train_config import RUN_CONTROL, TrainConfig, build_parser, parse_config  # noqa: F401  (public API)


def build_data(cfg: TrainConfig, pre_norm_needed: bool, channels: int, reporter: Reporter, quiet: bool = False):
    """Training FrameStore, validation datasets, split info and (if needed) pixel statistics."""
    from edge.preprocess import compute_stats

    train_sets = open_roots(cfg.data, cfg.format, cfg.train_split, reporter=reporter, stride=cfg.frame_stride)
    store = FrameStore(reporter=reporter, cache=cfg.cache, progress=not quiet)
    if cfg.val_data:
        val_sets = open_roots(cfg.val_data, cfg.format, cfg.val_split, reporter=reporter, stride=cfg.val_frame_stride)
        val_keys = validation_keys(val_sets, store, quiet)
        split = {"val_data": list(cfg.val_data), "val_split": cfg.val_split, "val_frame_stride": cfg.val_frame_stride}
    else:
        val_names = carve_split([n for d in train_sets for n in d.names], cfg.val_fraction, cfg.seed)
        val_sets, taken = [], set()
        for d in train_sets:
            mine = {n for n in d.names if n in val_names and n not in taken}
            taken |= mine
            if mine:
                val_sets += open_roots([d.root], cfg.format, cfg.train_split, exclude=set(d.names) - mine,
                                       reporter=reporter, stride=cfg.frame_stride)
        val_keys = validation_keys(val_sets, store, quiet)
        split = {"val_fraction": cfg.val_fraction, "val_seed": cfg.seed}

    def frames():
        for k, d in enumerate(train_sets):
            yield from store.iter_add(d, val_keys, desc=f"indexing {Path(str(d.root)).name}", domain=k)

    norm = None
    if pre_norm_needed:
        with _tqdm_disabled(quiet):
            norm = compute_stats(frames(), channels=channels)
    else:
        for _ in frames():
            pass
    if cfg.hard_negatives:
        from edge.sidecar import file_sha256

        from .mine import read_hard_negatives

        n = store.attach_hard_negatives(read_hard_negatives(cfg.hard_negatives),
                                        [Path(str(d.root)).name for d in train_sets])
        if not n:
            raise UsageError(f"--hard-negatives {cfg.hard_negatives}: none of its frames is a training frame of "
                             f"{', '.join(cfg.data)}; mine these roots' --train-split with python -m spire.mine")
        split["hard_negatives"] = {"file": str(cfg.hard_negatives), "sha256": file_sha256(cfg.hard_negatives),
                                   "points": n, "frames": len(store.hard), "ratio": cfg.hard_ratio}
    if cfg.synthetic:
        add_synthetic(store, cfg.synthetic, cfg.seed, cfg.imgsz, domain=len(train_sets))
    if not len(store):
        raise DatasetError(f"{', '.join(cfg.data)}: no readable training frames left after removing the "
                           "validation names; check --data/--train-split")
    split.update({"train": [{"root": str(d.root), "split": cfg.train_split, "format": d.format} for d in train_sets],
                  "train_frames": len(store), "train_targets": store.targets,
                  "frame_stride": cfg.frame_stride,
                  "domains": [{"root": str(d.root), "frames": sum(r.domain == k for r in store.records),
                               "with_targets": sum(r.domain == k and len(r.points) > 0 for r in store.records),
                               "weight": cfg.data_weights[k] if cfg.data_weights else None,
                               "bg_weight": (cfg.bg_weights or cfg.data_weights or [None] * len(train_sets))[k]}
                              for k, d in enumerate(train_sets)],
                  "val_frames_excluded_from_train": store.excluded, "exact_duplicates_skipped": store.duplicates,
                  "val_frames": sum(len(d) for d in val_sets),
                  "synthetic": cfg.synthetic})
    return store, val_sets, split, norm


def validation_keys(val_sets, store: FrameStore, quiet: bool) -> set[str]:
    """`content_key`s of every validation frame: training frames with the same pixels are left out."""
    from tqdm import tqdm

    from .data import content_key

    keys = set()
    for d in val_sets:
        for i, name in enumerate(tqdm(d.names, desc=f"hashing val {Path(str(d.root)).name}", unit="frame",
                                      leave=False, disable=quiet)):
            got = store.read(d, i, name)
            if got is not None:
                keys.add(content_key(got[0]))
    return keys


def _tqdm_disabled(quiet: bool):
    """Silence progress bars drawn inside edge helpers (compute_stats) for --quiet / other ranks."""
    import contextlib
    from functools import partialmethod

    from tqdm import tqdm

    if not quiet:
        return contextlib.nullcontext()
    from unittest import mock

    return mock.patch.object(tqdm, "__init__", partialmethod(tqdm.__init__, disable=True))


def add_synthetic(store: FrameStore, n: int, seed: int, size: int, domain: int = 0) -> None:
    """N seeded synthetic frames (edge.synthetic, 8-bit AGC view) as in-memory training frames."""
    from tqdm import tqdm

    from edge.synthetic import make_frame

    for i in tqdm(range(n), desc="synthetic frames", unit="frame", leave=False, disable=not store.progress):
        fr = make_frame(size=max(256, size), seed=[int(seed), 1, i])
        store.add_frame(f"synthetic_{i:05d}", fr.frame, fr.points, domain)


def _load_init(cfg: TrainConfig, model) -> dict:
    """Load --init's weights into `model` (same architecture, strict); returns the checkpoint."""
    from spire.models.checkpoint import read_checkpoint_file, resolve_checkpoint

    path = resolve_checkpoint(cfg.init)
    ckpt = read_checkpoint_file(path)
    from spire.models.registry import canonical_name

    if canonical_name(ckpt.get("arch") or "") != cfg.model:  # old names are aliases (hrpe_dense = spire_m)
        try:  # another architecture with the very same parameters (spire_s -> spire_s_local: a new gate pooling)
            model.load_state_dict(ckpt["model"])
        except RuntimeError:
            raise UsageError(f"--init {path}: a {ckpt.get('arch')!r} checkpoint cannot start a --model {cfg.model} "
                             "run (its weights do not fit)") from None
        print(f"note: --init {path}: {ckpt.get('arch')!r} weights start a {cfg.model} run (same parameters)",
              file=sys.stderr)
    model.load_state_dict(ckpt["model"])
    from edge.sidecar import file_sha256
    from spire.models.checkpoint import apply_contract

    apply_contract(path, ckpt)  # its sidecar's fit, size and threshold: how the model is deployed
    return {**ckpt, "sha256": file_sha256(path)}


def deployment(cfg: TrainConfig, mcfg, pre, codec):
    """(preprocess, codec) of the model as it is deployed, stored in its checkpoint (edge.contract).

    Why: the network is trained on --imgsz crops but runs on --val-imgsz inputs (frames that fit
    at their own size or padded, as --val-fit says; larger ones tiled); exporting, quantising and
    evaluating the checkpoint must use that size without being told. A model that letterboxes
    whole frames (scale_up) is deployed at its training size.
    """
    if cfg.val_fit or not pre.scale_up:
        return dataclasses.replace(pre, imgsz=cfg.val_imgsz), mcfg.build_codec(cfg.val_imgsz)
    return pre, codec


def inherit_deployment(cfg: TrainConfig, init: dict | None) -> TrainConfig:
    """--init without --val-fit: validate and deploy as the model it starts from is deployed."""
    if init is None or cfg.val_fit or not init.get("deployed"):
        return cfg
    ipre = init["meta"]["preprocess"]
    return dataclasses.replace(cfg, val_fit=ipre.get("fit") or "native", val_imgsz=int(ipre["imgsz"]))  # recorded in the sidecar: the path may be overwritten later


def copy_paste_bank(cfg: TrainConfig, store, split: dict) -> tuple:
    """(TargetBank, PasteConfig) for --copy-paste (recorded in split['copy_paste']), else (None, None)."""
    if not cfg.copy_paste:
        return None, None
    from .paste import PasteConfig, TargetBank

    bank = TargetBank.from_store(store, np.random.default_rng([cfg.seed, 7]))
    paste = PasteConfig(prob=cfg.copy_paste)
    split["copy_paste"] = {"prob": paste.prob, "patches": len(bank), "max_targets": paste.max_targets,
                           "scale": list(paste.scale), "gain": list(paste.gain)}
    return bank, paste


def _domain_weights(cfg: TrainConfig, store: FrameStore, weights=None) -> list[float] | None:
    """--data-weights (or `weights`), plus the synthetic frames' domain at the mean weight; None: as the data comes."""
    if not cfg.data_weights:
        return None
    w = list(weights if weights is not None else cfg.data_weights)
    if cfg.synthetic:
        w.append(sum(w) / len(w))
    return w


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


def validation_path(cfg: TrainConfig, mcfg, pre, codec, native: bool):
    """(preprocess, codec, Predictor mode, description) of validation: with --val-fit, edge.run's
    path on the exports (their --val-imgsz input, the model's fit, larger frames tiled); else whole
    frames ('native') or letterboxed to the crop size ('resize')."""
    if cfg.val_fit:
        return (dataclasses.replace(pre, imgsz=cfg.val_imgsz), mcfg.build_codec(cfg.val_imgsz), "auto",
                f"as edge.run on {cfg.val_imgsz} px exports, fit {cfg.val_fit}")
    if native:
        return pre, codec, "native", "native resolution, padded to 32"
    return pre, codec, "resize", f"letterbox {pre.imgsz}"


def validate(model, val_sets, pre, codec, info, mode: str, reporter, max_frames: int, cache, quiet) -> dict:
    """Validation metrics of the unwrapped model (rank 0 only), through edge's Predictor in `mode`
    (validation_path: the same path spire.evaluate and edge.run take).

    Each validation set is scored on its own; one decode threshold is chosen for all of them and
    the model's score is the worst set's F1 (`edge.metrics.operating.joint_operating_point`), so
    a model cannot be selected for one domain at another's expense. `max_frames` caps each set.
    """
    from itertools import islice

    from edge.metrics.operating import joint_operating_point
    from edge.metrics.points import PointMetrics
    from spire.torch_backend import torch_predictor

    pred = torch_predictor(model, pre, codec, mode=mode, device=info.device)
    per_set = {}
    for k, ds in enumerate(val_sets):
        metrics = PointMetrics()
        frames = iter_eval_frames(ds, reporter, cache[k] if cache is not None else None)
        if max_frames:
            frames = islice(frames, max_frames)
        engine.score_frames(pred, frames, metrics, thr=min(THR_GRID[0], codec.thr), progress=not quiet)
        name = Path(str(ds.root)).name
        per_set[name if name not in per_set else f"{name}_{k}"] = metrics
    return joint_operating_point(per_set, codec.thr)


def train(cfg: TrainConfig) -> dict:
    """Run (or resume) one training run; returns the summary written to OUT/summary.json."""
    from spire.models import create_model

    info = engine.setup_distributed(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    if not cfg.resume:  # a run is never overwritten: refuse, or --exist-ok -> OUT2, OUT3 (edge.runfolders)
        from edge.runfolders import train_out_folder

        where = train_out_folder(cfg.out, cfg.exist_ok) if info.is_main else None
        where = engine.broadcast_object((str(where[0]), where[1]) if where else None, info)
        if where[1] and info.is_main:
            print(where[1], file=sys.stderr)
        cfg = dataclasses.replace(cfg, out=where[0])
    out = Path(cfg.out)
    quiet = cfg.quiet or not info.is_main
    reporter = Reporter(enabled=info.is_main)
    resume = load_last(out) if cfg.resume else None
    if cfg.resume and info.is_main:
        print(f"note: {out / 'last.pt'} not found; starting a new run" if resume is None else
              f"resuming {out / 'last.pt'} (options from train_args.json; only "
              f"{', '.join(k for k in RUN_CONTROL if k not in ('resume', 'out', 'quiet'))} may change)", file=sys.stderr)

    model = create_model(cfg.model)
    mcfg = model.cfg.replace(input_size=cfg.imgsz)
    if cfg.codec:
        mcfg = mcfg.replace(codec={**mcfg.codec, "type": cfg.codec})
    pre = mcfg.preprocess_config(cfg.imgsz)
    init = _load_init(cfg, model) if cfg.init and resume is None else None
    cfg = inherit_deployment(cfg, init)
    need_stats = pre.norm.mode == "mean-std" and resume is None and init is None
    store, val_sets, split, norm = build_data(cfg, need_stats, pre.channels, reporter, quiet)
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
    val_pre, val_codec, val_mode, val_desc = validation_path(cfg, mcfg, pre, codec, native)
    aug = AugmentConfig(zoom=cfg.zoom, dihedral=not cfg.no_flip, crop=None if mcfg.scale_up else cfg.imgsz,
                        photometric=cfg.photometric)
    if info.is_main:
        print(f"train: {split['train_frames']} frames ({len(store.positives)} with {store.targets} targets, "
              f"{len(store.negatives)} background); {split['val_frames_excluded_from_train']} frame(s) showing "
              f"validation pixels excluded from training, {split['exact_duplicates_skipped']} exact duplicate(s) "
              f"skipped; val: {split['val_frames']} frames "
              f"({val_desc}); norm {pre.norm.to_dict()}")

    model.to(info.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=cfg.lr_factor,
                                                       patience=cfg.lr_patience, min_lr=cfg.min_lr)
    mix = Mixture(cfg.bg_ratio, _domain_weights(cfg, store), cfg.epoch_size,
                  _domain_weights(cfg, store, cfg.bg_weights), cfg.hard_ratio)
    sampler = PlanSampler(store, cfg.seed, mix, info.rank, info.world)
    batches = -(-sampler.epoch_len() // cfg.batch)
    warm = engine.Warmup([cfg.lr], min(cfg.warmup_iters, batches))
    st = RunState()
    if resume is not None:
        st = resume.restore(model, opt, sched)
        if cfg.set_lr:
            set_learning_rate(opt, sched, cfg.set_lr)
            if info.is_main:
                print(f"note: learning rate set to {cfg.set_lr:g} from epoch {st.epoch + 1} (--set-lr)")
    elif cfg.set_lr:
        raise UsageError("--set-lr changes a resumed run's learning rate; use --lr for a new run")
    ema = make_ema(model, cfg.ema, resume)
    bank = copy_paste_bank(cfg, store, split)
    meta = build_meta(model, *deployment(cfg, mcfg, pre, codec), {
        "model": cfg.model, "imgsz": cfg.imgsz, "epochs": cfg.epochs, "batch": cfg.batch, "world_size": info.world,
        "seed": cfg.seed, "commit": git_commit(), "loss": cfg.loss, "lr": cfg.lr, "split": split,
        "init": ({"path": str(cfg.init), "sha256": init["sha256"]} if init is not None
                 else (resume.meta.get("training") or {}).get("init") if resume is not None else None),
        "augment": dataclasses.asdict(aug), "bg_ratio": cfg.bg_ratio, "ema": cfg.ema or None,
        "validation": val_desc})
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "train_args.json", dataclasses.asdict(cfg))
    net = model
    if info.distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[info.local_rank] if info.device.type == "cuda" else None)
    ds = TrainDataset(store, pre, codec, aug, cfg.seed, *bank)
    val_cache = [[] for _ in val_sets] if cfg.cache else None

    t_start, stop_flag = time.monotonic(), {"sig": False}
    limit = cfg.time_limit_min * 60.0

    def on_signal(signum, frame):  # first Ctrl-C / SIGTERM: finish the batch, save last, exit 130 / 143
        if stop_flag["sig"]:
            raise KeyboardInterrupt
        stop_flag["sig"] = int(signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def should_stop() -> bool:
        local = stop_flag["sig"] or (limit > 0 and time.monotonic() - t_start > limit)
        if info.distributed:
            t = torch.tensor([1.0 if local else 0.0], device=info.device)
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
            return bool(t.item())
        return local

    from tqdm import tqdm

    stopped = False
    try:
        while st.epoch < cfg.epochs and not stopped:
            epoch = st.epoch
            sampler.set_epoch(epoch, skip=st.step * cfg.batch)
            loader = torch.utils.data.DataLoader(ds, batch_size=cfg.batch, sampler=sampler, collate_fn=collate_skip,
                                                 num_workers=cfg.workers, pin_memory=info.device.type == "cuda")
            bar = tqdm(total=batches, initial=st.step, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                       disable=quiet, leave=False)
            t0 = time.monotonic()
            r = engine.train_one_epoch(net, loader, engine.StepRule(opt, cfg.loss, cfg.grad_clip, warm, ema),
                                       device=info.device, global_step=st.global_step, start_step=st.step,
                                       should_stop=should_stop, progress=None if quiet else bar)
            bar.close()
            if info.distributed:  # log the loss of all ranks, not rank 0's share only
                t = torch.tensor([r["loss_sum"], float(r["batches"])], dtype=torch.float64, device=info.device)
                torch.distributed.all_reduce(t)
                r["loss_sum"], r["batches"] = float(t[0]), int(t[1])
            st.absorb(r, time.monotonic() - t0)
            if r["stopped"] and st.step < batches:
                stopped = True
                if info.is_main:
                    save_last(out, model, meta, opt, sched, st, dataclasses.asdict(cfg), ema)
                    print(f"stopped in epoch {epoch + 1} after {st.step}/{batches} batches; "
                          f"continue with --resume", file=sys.stderr)
                break
            row = st.finish_epoch(opt.param_groups[0]["lr"])
            scored = model if ema is None else ema.module  # the weights that are validated and shipped
            if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs or r["stopped"]:
                val = None
                if info.is_main:
                    te = time.monotonic()
                    val = validate(scored, val_sets, val_pre, val_codec, info, val_mode, reporter,
                                   cfg.max_val_frames, val_cache, quiet)
                    val["seconds"] = time.monotonic() - te
                val = engine.broadcast_object(val, info)
                sched.step(val["f1"])
                st.record_val(row, val)
            if info.is_main:
                save_last(out, model, meta, opt, sched, st, dataclasses.asdict(cfg), ema)
                if st.improved:
                    save_best(out, scored, meta, st)
                write_log(out / "log.csv", st.history)
                print(st.epoch_line(cfg.epochs), flush=True)
            stopped = r["stopped"]
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    summary = {"out": str(out), "epochs_done": st.epoch, "epochs": cfg.epochs, "stopped_early": stopped, "best": st.best,
               "best_epoch": st.best_epoch, "world_size": info.world, "data_problems": reporter.messages,
               "seconds": time.monotonic() - t_start, "stopped_by_signal": stop_flag["sig"] or None}
    sums = [engine.param_checksum(model)]
    if info.distributed:
        sums = [None] * info.world
        torch.distributed.all_gather_object(sums, engine.param_checksum(model))
    summary.update(rank_checksums=sums, ranks_agree=len(set(sums)) == 1)
    if info.is_main:
        write_json(out / "summary.json", summary)
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


def main(argv=None) -> int:
    cfg = parse_config(argv)
    try:
        summary = train(cfg)
    except KeyboardInterrupt:  # a second Ctrl-C / SIGTERM: stopped at once (last.pt is the last epoch's)
        print("interrupted: stopped at once; continue with --resume", file=sys.stderr)
        return 130
    print_next(cfg, summary)
    sig = summary.get("stopped_by_signal")
    return 128 + int(sig) if sig else 0  # 130 after Ctrl-C, 143 after SIGTERM, as a shell reports them


if __name__ == "__main__":
    sys.exit(run_cli(main))
