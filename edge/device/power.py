"""Board power, measured off the hot path: which sensor exists here, and mean W / energy over a run.

Why: an edge result without watts is half a result, and a made-up watt figure is worse than none.
Each supported sensor is one small class whose parser is tested on files in its exact format:
Intel RAPL energy counters (wrap-around through max_energy_range_uj), Jetson INA3221 (hwmon or
the older iio files, input rail only: CPU/GPU rails are inside it), `tegrastats` (VDD_IN or
POM_5V_IN), Raspberry Pi 5 `vcgencmd pmic_read_adc` (sum of V·I over rails) and INA219-class
hwmon chips (power1_input, µW). `detect()` says which one answered, or what it tried.
A `PowerSampler` thread reads the sensor while the run goes on and integrates energy.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

INPUT_RAIL = re.compile(r"^(VDD_IN|POM_5V_IN|VIN_SYS_5V0|VDD_5V_IN)$|^VIN|_IN$", re.I)
INA219_CLASS = ("ina219", "ina220", "ina226", "ina230", "ina231", "ina238", "ina260", "ina209")


class SensorUnavailable(Exception):
    """A sensor kind that is not present or not readable here (the message says why)."""


def _text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except PermissionError:
        raise SensorUnavailable(f"{path}: permission denied (run as root or make it readable)") from None
    except OSError as e:
        raise SensorUnavailable(f"{path}: {e.strerror or e}") from None


def _num(path: Path) -> float:
    s = _text(path)
    try:
        return float(s)
    except ValueError:
        raise SensorUnavailable(f"{path}: not a number ({s[:20]!r})") from None


class Sensor:
    """One power source. `kind` 'power': read() -> W now; 'energy': read() -> J since creation."""

    name = "sensor"
    kind = "power"

    def read(self) -> float:
        raise NotImplementedError

    def close(self) -> None:
        """Release anything the sensor holds (a child process)."""

    def describe(self) -> str:
        return self.name


# --------------------------------------------------------------------------- Intel RAPL
class RaplSensor(Sensor):
    """Sum of the package-level RAPL zones' energy_uj counters, with wrap-around handled."""

    name = "rapl"
    kind = "energy"

    def __init__(self, zones: list[Path]):
        self.zones = list(zones)
        self.ranges = [_num(z / "max_energy_range_uj") if (z / "max_energy_range_uj").exists() else 2.0 ** 32
                       for z in self.zones]
        self.last = [_num(z / "energy_uj") for z in self.zones]
        self.total_uj = 0.0
        self._lock = threading.Lock()

    def read(self) -> float:
        with self._lock:
            for i, z in enumerate(self.zones):
                raw = _num(z / "energy_uj")
                delta = raw - self.last[i]
                if delta < 0:  # the counter wrapped at max_energy_range_uj
                    delta += self.ranges[i]
                self.total_uj += delta
                self.last[i] = raw
            return self.total_uj / 1e6

    @classmethod
    def probe(cls, root: Path) -> "RaplSensor":
        base = root / "class" / "powercap"
        top = sorted(p for p in base.glob("intel-rapl:*") if p.name.count(":") == 1)
        if not top:
            raise SensorUnavailable(f"no {base}/intel-rapl:*")
        pkgs = [p for p in top if (p / "name").exists() and _text(p / "name").startswith("package")]
        return cls(pkgs or top)  # psys/dram zones only when no package zone exists


# --------------------------------------------------------------------------- INA3221 (Jetson)
@dataclass(frozen=True)
class Rail:
    """One INA3221 channel: label and the files giving its bus voltage (mV) and current (mA)."""

    label: str
    volt: Path
    curr: Path

    def watts(self) -> float:
        return _num(self.volt) * _num(self.curr) / 1e6


def pick_input_rail(rails: list[Rail], where: str) -> Rail:
    """The board's input rail (VDD_IN / POM_5V_IN / VIN*): the others are inside it, never added."""
    for r in rails:
        if INPUT_RAIL.search(r.label):
            return r
    raise SensorUnavailable(f"{where}: no input rail among {[r.label for r in rails] or 'no channels'}")


class RailSensor(Sensor):
    """Instantaneous power of one rail (V·I)."""

    def __init__(self, rail: Rail, name: str):
        self.rail, self.name = rail, name

    def read(self) -> float:
        return self.rail.watts()

    def describe(self) -> str:
        return f"{self.name} {self.rail.label}"


def _hwmon_devices(root: Path, names: tuple[str, ...]) -> list[Path]:
    out = []
    for d in sorted((root / "class" / "hwmon").glob("hwmon*")):
        try:
            if (d / "name").read_text().strip().lower() in names:
                out.append(d)
        except OSError:
            continue
    return out


def probe_ina3221_hwmon(root: Path) -> RailSensor:
    devs = _hwmon_devices(root, ("ina3221",))
    if not devs:
        raise SensorUnavailable(f"no ina3221 under {root}/class/hwmon")
    rails = []
    for d in devs:
        for volt in sorted(d.glob("in[0-9]*_input")):
            n = volt.name[2:-6]
            curr, label = d / f"curr{n}_input", d / f"in{n}_label"
            if curr.exists():
                rails.append(Rail(_text(label) if label.exists() else f"in{n}", volt, curr))
    rail = pick_input_rail(rails, str(devs[0]))
    rail.watts()  # readable now, not only listed
    return RailSensor(rail, "ina3221")


def probe_ina3221_iio(root: Path) -> RailSensor:
    devs = [d for d in sorted((root / "bus" / "iio" / "devices").glob("iio:device*"))
            if (d / "name").exists() and "ina3221" in (d / "name").read_text().lower()]
    if not devs:
        raise SensorUnavailable(f"no ina3221 under {root}/bus/iio/devices")
    rails = []
    for d in devs:
        for volt in sorted(d.glob("in_voltage[0-9]*_input")):
            n = volt.name[len("in_voltage"):-len("_input")]
            curr, label = d / f"in_current{n}_input", d / f"rail_name_{n}"
            if curr.exists():
                rails.append(Rail(_text(label) if label.exists() else f"channel{n}", volt, curr))
    rail = pick_input_rail(rails, str(devs[0]))
    rail.watts()
    return RailSensor(rail, "ina3221-iio")


# --------------------------------------------------------------------------- INA219 class
class HwmonPowerSensor(Sensor):
    """An INA219-class hwmon chip reporting power1_input in µW."""

    name = "ina219"

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> float:
        return _num(self.path) / 1e6

    @classmethod
    def probe(cls, root: Path) -> "HwmonPowerSensor":
        for d in _hwmon_devices(root, INA219_CLASS):
            if (d / "power1_input").exists():
                s = cls(d / "power1_input")
                s.read()
                return s
        raise SensorUnavailable(f"no {'/'.join(INA219_CLASS[:2])}-class power1_input under {root}/class/hwmon")


# --------------------------------------------------------------------------- Raspberry Pi 5 PMIC
_PMIC = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=([-+0-9.eE]+)[AV]\s*$")


def parse_pmic_adc(text: str) -> float:
    """`vcgencmd pmic_read_adc` output -> total W = Σ V·I over rails that have both readings."""
    amps, volts = {}, {}
    for line in text.splitlines():
        m = _PMIC.match(line)
        if m:
            (amps if m.group(2) == "A" else volts)[m.group(1)] = float(m.group(3))
    both = sorted(set(amps) & set(volts))
    if not both:
        raise SensorUnavailable("vcgencmd pmic_read_adc: no rail with both current and voltage")
    return float(sum(amps[r] * volts[r] for r in both))


class PmicSensor(Sensor):
    """Raspberry Pi 5: the PMIC's per-rail ADCs through `vcgencmd pmic_read_adc`."""

    name = "pi5-pmic"

    def __init__(self, runner: Callable[[], str]):
        self.runner = runner

    def read(self) -> float:
        return parse_pmic_adc(self.runner())

    @classmethod
    def probe(cls, runner: Callable[[], str] | None = None) -> "PmicSensor":
        if runner is None:
            exe = shutil.which("vcgencmd")
            if not exe:
                raise SensorUnavailable("no vcgencmd")

            def runner() -> str:
                return subprocess.run([exe, "pmic_read_adc"], capture_output=True, text=True, timeout=2).stdout
        s = cls(runner)
        s.read()
        return s


# --------------------------------------------------------------------------- tegrastats
_TEGRA = re.compile(r"\b(VDD_IN|POM_5V_IN|VIN_SYS_5V0)\s+(\d+)(?:mW)?/(\d+)(?:mW)?")


def parse_tegrastats(line: str) -> float | None:
    """One tegrastats line -> input-rail W now ('VDD_IN 4939mW/4939mW' or 'POM_5V_IN 3015/3015')."""
    m = _TEGRA.search(line)
    return int(m.group(2)) / 1000.0 if m else None


class TegrastatsSensor(Sensor):
    """Latest input-rail power from a running `tegrastats` (its lines are parsed in a thread)."""

    name = "tegrastats"

    def __init__(self, cmd: list[str], first_wait_s: float = 2.0):
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.latest: float | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()
        if not self._ready.wait(first_wait_s) or self.latest is None:
            self.close()
            raise SensorUnavailable("tegrastats printed no VDD_IN / POM_5V_IN line")

    def _pump(self) -> None:
        for line in self.proc.stdout:
            w = parse_tegrastats(line)
            if w is not None:
                self.latest = w
                self._ready.set()
        self._ready.set()

    def read(self) -> float:
        if self.latest is None:
            raise SensorUnavailable("tegrastats stopped")
        return self.latest

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    @classmethod
    def probe(cls, interval_ms: int = 100) -> "TegrastatsSensor":
        exe = shutil.which("tegrastats")
        if not exe:
            raise SensorUnavailable("no tegrastats")
        return cls([exe, "--interval", str(interval_ms)])


# --------------------------------------------------------------------------- detection
PROBES: dict[str, Callable[[Path], Sensor]] = {
    "rapl": RaplSensor.probe,
    "ina3221": probe_ina3221_hwmon,
    "ina3221-iio": probe_ina3221_iio,
    "ina219": HwmonPowerSensor.probe,
    "pi5-pmic": lambda root: PmicSensor.probe(),
    "tegrastats": lambda root: TegrastatsSensor.probe(),
}


def detect(override: str | None = None, root: str | Path = "/sys") -> tuple[Sensor | None, list[str]]:
    """First readable sensor (or the one named by `override`; 'none' disables) and what was tried.

    Returns (sensor or None, ['rapl (no /sys/class/powercap/intel-rapl:*)', ...]).
    """
    if override in ("none", "off"):
        return None, ["none (disabled by --power none)"]
    if override not in (None, "", "auto") and override not in PROBES:
        from edge.argcheck import ArgumentError  # (a ValueError too): one line in every CLI

        raise ArgumentError(f"--power {override!r}: unknown power sensor; choose auto, none or one of "
                            f"{', '.join(PROBES)}")
    names = list(PROBES) if override in (None, "", "auto") else [override]
    tried = []
    for name in names:
        try:
            return PROBES[name](Path(root)), tried
        except SensorUnavailable as e:
            tried.append(f"{name} ({e})")
        except OSError as e:
            tried.append(f"{name} ({e})")
    return None, tried


@dataclass(frozen=True)
class PowerResult:
    """Mean W and energy over a sampled span (None where nothing was measured)."""

    source: str
    mean_w: float | None
    energy_j: float | None
    duration_s: float
    samples: int


class PowerSampler:
    """Background thread sampling a sensor every `interval_s`; `stop()` returns a PowerResult."""

    def __init__(self, sensor: Sensor, interval_s: float = 0.1):
        self.sensor, self.interval_s = sensor, float(interval_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._samples: list[tuple[float, float]] = []
        self.errors = 0

    def _sample(self) -> None:
        try:
            self._samples.append((time.perf_counter(), float(self.sensor.read())))
        except (SensorUnavailable, OSError, ValueError):
            self.errors += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> "PowerSampler":
        self._samples.clear()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="power-sampler", daemon=True)
        self._thread.start()
        return self

    def snapshot(self) -> PowerResult:
        """Mean W / energy over the samples so far, without stopping (for interim summaries)."""
        return integrate(list(self._samples), self.sensor.kind, self.sensor.describe())

    def stop(self) -> PowerResult:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sample()
        return integrate(self._samples, self.sensor.kind, self.sensor.describe())


def integrate(samples: list[tuple[float, float]], kind: str, source: str) -> PowerResult:
    """(t, value) samples -> PowerResult: energy counters by difference, power by trapezoids."""
    if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
        return PowerResult(source, None, None, 0.0, len(samples))
    t0, t1 = samples[0][0], samples[-1][0]
    if kind == "energy":
        energy = samples[-1][1] - samples[0][1]
    else:
        energy = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(samples[:-1], samples[1:]))
    return PowerResult(source, energy / (t1 - t0), energy, t1 - t0, len(samples))
