"""Say which machine a benchmark ran on, in one string, and measure its power if a sensor exists.

A latency figure means nothing without the hardware and the thread count behind it, so every
row of the table carries a device string: the CPU model and the pinned threads on a PC, or the
Jetson model and its `nvpmodel` power mode on a Jetson (whose speed depends on that mode more
than on anything else). Power comes from `edge.device.power` (RAPL, INA3221, tegrastats, Pi PMIC...);
where no sensor is readable the figures stay `None` and the table prints n/a, never a guess.
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_bytes().replace(b"\x00", b"").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU model name (x86 `model name`, arm64 `Hardware`/`Model`), else platform.processor()."""
    text = _read(cpuinfo)
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, flags=re.MULTILINE)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return platform.processor() or platform.machine() or "unknown CPU"


# Which CPU instructions INT8 convolutions run on, best first: the INT8/FP32 speed-up of a model depends on
# them more than on the clock (AVX2 alone gains ~1.75x on OpenVINO, VNNI/AMX much more), so every speed
# figure names them. (flag in /proc/cpuinfo, how a speed table should call it)
INT8_ISAS = (("amx_int8", "AMX-INT8"), ("avx512_vnni", "AVX512-VNNI"), ("avx_vnni", "AVX-VNNI"),
             ("avx2", "AVX2 without VNNI"), ("asimddp", "NEON dot product"), ("asimd", "NEON without dot product"))


def int8_isa(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The best INT8 dot-product instruction set the CPU flags list ('AVX512-VNNI', 'AVX2 without VNNI',
    'NEON dot product' ...), None where /proc/cpuinfo lists no flags (not Linux, a stripped container)."""
    m = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", _read(cpuinfo), flags=re.MULTILINE)
    if not m:
        return None
    flags = set(m.group(1).split())
    return next((name for flag, name in INT8_ISAS if flag in flags), None)


def jetson_model(model_file: str | Path = "/proc/device-tree/model") -> str | None:
    """The board model from the device tree when it names a Jetson (or any board), else None."""
    text = _read(model_file)
    return text or None


def nvpmodel_mode(runner=subprocess.run) -> str | None:
    """`nvpmodel -q` power mode name (e.g. '15W' or 'MAXN'), None where nvpmodel is absent."""
    if shutil.which("nvpmodel") is None:
        return None
    try:
        out = runner(["nvpmodel", "-q"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"NV Power Mode\s*:\s*(\S+)", out)
    return m.group(1) if m else (out.strip().splitlines()[0] if out.strip() else None)


def device_string(threads: int, cpuinfo: str | Path = "/proc/cpuinfo",
                  model_file: str | Path = "/proc/device-tree/model", runner=subprocess.run) -> str:
    """'AMD EPYC (AVX512-VNNI), 2 threads' on a PC; 'NVIDIA Jetson Orin Nano (nvpmodel 15W), 6 threads' on a Jetson."""
    board = jetson_model(model_file)
    if board:
        mode = nvpmodel_mode(runner)
        head = f"{board} (nvpmodel {mode})" if mode else board
    else:
        head = cpu_model(cpuinfo)
        isa = int8_isa(cpuinfo)
        head = f"{head} ({isa})" if isa else head
    return f"{head}, {threads} thread{'s' if threads != 1 else ''}"


def default_threads() -> int:
    """The cores this process may run on (affinity-aware), the default thread count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class PowerMeter:
    """Mean watts over a measured span, from edge.device.power's background sampler; n/a without a sensor.

    `start()` / `stop()` bracket one row's end-to-end loop; `watts` and `note` describe the result.
    """

    override: str | None = None
    watts: float | None = None
    note: str = "n/a"
    _sampler: object = field(default=None, repr=False)
    _sensor: object = field(default=None, repr=False)
    _detected: bool = field(default=False, repr=False)

    def _detect(self) -> None:
        if self._detected:
            return
        self._detected = True
        try:
            from edge.device import power
        except ImportError as e:  # the runtime helper's module is missing
            self.note = f"n/a (edge.device.power unavailable: {e})"
            return
        try:
            sensor, tried = power.detect(self.override)
        except Exception as e:  # a sensor that breaks must not stop the benchmark
            self.note = f"n/a (power detection failed: {e})"
            return
        self._sensor = sensor
        if sensor is None:
            self.note = f"n/a (no sensor: tried {', '.join(map(str, tried)) or 'nothing'})"
        else:
            self.note = sensor.describe() if hasattr(sensor, "describe") else type(sensor).__name__

    def start(self) -> None:
        """Start sampling in the background (a no-op without a sensor)."""
        self._detect()
        self.watts = None
        if self._sensor is None:
            return
        from edge.device.power import PowerSampler
        self._sampler = PowerSampler(self._sensor).start()

    def stop(self) -> float | None:
        """Stop sampling; mean W over the span (None without a sensor or with too few samples)."""
        if self._sampler is None:
            return None
        result = self._sampler.stop()
        self._sampler = None
        self.watts = float(result.mean_w) if result.mean_w is not None else None
        return self.watts

    def close(self) -> None:
        """Release the sensor (tegrastats runs as a child process)."""
        if self._sensor is not None and hasattr(self._sensor, "close"):
            self._sensor.close()
        self._sensor = None
