"""The loop pieces training and evaluation share: loss, warm-up, DDP setup, one epoch, run files.

Why separate from the CLIs: the DDP test drives the same epoch function the real run uses. Scoring
(validation, `spire.evaluate`) is `edge.scoring.score`, the loop every tool scores a predictor with.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from edge.io import atomic_open

__all__ = ["heatmap_loss", "Warmup", "DistInfo", "setup_distributed", "cleanup_distributed",
           "broadcast_object", "StepRule", "train_one_epoch", "rng_state",
           "set_rng_state", "param_checksum", "RunState", "Resume", "build_meta", "save_last", "save_best",
           "load_last", "write_log", "LOG_COLUMNS"]


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "mse", gamma: float = 2.0) -> torch.Tensor:
    """SPIRE's loss: 2 x mean squared error between the raw output and the target map.

    kind='focal': the squared error of each cell weighted by its detached |error|^gamma,
    normalised by the mean weight (so the scale matches plain MSE): the few target cells the
    model still misses dominate the gradient instead of the millions of easy background cells.
    """
    if pred.shape != target.shape:
        raise ValueError(f"output {tuple(pred.shape)} and target {tuple(target.shape)} differ; "
                         "the codec's input_size must match the training --imgsz")
    err = (pred - target) ** 2
    if kind == "mse":
        return 2.0 * err.mean()
    if kind == "focal":
        w = (pred - target).detach().abs().pow(gamma)
        return 2.0 * (w * err).sum() / w.sum().clamp_min(1e-12)
    raise ValueError(f"unknown loss {kind!r}; use 'mse' or 'focal'")


@dataclass
class Warmup:
    """Linear warm-up from `start_factor` x lr to lr over the first `iters` optimizer steps."""

    base_lrs: list[float]
    iters: int
    start_factor: float = 1e-3

    def step(self, optimizer: torch.optim.Optimizer, it: int) -> None:
        """Set the lr for global step `it` (no-op once warm-up is over)."""
        if it > self.iters or self.iters <= 0:
            return
        f = self.start_factor + (1.0 - self.start_factor) * min(1.0, it / self.iters)
        for g, lr in zip(optimizer.param_groups, self.base_lrs):
            g["lr"] = lr * f


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def setup_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local, dev)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(obj, info: DistInfo):
    """Rank 0's `obj` on every rank (identity when not distributed)."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@dataclass
class StepRule:
    """How one batch updates the model: the optimizer, the loss ('mse' | 'focal'), gradient clipping
    (0: off), the learning-rate warm-up and the weight average (`ema`, a
    torch.optim.swa_utils.AveragedModel updated after every optimizer step) — spire.train's and
    quantize.qat's own choices, passed as one."""

    optimizer: object
    loss_kind: str = "mse"
    grad_clip: float = 0.0
    warmup: Warmup | None = None
    ema: object = None


def train_one_epoch(model: nn.Module, loader, rule: StepRule, *, device, global_step: int = 0,
                    start_step: int = 0, should_stop=None, progress=None) -> dict:
    """Run the batches of one epoch, each a step by `rule`.

    `start_step`: batches already done in this epoch (resume); `should_stop()` is polled after
    every batch and ends the epoch early (the caller saves `last`). Returns {'loss' (mean over
    this call's batches), 'batches', 'steps' (batches done in the epoch), 'global_step',
    'stopped', 'skipped' (empty batches)}.
    """
    optimizer, warmup, ema, grad_clip = rule.optimizer, rule.warmup, rule.ema, rule.grad_clip
    model.train()
    total, n, skipped = 0.0, 0, 0
    step = start_step
    stopped = False
    for batch in loader:
        step += 1
        if batch is None:  # every frame of the batch failed to read (already reported)
            skipped += 1
        else:
            x, y = (t.to(device, non_blocking=True) for t in batch)
            if warmup is not None:
                warmup.step(optimizer, global_step + 1)
            loss = heatmap_loss(model(x), y, rule.loss_kind)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss is {loss.item()} at step {step}; lower --lr "
                                         "or check the data for corrupt frames")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
            global_step += 1
            total += float(loss.detach())
            n += 1
            if progress is not None:
                progress.set_postfix(loss=f"{total / n:.4g}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
        if progress is not None:
            progress.update(1)
        if should_stop is not None and should_stop():
            stopped = True
            break
    return {"loss": total / n if n else float("nan"), "loss_sum": total, "batches": n, "steps": step,
            "global_step": global_step, "stopped": stopped, "skipped": skipped}


def rng_state() -> dict:
    """Python, numpy and torch RNG states as plain lists/tensors (weights_only-loadable)."""
    ver, keys, gauss = random.getstate()
    kind, mt, pos, has_g, cached = np.random.get_state(legacy=True)
    st = {"python": [ver, list(keys), gauss],
          "numpy": [kind, mt.tolist(), int(pos), int(has_g), float(cached)],
          "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict | None) -> None:
    """Restore what `rng_state` saved (missing parts are left as they are)."""
    if not st:
        return
    if "python" in st:
        ver, keys, gauss = st["python"]
        random.setstate((ver, tuple(keys), gauss))
    if "numpy" in st:
        kind, mt, pos, has_g, cached = st["numpy"]
        np.random.set_state((kind, np.asarray(mt, np.uint32), pos, has_g, cached))
    if "torch" in st:
        torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def param_checksum(model: nn.Module) -> float:
    """A float64 fingerprint of all parameters (DDP ranks must agree exactly)."""
    with torch.no_grad():
        tot = 0.0
        for i, p in enumerate(model.parameters()):
            tot += float(p.detach().double().flatten().mul(1.0 + 1e-3 * (i % 97)).sum())
            tot += float(p.detach().double().abs().sum()) * 1e-7
    return tot if math.isfinite(tot) else float("nan")


# ----------------------------------------------------------------------------- run state and files
LOG_COLUMNS = ("epoch", "lr", "train_loss", "val_precision", "val_recall", "val_f1", "val_fa_per_pixel",
               "val_fppi", "val_thr", "seconds", "val_seconds")


@dataclass
class RunState:
    """Where a run stands: completed epochs, batches into the current one, best score, history.

    Stored in every last.pt, so `--resume` continues mid-epoch with the same loss average.
    """

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    loss_sum: float = 0.0
    loss_batches: int = 0
    seconds: float = 0.0
    best: dict | None = None
    best_epoch: int = 0
    history: list = field(default_factory=list)
    improved: bool = False

    def absorb(self, r: dict, seconds: float) -> None:
        """Add one `train_one_epoch` result (possibly a partial epoch)."""
        self.step, self.global_step = r["steps"], r["global_step"]
        self.loss_sum += r["loss_sum"]
        self.loss_batches += r["batches"]
        self.seconds += seconds

    def finish_epoch(self, lr: float) -> dict:
        row = {"epoch": self.epoch + 1, "lr": lr,
               "train_loss": self.loss_sum / self.loss_batches if self.loss_batches else float("nan"),
               "seconds": round(self.seconds, 2)}
        self.history.append(row)
        self.epoch += 1
        self.step, self.loss_sum, self.loss_batches, self.seconds = 0, 0.0, 0, 0.0
        self.improved = False
        return row

    def record_val(self, row: dict, val: dict) -> None:
        """Put validation numbers in the epoch's log row; best = highest F1, then fewest FPPI."""
        row.update({f"val_{k}": val[k] for k in ("precision", "recall", "f1", "fa_per_pixel", "fppi")})
        row["val_thr"] = val.get("thr")
        row["val_seconds"] = round(val.get("seconds", 0.0), 2)
        sets = val.get("sets") or {}
        for name, r in (sets.items() if len(sets) > 1 else ()):  # several validation sets: each one's F1, FPPI
            row[f"val_f1_{name}"], row[f"val_fppi_{name}"] = r["f1"], r["fppi"]
        score = (val["f1"], -val["fppi"])
        if self.best is None or score > (self.best["f1"], -self.best["fppi"]):
            self.best, self.best_epoch, self.improved = dict(val, epoch=row["epoch"]), row["epoch"], True

    def epoch_line(self, total: int) -> str:
        r = self.history[-1]
        s = f"epoch {r['epoch']}/{total}  loss {r['train_loss']:.5f}  lr {r['lr']:.2e}  {r['seconds']:.1f} s/epoch"
        if "val_f1" in r:
            s += (f"  val P {r['val_precision']:.4f} R {r['val_recall']:.4f} F1 {r['val_f1']:.4f} "
                  + (f"@thr {r['val_thr']:.2f} " if r.get("val_thr") is not None else "")
                  + f"Fa {r['val_fa_per_pixel'] * 1e8:.2f}e-8 FPPI {r['val_fppi']:.3f} ({r['val_seconds']:.1f} s)"
                  + "".join(f"  [{k[7:]} {r[k]:.4f}]" for k in r if k.startswith("val_f1_"))
                  + ("  *best*" if self.improved else ""))
        return s

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("improved")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunState":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def build_meta(model: nn.Module, pre, codec, training: dict) -> dict:
    """The sidecar fields of a torch checkpoint (everything but model_file / model_sha256).

    `pre` and `codec` are the model as deployed (edge.model.contract: schema 2), not its training crops.
    """
    from edge.model.contract import DEPLOY_SCHEMA
    from edge.model.sidecar import io_specs

    inp, out = io_specs(pre.imgsz, pre.channels, codec.stride)
    return {"schema_version": DEPLOY_SCHEMA, "arch": model.arch, "arch_kwargs": dict(getattr(model, "arch_kwargs", {}) or {}),
            "format": "torch", "precision": "fp32", "input": inp, "output": out,
            "preprocess": pre.to_dict(), "codec": codec.to_dict(), "training": training}


def save_last(out: Path, model, meta: dict, opt, sched, st: RunState, extra: dict, ema=None) -> Path:
    """OUT/last.pt with everything `--resume` needs (written atomically); `ema`'s average rides along."""
    from spire.models import save_checkpoint

    more = {} if ema is None else {"ema": {k: v.detach().cpu() for k, v in ema.state_dict().items()}}
    return save_checkpoint(out / "last.pt", model, meta, optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                           state=st.to_dict(), rng=rng_state(), train_args=extra, **more)


def save_best(out: Path, model, meta: dict, st: RunState) -> Path:
    """OUT/best.pt and OUT/metadata.json (the edge sidecar describing best.pt)."""
    from edge.model.sidecar import ModelMeta, file_sha256, write_sidecar
    from spire.models import save_checkpoint

    meta = copy.deepcopy(meta)
    meta["training"].update(best=st.best, epoch=st.best_epoch)
    if st.best and st.best.get("thr") is not None:  # the operating point chosen on validation
        meta["codec"]["thr"] = float(st.best["thr"])
    path = save_checkpoint(out / "best.pt", model, meta, epoch=st.best_epoch, best=st.best)
    write_sidecar(out, ModelMeta(model_file=path.name, model_sha256=file_sha256(path), **meta))
    return path


@dataclass
class Resume:
    """A loaded OUT/last.pt."""

    path: Path
    ckpt: dict

    @property
    def meta(self) -> dict:
        return self.ckpt["meta"]

    def restore(self, model: nn.Module, opt, sched) -> RunState:
        try:
            model.load_state_dict(self.ckpt["model"])
        except RuntimeError as e:
            from spire.models import CheckpointError

            raise CheckpointError(f"{self.path}: does not fit this --model ({str(e).splitlines()[0][:120]}); "
                                  "resume with the run's own options or use a new --out") from None
        opt.load_state_dict(self.ckpt["optimizer"])
        sched.load_state_dict(self.ckpt["scheduler"])
        set_rng_state(self.ckpt.get("rng"))
        return RunState.from_dict(self.ckpt["state"])


def load_last(out: Path) -> Resume | None:
    """OUT/last.pt for --resume, or None when there is none yet."""
    p = Path(out) / "last.pt"
    if not p.is_file():
        return None
    from spire.models.checkpoint import read_checkpoint_file

    return Resume(p, read_checkpoint_file(p, "cpu"))


def write_log(path: Path, history: list[dict]) -> None:
    """Rewrite OUT/log.csv from the run history (atomic; a resumed run never duplicates rows)."""
    import csv

    with atomic_open(path, newline="") as f:
        extra = [k for k in dict.fromkeys(k for row in history for k in row) if k.startswith(("val_f1_", "val_fppi_"))]
        w = csv.DictWriter(f, fieldnames=[*LOG_COLUMNS, *extra], extrasaction="ignore")
        w.writeheader()
        for row in history:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
