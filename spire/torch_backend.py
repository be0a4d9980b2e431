"""The torch backend: a training checkpoint, or a model in memory, behind `edge.backends.Backend`.

Why: `edge.inference.predictor.Predictor` is the one frame -> points path. With this backend in its slot,
`spire.evaluate`, training-time validation, the benchmarks' torch rows and
`python -m edge.run --model weights/shipped/best.pt` run a torch model through exactly the
read / preprocess / tile / decode code the exported artifacts run through, so their numbers can
only differ by what the runtime computes. The target table (`edge.model.targets`, row 'torch') names
this class as data; edge never imports torch or spire.

Unlike an exported artifact, a torch model takes any input size (a multiple of 32): the
Predictor may choose its tile size, and can run whole frames at native resolution ('native').
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edge.backends.base import Backend
from edge.inference.predictor import Predictor
from edge.model.sidecar import ModelMeta

__all__ = ["TorchBackend", "torch_predictor"]


class TorchBackend(Backend):
    """A torch module (from `model_path`'s checkpoint, or `module`) run on `device`.

    Args:
        model_path: checkpoint file or its folder (with metadata.json); None with `module`.
        meta: the checkpoint's ModelMeta (None with `module`: give `channels` and `imgsz`).
        threads: torch CPU threads (None: torch's default).
        module: an nn.Module to run instead of loading one (put in eval mode when loaded: training
            validation builds a new backend around the model at every validation).
        channels, imgsz: the input (1, C, S, S) when there is no sidecar.
        device: torch device ('cpu', 'cuda', a torch.device).
    """

    name = "torch"
    dynamic_input = True  # any (1, C, H, W), H and W multiples of 32: Backend.infer lets it through

    def __init__(self, model_path: str | Path | None = None, meta: ModelMeta | None = None,
                 threads: int | None = None, *, module=None, channels: int | None = None,
                 imgsz: int | None = None, device="cpu"):
        if model_path is None and module is None:
            raise ValueError("TorchBackend needs a checkpoint path or a module")
        super().__init__(model_path if model_path is not None else ".", meta, threads=threads)
        self.module, self.device = module, torch.device(device)
        c = channels if channels is not None else int(meta.input["shape"][1])
        s = imgsz if imgsz is not None else int(meta.input["shape"][2])
        self._shape = (1, int(c), int(s), int(s))
        self._stride = int(meta.output["stride"]) if meta is not None else 4

    @classmethod
    def from_module(cls, module, channels: int, imgsz: int, threads: int | None = None, device="cpu") -> "TorchBackend":
        """A loaded backend around an in-memory module (training validation, benchmarks)."""
        return cls(module=module, channels=channels, imgsz=imgsz, threads=threads, device=device).load()

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return self._shape

    def set_input_size(self, imgsz: int) -> None:
        """The (square) input size the Predictor tiles and letterboxes to."""
        self._shape = (1, self._shape[1], int(imgsz), int(imgsz))

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        s = self._shape[2] // self._stride
        return (1, 1, s, s)

    def _load(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        if self.module is None:
            from spire.models import load_checkpoint

            self.module, _ = load_checkpoint(self.model_file())
        self.module.to(self.device).eval()

    def _infer(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(x).to(self.device)).float().cpu().numpy()


def torch_predictor(module, pre, codec, mode: str = "auto", imgsz: int | None = None, threads: int | None = None,
                    device="cpu", model_path: str | Path | None = None) -> Predictor:
    """A Predictor running `module` with preprocessing `pre` and decoder `codec` (no sidecar needed).

    `imgsz`: the tile / letterbox size (default: `pre.imgsz`).
    """
    import dataclasses

    size = int(imgsz or pre.imgsz)
    if size != pre.imgsz:
        pre = dataclasses.replace(pre, imgsz=size)
    backend = TorchBackend.from_module(module, pre.channels, size, threads, device)
    return Predictor.from_parts(backend, pre, codec, size, mode=mode, model_path=model_path)
