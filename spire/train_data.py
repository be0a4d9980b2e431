"""What one training run learns from: the training frames, the validation sets and their split.

Why its own module: `spire.train` (the command and its loop) and `quantize.qat` (fake-quantised
fine-tuning) build the same data the same way, and QAT must not import a command-line module to
get it. Validation frames showing the same pixels as training frames are found by content and
left out of training; video roots are read every `--frame-stride`-th frame.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.errors import DatasetError

from .cli import UsageError, carve_split, open_roots
from .data import FrameStore, Reporter
from .train_config import TrainConfig

__all__ = ["build_data", "validation_keys", "add_synthetic", "copy_paste_bank", "domain_weights"]


def build_data(cfg: TrainConfig, pre_norm_needed: bool, channels: int, reporter: Reporter, quiet: bool = False):
    """Training FrameStore, validation datasets, split info and (if needed) pixel statistics."""
    from edge.inference.preprocess import compute_stats

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
            try:
                norm = compute_stats(frames(), channels=channels)
            except ValueError:  # every training frame was a validation frame (or none was readable)
                norm = None
        if norm is None and not len(store):
            raise DatasetError(f"{', '.join(cfg.data)}: no readable training frames left after removing the "
                               "validation frames; check --data/--train-split against --val-data/--val-split")
    else:
        for _ in frames():
            pass
    if cfg.hard_negatives:
        from edge.model.sidecar import file_sha256

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
    """N seeded synthetic frames (edge.datasets.synthetic, 8-bit AGC view) as in-memory training frames."""
    from tqdm import tqdm

    from edge.datasets.synthetic import make_frame

    for i in tqdm(range(n), desc="synthetic frames", unit="frame", leave=False, disable=not store.progress):
        fr = make_frame(size=max(256, size), seed=[int(seed), 1, i])
        store.add_frame(f"synthetic_{i:05d}", fr.frame, fr.points, domain)


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


def domain_weights(cfg: TrainConfig, store: FrameStore, weights=None) -> list[float] | None:
    """--data-weights (or `weights`), plus the synthetic frames' domain at the mean weight; None: as the data comes."""
    if not cfg.data_weights:
        return None
    w = list(weights if weights is not None else cfg.data_weights)
    if cfg.synthetic:
        w.append(sum(w) / len(w))
    return w
