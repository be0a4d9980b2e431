"""TFLite backend: LiteRT (`ai-edge-litert`) on ARM boards, `tflite-runtime` where an image has only that.

The interpreter's tensor details say everything the caller must not care about: an INT8 model's
input/output scale and zero-point (we quantise the float32 input and dequantise the heatmap here)
and whether the graph takes NCHW (litert-torch keeps PyTorch's layout) or NHWC (TF-style
converters). `tflite-runtime` 2.14.0 is the fallback for older images; it needs numpy < 2.
"""
from __future__ import annotations

import numpy as np

from .base import Backend, missing_runtime


def _interpreter_class():
    """LiteRT's Interpreter, else tflite_runtime's, else a one-line install hint."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError as first:
        try:
            from tflite_runtime.interpreter import Interpreter

            return Interpreter
        except ImportError:
            raise missing_runtime("ai-edge-litert", "tflite", f"{first}; or tflite-runtime with numpy<2") from None


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    """float -> int8/uint8 with the tensor's affine parameters (round half to even, saturate)."""
    info = np.iinfo(dtype)
    q = np.rint(x / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """int8/uint8 -> float32 with the tensor's affine parameters."""
    return ((q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)


class TFLiteBackend(Backend):
    """Runs a `.tflite` flatbuffer (FP32, FP16-weights or full INT8)."""

    name = "tflite"

    def _load(self) -> None:
        Interpreter = _interpreter_class()
        kwargs = {"model_path": str(self.model_file())}
        if self.threads:
            kwargs["num_threads"] = self.threads
        self.interpreter = Interpreter(**kwargs)
        self.interpreter.allocate_tensors()
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]
        shape = [int(v) for v in self._in["shape"]]
        self.check_input(shape)
        _, c, s, _ = self.input_shape
        # NHWC when the last axis is the channel axis and the second is not (C never equals S here).
        self.nhwc = shape[3] == c and shape[1] != c
        oshape = [int(v) for v in self._out["shape"]]
        self.out_nhwc = len(oshape) == 4 and oshape[3] == 1 and oshape[1] != 1

    @property
    def input_quant(self) -> tuple[float, int]:
        scale, zp = self._in.get("quantization", (0.0, 0))
        return float(scale), int(zp)

    def _infer(self, x: np.ndarray) -> np.ndarray:
        if self.nhwc:
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        dtype = np.dtype(self._in["dtype"])
        if dtype.kind in "iu":
            scale, zp = self.input_quant
            x = quantize(x, scale or 1.0, zp, dtype)
        else:
            x = x.astype(dtype, copy=False)
        self.interpreter.set_tensor(self._in["index"], x)
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self._out["index"])
        if np.dtype(self._out["dtype"]).kind in "iu":
            scale, zp = self._out.get("quantization", (0.0, 0))
            y = dequantize(y, float(scale) or 1.0, int(zp))
        y = np.asarray(y, dtype=np.float32)
        if self.out_nhwc:
            y = y.transpose(0, 3, 1, 2)
        return y
