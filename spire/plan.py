"""Epochs as plans: which frames an epoch shows, as target or background views, in which order.

Why its own module: the plan is pure bookkeeping (numpy, no torch tensors) with rules of its own
(the designed domain mixture, background share, mined hard negatives), and `spire.data` is about
reading and preprocessing frames. An epoch is a list of (frame, background?) items drawn from a
seeded RNG (`epoch_plan(frames, mix, seed, epoch)`), and every item carries its own RNG seed, so
the same epoch is bit-identical after `--resume`, with any number of DataLoader workers and on
every DDP rank.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from torch.utils.data import Sampler

__all__ = ["HARD", "Mixture", "PlanFrames", "PlanSampler", "epoch_plan"]


@dataclass(frozen=True)
class Mixture:
    """How an epoch is mixed (spire.train's --bg-ratio, --data-weights, --epoch-size, --bg-weights,
    --hard-ratio; the weights are per domain, see `epoch_plan`)."""

    bg_ratio: float
    weights: tuple[float, ...] | None = None
    size: int = 0
    bg_weights: tuple[float, ...] | None = None
    hard_ratio: float = 0.0


@dataclass(frozen=True)
class PlanFrames:
    """What a plan draws from: `n_frames` frames, the indices of those with targets (`positives`)
    and without (`negatives`), each frame's domain (its --data root) and the frames holding mined
    false alarms (`hard`)."""

    n_frames: int
    positives: tuple[int, ...]
    negatives: tuple[int, ...]
    domains: tuple[int, ...] | None = None
    hard: tuple[int, ...] = ()


HARD = 2  # the background flag of a view centred on a mined false alarm (spire.mine)


def epoch_plan(frames: PlanFrames, mix: Mixture, seed: int, epoch: int) -> list[tuple[int, int]]:
    """The shuffled (frame index, background flag) items of one epoch.

    Without `weights`: every frame with targets appears once (a target-centred view) and
    background items (random views of target-free frames, or of any frame when there are none)
    make up `bg_ratio` of the epoch; target-free frames are drawn without replacement while they
    last.

    With `weights` (one per domain; `domains[i]` is frame i's domain): the mixture is designed,
    not inherited from the set sizes (65 k near-identical drone frames must not drown 200 SIRST
    targets). `size` target views (default: all positives) are split between the domains by
    weight, each domain cycling through its own positives in a fresh order; background views are
    split the same way and come from the domain's target-free frames, or random views of any of
    its frames when it has none, so every domain's clutter is seen. `bg_weights` (default:
    `weights`) splits the background views differently: where the false alarms come from (one
    sensor's cluttered frames) is not where the targets come from.

    `frames.hard` (frames holding mined false alarms) with `hard_ratio` > 0: that share of the background
    views become `HARD` items, crops around one of the frame's mined false alarms, drawn without
    replacement while they last; the rest of the background is drawn as before.
    """
    rng = np.random.default_rng([int(seed), int(epoch), 7])
    ratio = float(mix.hard_ratio) if frames.hard else 0.0
    if mix.weights is not None and frames.domains is not None:
        items, n_hard = _weighted_plan(rng, frames, mix, ratio)
    else:
        pos = list(frames.positives) if frames.positives else list(range(frames.n_frames))
        items = [(i, 0) for i in pos]
        n_bg, n_hard = _hard_split(_background_count(len(pos), mix.bg_ratio), ratio)
        pool = list(frames.negatives) if frames.negatives else list(range(frames.n_frames))
        items += [(i, 1) for i in _draw(rng, pool, n_bg)]
    items += [(i, HARD) for i in _draw(rng, list(frames.hard), n_hard)]
    order = rng.permutation(len(items))
    return [items[k] for k in order]


def _background_count(n_pos: int, bg_ratio: float) -> int:
    """Background views that make them `bg_ratio` of an epoch with `n_pos` target views."""
    return int(round(n_pos * bg_ratio / (1.0 - bg_ratio))) if 0 < bg_ratio < 1 else 0


def _hard_split(n_bg: int, hard_ratio: float) -> tuple[int, int]:
    """(plain background views, hard views) of `n_bg` background views at `hard_ratio`."""
    n_hard = int(round(n_bg * hard_ratio))
    return n_bg - n_hard, n_hard


def _draw(rng: np.random.Generator, pool: list[int], n: int) -> list[int]:
    """n items of `pool`, without replacement while they last (whole shuffled passes)."""
    if n <= 0 or not pool:
        return []
    reps = math.ceil(n / len(pool))
    return [int(i) for i in np.concatenate([rng.permutation(pool) for _ in range(reps)])[:n]]


def _split_counts(total: int, weights: np.ndarray) -> list[int]:
    """Integer counts summing to `total`, proportional to `weights` (largest remainders)."""
    raw = total * weights / weights.sum()
    counts = np.floor(raw).astype(int)
    for k in np.argsort(-(raw - counts))[: total - int(counts.sum())]:
        counts[k] += 1
    return counts.tolist()


def _weighted_plan(rng: np.random.Generator, frames: PlanFrames, mix: Mixture, hard_ratio: float):
    """`epoch_plan`'s designed mixture: (target and plain background items, hard views to add)."""
    weights = mix.weights
    bg_weights = mix.bg_weights if mix.bg_weights is not None else weights
    n_frames, positives, negatives = frames.n_frames, frames.positives, frames.negatives
    dom = np.asarray(frames.domains, int)
    ids = sorted(set(dom.tolist()))
    w = np.asarray([float(weights[d]) if d < len(weights) else 0.0 for d in ids])
    wb = np.asarray([float(bg_weights[d]) if d < len(bg_weights) else 0.0 for d in ids])
    if not (w > 0).any() or not (wb > 0).any():
        raise ValueError(f"domain weights {list(weights)} / {list(bg_weights)} give no domain a positive weight")
    is_pos, is_neg = np.zeros(n_frames, bool), np.zeros(n_frames, bool)
    is_pos[list(positives)], is_neg[list(negatives)] = True, True
    n_pos = int(mix.size) if mix.size else len(positives) or n_frames
    n_bg, n_hard = _hard_split(_background_count(n_pos, mix.bg_ratio), hard_ratio)
    items: list[tuple[int, int]] = []
    for d, k_pos, k_bg in zip(ids, _split_counts(n_pos, w), _split_counts(n_bg, wb)):
        mine = np.flatnonzero(dom == d)
        p = (mine[is_pos[mine]] if is_pos[mine].any() else mine).tolist()
        b = (mine[is_neg[mine]] if is_neg[mine].any() else mine).tolist()
        items += [(i, 0) for i in _draw(rng, p, k_pos)] + [(i, 1) for i in _draw(rng, b, k_bg)]
    return items, n_hard


class PlanSampler(Sampler):
    """Yields (frame, background, epoch, slot) keys of this rank's share of the epoch plan.

    The plan is the same on every rank (seeded); rank r takes items r, r + world, ... cut to the
    same length on all ranks, so DDP ranks always run the same number of steps. `skip` drops the
    first items (a resumed mid-epoch run continues where it stopped).
    """

    def __init__(self, store, seed: int, mix: Mixture, rank: int = 0, world: int = 1):
        """`store`: a `spire.data.FrameStore` (its records, positives, negatives and hard frames)."""
        self.store, self.seed, self.mix = store, int(seed), mix
        self.rank, self.world = int(rank), int(world)
        self.epoch, self.skip = 0, 0

    def frames(self) -> PlanFrames:
        s = self.store
        domains = tuple(r.domain for r in s.records) if self.mix.weights else None
        return PlanFrames(len(s), tuple(s.positives), tuple(s.negatives), domains, tuple(sorted(s.hard)))

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = int(epoch), int(skip)

    def shard(self) -> list[tuple[int, int, int, int]]:
        plan = epoch_plan(self.frames(), self.mix, self.seed, self.epoch)
        keys = [(f, b, self.epoch, slot) for slot, (f, b) in enumerate(plan)]
        per_rank = len(keys) // self.world
        return keys[self.rank::self.world][:per_rank]

    def epoch_len(self) -> int:
        return len(self.shard())

    def __iter__(self):
        return iter(self.shard()[self.skip:])

    def __len__(self) -> int:
        return max(0, self.epoch_len() - self.skip)
