"""Torch datasets over `edge.datasets`: training views with augmentation, labelled evaluation frames.

Why: the frames a model is trained on must go through exactly the preprocessing and target
codec the device uses, so this module only glues `edge` together: raw frame + points ->
`spire.augment` -> `edge.inference.preprocess.letterbox` + `normalize` -> `codec.encode(points in input
px, image=letterboxed image)`. It also owns the data hygiene a long run needs: every training
frame is read once up front (points, size, optional statistics), a frame that cannot be read or
has no label is reported once by name and left out, and a file that breaks later is skipped
(the batch shrinks) instead of crashing an epoch.

Epochs are plans, not random draws (`spire.plan`): every view's key carries its
own RNG seed, so the same epoch is bit-identical after `--resume`, with any number of DataLoader
workers and on every DDP rank.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import torch

from edge.inference.preprocess import PreprocessConfig, letterbox, normalize
from edge.scoring import LabelledFrame, skip_reason

from .augment import AugmentConfig, augment
from .plan import HARD

__all__ = ["Reporter", "FrameRecord", "FrameStore", "TrainDataset", "collate_skip", "iter_eval_frames"]


class Reporter:
    """Prints each data problem once (by key) to stderr and keeps the list for the run log."""

    def __init__(self, stream=None, enabled: bool = True):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.seen: dict[str, str] = {}

    def once(self, key: str, message: str) -> bool:
        """Report `message` unless `key` was reported before; True when it was printed now."""
        if key in self.seen:
            return False
        self.seen[key] = message
        if self.enabled:
            from tqdm import tqdm

            tqdm.write(f"warning: {message}", file=self.stream)
        return True

    @property
    def messages(self) -> list[str]:
        return list(self.seen.values())


@dataclass
class FrameRecord:
    """One usable training frame: where it comes from, its points and size (frame if cached).

    Not an `edge.scoring.LabelledFrame`: a training record is an index into the store (read lazily
    per view, its `domain` weights sampling), never scored; evaluation frames are LabelledFrames.
    """

    name: str
    source: object | None  # an edge.datasets Dataset (read lazily) or None (in-memory frame)
    index: int
    points: np.ndarray
    hw: tuple[int, int]
    frame: np.ndarray | None = None
    domain: int = 0  # which --data root it came from (per-domain sampling weights)


def content_key(frame: np.ndarray) -> str:
    """A hash of a frame's pixels, the same for a grey image and its 3-channel grey copy.

    Why: the same picture is shipped under the same name in different datasets (every video dump
    has frame_0001.png) and under different names or channel layouts in others (57 NUAA-SIRST
    training frames are SIRST-V2 validation frames, grey in one, RGB in the other); overlap with
    validation must be found by what the frame shows, not by its name.
    """
    import hashlib

    a = np.asarray(frame)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    elif a.ndim == 3:  # what the frame shows, in grey: an RGB copy of a grey frame hashes as the grey one
        import cv2

        a = cv2.cvtColor(np.ascontiguousarray(a[:, :, :3]), cv2.COLOR_RGB2GRAY)
    a = np.ascontiguousarray(a)
    h = hashlib.sha1(f"{a.shape}{a.dtype.str}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


@dataclass
class FrameStore:
    """The training frames, indexed once; frames are re-read per item unless `cache`."""

    records: list[FrameRecord] = field(default_factory=list)
    reporter: Reporter = field(default_factory=Reporter)
    cache: bool = False
    progress: bool = True
    excluded: int = 0
    hard: dict = field(default_factory=dict)  # record index -> (k, 2) mined false alarms (spire.mine)
    duplicates: int = 0
    duplicate_names: list = field(default_factory=list)
    _keys: set = field(default_factory=set, repr=False)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.records]

    @property
    def positives(self) -> list[int]:
        return [i for i, r in enumerate(self.records) if len(r.points)]

    @property
    def negatives(self) -> list[int]:
        return [i for i, r in enumerate(self.records) if not len(r.points)]

    @property
    def targets(self) -> int:
        return int(sum(len(r.points) for r in self.records))

    def read(self, source, index: int, name: str):
        """(frame, points) from a dataset item, or None after reporting why (once per name)."""
        fr = self.read_labelled(source, index, name)
        return None if skip_reason(fr) else (fr.frame, fr.points)

    def read_labelled(self, source, index: int, name: str) -> LabelledFrame:
        """The frame as `LabelledFrame.read` gives it, its problem (edge.scoring's skip rule) reported once per name."""
        fr = LabelledFrame.read(source, index, name)
        why = skip_reason(fr)
        if why == "unreadable":
            e = fr.frame
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.reporter.once(f"read:{name}", f"{name}: skipped, cannot be read ({msg})")
        elif why == "unlabelled":
            self.reporter.once(f"label:{name}", f"{name}: skipped, its label could not be read "
                               "(fix or delete the mask file)")
        return fr

    def iter_add(self, dataset, exclude: set[str] | None = None, desc: str = "indexing", domain: int = 0):
        """Read every frame of `dataset` once, adding the usable ones; yields each added frame.

        `exclude` holds `content_key`s of the validation frames: a training frame showing the same
        pixels is left out (counted in `self.excluded`) whatever its name or root. A frame whose
        pixels are already in the store (the same image listed by two training roots) is an exact
        duplicate, counted in `self.duplicates`; frames that merely share a name are both kept.
        Yielding lets the caller compute pixel statistics in the same single pass over the files.
        """
        from tqdm import tqdm

        exclude = exclude or set()
        for i, name in enumerate(tqdm(dataset.names, desc=desc, unit="frame", leave=False,
                                      disable=not self.progress)):
            got = self.read(dataset, i, name)
            if got is None:
                continue
            frame, pts = got
            key = content_key(frame)
            if key in exclude:
                self.excluded += 1
                continue
            if key in self._keys:
                self.duplicates += 1
                self.duplicate_names.append(name)
                continue
            self._keys.add(key)
            self.records.append(FrameRecord(name, dataset, i, pts, tuple(frame.shape[:2]),
                                            frame if self.cache else None, domain))
            yield frame

    def attach_hard_negatives(self, mined: dict, root_names: list[str]) -> int:
        """Index `spire.mine` rows ({(root name, frame name): xy}) by record; returns the points attached.

        `root_names[d]` is the folder name of domain d (the miner's `root` column); a mined frame
        that is not in the store (excluded, another split) is ignored.
        """
        self.hard = {}
        for i, r in enumerate(self.records):
            if r.domain < len(root_names):
                xy = mined.get((root_names[r.domain], r.name))
                if xy is not None and len(xy):
                    self.hard[i] = np.asarray(xy, np.float32).reshape(-1, 2)
        return int(sum(len(v) for v in self.hard.values()))

    def add_frame(self, name: str, frame: np.ndarray, points: np.ndarray, domain: int = 0) -> None:
        """Add an in-memory frame (synthetic data); always kept in memory."""
        pts = np.asarray(points, np.float32).reshape(-1, 2)
        self.records.append(FrameRecord(name, None, -1, pts, tuple(frame.shape[:2]), frame, domain))

    def load(self, i: int):
        """(frame, points) of record i, or None when the file broke since indexing (reported)."""
        r = self.records[i]
        if r.frame is not None:
            return r.frame, r.points
        got = self.read(r.source, r.index, r.name)
        if got is None:
            return None
        frame, pts = got
        if tuple(frame.shape[:2]) != r.hw:
            self.reporter.once(f"size:{r.name}", f"{r.name}: skipped, the file changed size during training")
            return None
        return frame, r.points


class TrainDataset(torch.utils.data.Dataset):
    """Training views: augment raw frame + points, preprocess through edge, encode the target map.

    Returns (x float32 (C, S, S), target float32 (1, S/stride, S/stride)), or None when the frame
    cannot be read (dropped by `collate_skip`).
    """

    def __init__(self, store: FrameStore, pre: PreprocessConfig, codec, aug: AugmentConfig, seed: int,
                 bank=None, paste=None):
        self.store, self.pre, self.codec, self.aug, self.seed = store, pre, codec, aug, int(seed)
        self.bank, self.paste = bank, paste  # spire.paste: TargetBank + PasteConfig (copy-paste), or None

    def __len__(self) -> int:
        return len(self.store)

    def view(self, key: tuple[int, int, int, int]):
        """The augmented (letterboxed image, input-px points) of one plan item, or None."""
        idx, bg, epoch, slot = key
        got = self.store.load(idx)
        if got is None:
            return None
        frame, pts = got
        rng = np.random.default_rng([self.seed, int(epoch), int(slot), int(idx)])
        centre = None
        if bg == HARD and idx in self.store.hard:
            mined = self.store.hard[idx]
            centre = tuple(float(v) for v in mined[int(rng.integers(len(mined)))])
        frame, pts = augment(frame, pts, self.aug, rng, background=bool(bg), centre=centre)
        if bg and bg != HARD and self.bank is not None and rng.random() < self.paste.prob:  # never a hard view
            frame, pts = self.bank.paste(frame, pts, rng, self.paste)
        img, lb = letterbox(frame, self.pre)
        xy = lb.forward(pts)
        s = self.pre.imgsz
        inside = (xy[:, 0] >= 0) & (xy[:, 0] <= s - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= s - 1)
        return img, xy[inside]

    def __getitem__(self, key):
        got = self.view(key)
        if got is None:
            return None
        img, xy = got
        hm = self.codec.encode(xy, image=img)["heatmap"]
        return torch.from_numpy(normalize(img, self.pre)), torch.from_numpy(np.ascontiguousarray(hm))[None]


def collate_skip(batch):
    """default_collate without the items that could not be read; None for an empty batch."""
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    return torch.utils.data.default_collate(batch)


# ----------------------------------------------------------------------------- evaluation
def iter_eval_frames(dataset, reporter: Reporter, frames: list | None = None):
    """Yield an `edge.scoring.LabelledFrame` per frame of an edge dataset, for `edge.scoring.score`.

    A frame that cannot be read (its `frame` is the error) or whose label broke (`points` None) is
    reported here once by name and still yielded, so `score` skips and counts it (the one rule).
    `frames` (optional) caches usable frames by index across calls (the validation set of a run).
    """
    store = FrameStore(reporter=reporter)
    for i, name in enumerate(dataset.names):
        fr = frames[i] if frames is not None and i < len(frames) and frames[i] is not None else None
        if fr is None:
            fr = store.read_labelled(dataset, i, name)
            if frames is not None and skip_reason(fr) is None:
                frames.extend([None] * (i + 1 - len(frames)))
                frames[i] = fr
        yield fr
