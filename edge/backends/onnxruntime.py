"""ONNX Runtime backend: the portable CPU reference every other runtime is compared against.

Graph optimisation is set to ORT_ENABLE_ALL (constant folding, QDQ fusion for INT8 models) and
`threads` maps to `intra_op_num_threads`; only the CPU provider is requested so a result here is
the same on any x86 or ARM board. A file whose input height and width are symbolic (the `onnx`
target's, `export.onnx.free_hw`) runs every frame at its own size, as OpenVINO does; a static one
is padded or tiled to its size by the Predictor.
"""
from __future__ import annotations

import numpy as np

from .base import Backend, missing_runtime

_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


class OnnxRuntimeBackend(Backend):
    """Runs a `.onnx` artifact with onnxruntime's CPUExecutionProvider."""

    name = "onnxruntime"
    _free_hw: bool | None = None

    @property
    def dynamic_input(self) -> bool:
        """Whether the file takes any input height and width (symbolic H and W in the ONNX)."""
        if self._free_hw is None:
            self.load()
        return bool(self._free_hw)

    def _load(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise missing_runtime("onnxruntime", self.extra, str(exc)) from None
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        path = self.model_file()
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.check_input(inp.shape)
        self._free_hw = len(inp.shape) == 4 and all(not isinstance(d, int) for d in inp.shape[2:])
        self._input_name = inp.name
        self._in_dtype = _ORT_DTYPES.get(inp.type, np.float32)
        self._output_name = self.session.get_outputs()[0].name

    def _infer(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run([self._output_name], {self._input_name: x.astype(self._in_dtype, copy=False)})
        return out[0]
