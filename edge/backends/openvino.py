"""OpenVINO backend: Intel CPUs (and iGPU/NPU by device name) through an IR or ONNX file.

Compiled with PERFORMANCE_HINT=LATENCY (one frame at a time is how a sensor delivers them) and
INFERENCE_PRECISION_HINT=f32 unless the artifact is meant to run in fp16/bf16: on CPUs with AMX
or AVX512-BF16 OpenVINO would otherwise silently drop FP32 models to bf16, which costs a few-pixel
target its contrast and makes FP32 numbers irreproducible between machines.
"""
from __future__ import annotations

import numpy as np

from .base import Backend, missing_runtime


class OpenVINOBackend(Backend):
    """Runs an `_openvino_model/` IR (model .xml + .bin) with the OpenVINO runtime."""

    name = "openvino"
    device = "CPU"
    # The IR is reshaped to each new frame size (compiled once per size and cached), so a frame
    # runs at its native resolution, as the model was validated, instead of padded or tiled.
    _max_shapes = 4
    _reshapable: bool | None = None

    @property
    def dynamic_input(self) -> bool:
        """Whether this IR runs at other sizes: shape-agnostic graphs do; one with shapes baked into
        its reshapes (hrpe_lite's channel shuffle) does not, and is tiled at its own size instead."""
        if self._reshapable is None:
            self.load()
        return bool(self._reshapable)

    def compile_config(self) -> dict:
        """The compile properties: latency hint, precision hint, thread count."""
        precision = str(getattr(self.meta, "precision", "fp32")).lower()
        cfg: dict = {"PERFORMANCE_HINT": "LATENCY"}
        cfg["INFERENCE_PRECISION_HINT"] = precision if precision in ("fp16", "bf16") else "f32"
        if cfg["INFERENCE_PRECISION_HINT"] == "fp16":
            cfg["INFERENCE_PRECISION_HINT"] = "f16"
        if self.threads:
            cfg["INFERENCE_NUM_THREADS"] = self.threads
        return cfg

    def _load(self) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise missing_runtime("openvino", self.extra, str(exc)) from None
        core = ov.Core()
        model = core.read_model(str(self.model_file()))
        self.check_input([d.get_length() if d.is_static else -1 for d in model.inputs[0].get_partial_shape()])
        self.compiled = core.compile_model(model, self.device, self.compile_config())
        self.request = self.compiled.create_infer_request()
        self._core, self._shape = core, tuple(self.sidecar_shape)
        self._requests = {self._shape: self.request}
        try:  # shape inference only (no compile): does the graph follow a new input size?
            n, c, h, w = self._shape
            model.reshape({model.inputs[0].get_any_name(): [n, c, h + 32, w + 64]})
            self._reshapable = True
        except RuntimeError:
            self._reshapable = False

    def _request_for(self, shape: tuple):
        """The infer request compiled for this input shape (a reshaped copy of the IR, cached)."""
        req = self._requests.get(shape)
        if req is None:
            model = self._core.read_model(str(self.model_file()))
            model.reshape({model.inputs[0].get_any_name(): list(shape)})
            req = self._core.compile_model(model, self.device, self.compile_config()).create_infer_request()
            if len(self._requests) >= self._max_shapes:  # a stream has one size; a folder of mixed sizes cycles
                self._requests.pop(next(k for k in self._requests if k != self._shape))
            self._requests[shape] = req
        return req

    def _infer(self, x: np.ndarray) -> np.ndarray:
        req = self.request if tuple(x.shape) == self._shape else self._request_for(tuple(x.shape))
        req.infer({0: x})
        return np.array(req.get_output_tensor(0).data, dtype=np.float32, copy=True)
