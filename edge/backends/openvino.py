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
    format = "openvino"
    extra = "openvino"
    device = "CPU"

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

    def _infer(self, x: np.ndarray) -> np.ndarray:
        self.request.infer({0: x})
        return np.array(self.request.get_output_tensor(0).data, dtype=np.float32, copy=True)
