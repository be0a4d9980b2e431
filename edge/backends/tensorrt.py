"""TensorRT backend: a serialized engine on a Jetson (or any NVIDIA GPU) through the TensorRT Python API.

Engines are built on the device itself (boards/jetson/build_engine.sh, trtexec from the sidecar's
ONNX) because a plan only runs on the TensorRT version and GPU that built it; this file only
deserialises and runs one. TensorRT ships with JetPack (python3-libnvinfer), not from PyPI on
Jetson, and device memory goes through cuda-python's runtime API, so neither torch nor pycuda is
needed. The engine file is checked (exists, non-empty, .engine/.plan) before TensorRT is touched.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.errors import BackendUnavailable, SidecarError

from .base import Backend

ENGINE_SUFFIXES = (".engine", ".plan")


def check_engine_file(path: str | Path) -> Path:
    """Refuse a missing, empty or wrongly named engine with one line that says how to build it."""
    path = Path(path)
    hint = "build it on this device with boards/jetson/build_engine.sh (trtexec --onnx=... --saveEngine=...)"
    if path.suffix not in ENGINE_SUFFIXES:
        raise SidecarError(f"{path}: not a TensorRT engine (expected a {' or '.join(ENGINE_SUFFIXES)} file); {hint}")
    if not path.is_file():
        raise SidecarError(f"{path}: engine file not found; {hint}")
    if path.stat().st_size == 0:
        raise SidecarError(f"{path}: engine file is empty (an interrupted build?); {hint}")
    return path


def _import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailable(
            f"tensorrt is not installed ({exc}): on a Jetson it comes with JetPack (sudo apt install "
            "python3-libnvinfer); elsewhere pip install 'spire-edge[tensorrt]' tensorrt") from None
    try:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart
    except ImportError as exc:
        raise BackendUnavailable(f"cuda-python is not installed ({exc}): pip install cuda-python "
                                 "(the TensorRT backend copies frames to the GPU with it)") from None
    return trt, cudart


def _ok(result):
    """cuda-python returns (err, *values); raise on error, return the values."""
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else rest


class TensorRTBackend(Backend):
    """Runs a TensorRT engine (explicit batch 1, one input, one output)."""

    name = "tensorrt"

    def model_file(self) -> Path:
        """The engine: the file passed, else `<model stem>.engine|.plan` beside the sidecar's ONNX."""
        if self.model_path.is_file() and self.model_path.suffix in ENGINE_SUFFIXES:
            return check_engine_file(self.model_path)
        stem = Path(getattr(self.meta, "model_file", "") or "model").stem
        cands = [self.folder / f"{stem}{s}" for s in ENGINE_SUFFIXES]
        cands += sorted(p for s in ENGINE_SUFFIXES for p in self.folder.glob(f"*{s}"))
        found = next((p for p in cands if p.exists()), None)
        return check_engine_file(found or cands[0])

    def _load(self) -> None:
        path = self.model_file()
        trt, cudart = _import_tensorrt()
        self._trt, self._cudart = trt, cudart
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise SidecarError(f"{path}: TensorRT could not deserialise this engine (built by another "
                               "TensorRT version or GPU?); rebuild it on this device with boards/jetson/build_engine.sh")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self._in_name, self._out_name = inputs[0], outputs[0]
        self.check_input(list(self.engine.get_tensor_shape(self._in_name)))
        self.context.set_input_shape(self._in_name, self.input_shape)
        self._in_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self._in_name)))
        self._out_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self._out_name)))
        self._out_shape = tuple(int(v) for v in self.context.get_tensor_shape(self._out_name))
        self._in_bytes = int(np.prod(self.input_shape)) * self._in_dtype.itemsize
        self._out_bytes = int(np.prod(self._out_shape)) * self._out_dtype.itemsize
        self._d_in = _ok(cudart.cudaMalloc(self._in_bytes))
        self._d_out = _ok(cudart.cudaMalloc(self._out_bytes))
        self.context.set_tensor_address(self._in_name, int(self._d_in))
        self.context.set_tensor_address(self._out_name, int(self._d_out))
        self._stream = _ok(cudart.cudaStreamCreate())

    def _infer(self, x: np.ndarray) -> np.ndarray:
        cudart = self._cudart
        h_in = np.ascontiguousarray(x.astype(self._in_dtype, copy=False))
        h_out = np.empty(self._out_shape, dtype=self._out_dtype)
        kind_h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        kind_d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _ok(cudart.cudaMemcpyAsync(self._d_in, h_in.ctypes.data, self._in_bytes, kind_h2d, self._stream))
        if not self.context.execute_async_v3(int(self._stream)):
            raise RuntimeError(f"{self.model_path}: TensorRT execution failed")
        _ok(cudart.cudaMemcpyAsync(h_out.ctypes.data, self._d_out, self._out_bytes, kind_d2h, self._stream))
        _ok(cudart.cudaStreamSynchronize(self._stream))
        return h_out.astype(np.float32)

    def __del__(self):
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            return
        for ptr in (getattr(self, "_d_in", None), getattr(self, "_d_out", None)):
            if ptr is not None:
                cudart.cudaFree(ptr)
