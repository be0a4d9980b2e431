"""Power sensors: each parser on files in its exact on-device format, detection, integration."""
import sys
import time
from pathlib import Path

import pytest

from edge.device import power


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_rapl_sums_packages_and_handles_wraparound(tmp_path):
    z0 = tmp_path / "class/powercap/intel-rapl:0"
    z1 = tmp_path / "class/powercap/intel-rapl:1"
    sub = tmp_path / "class/powercap/intel-rapl:0:0"  # core sub-zone: inside the package, not added
    for z, name, e in ((z0, "package-0", "262143000000\n"), (z1, "package-1", "1000\n"), (sub, "core", "5\n")):
        _write(z / "name", name + "\n")
        _write(z / "energy_uj", e)
        _write(z / "max_energy_range_uj", "262143328850\n")
    sensor, tried = power.detect("rapl", root=tmp_path)
    assert isinstance(sensor, power.RaplSensor) and tried == []
    assert [z.name for z in sensor.zones] == ["intel-rapl:0", "intel-rapl:1"]
    assert sensor.read() == 0.0
    _write(z0 / "energy_uj", "1000000\n")  # wrapped: 262143328850 - 262143000000 + 1000000 µJ
    _write(z1 / "energy_uj", "3001000\n")  # +3 J
    _write(sub / "energy_uj", "999999999\n")
    assert sensor.read() == pytest.approx((328850 + 1000000) / 1e6 + 3.0)


def test_ina3221_hwmon_uses_input_rail_only(tmp_path):
    d = tmp_path / "class/hwmon/hwmon3"
    _write(d / "name", "ina3221\n")
    for n, label, mv, ma in ((1, "VDD_IN", 5080, 1200), (2, "VDD_CPU_GPU_CV", 5072, 500), (3, "VDD_SOC", 5070, 300)):
        _write(d / f"in{n}_label", label + "\n")
        _write(d / f"in{n}_input", f"{mv}\n")
        _write(d / f"curr{n}_input", f"{ma}\n")
    sensor, _ = power.detect("ina3221", root=tmp_path)
    assert sensor.rail.label == "VDD_IN"
    assert sensor.read() == pytest.approx(5.080 * 1.200)  # never + the CPU/GPU/SOC rails


def test_ina3221_iio_older_l4t_files(tmp_path):
    d = tmp_path / "bus/iio/devices/iio:device0"
    _write(d / "name", "ina3221x\n")
    for n, label, mv, ma in ((0, "POM_5V_IN", 5000, 700), (1, "POM_5V_GPU", 5000, 100), (2, "POM_5V_CPU", 5000, 200)):
        _write(d / f"rail_name_{n}", label + "\n")
        _write(d / f"in_voltage{n}_input", f"{mv}\n")
        _write(d / f"in_current{n}_input", f"{ma}\n")
    sensor, tried = power.detect(None, root=tmp_path)
    assert sensor.name == "ina3221-iio" and sensor.rail.label == "POM_5V_IN"
    assert sensor.read() == pytest.approx(3.5)
    assert any(t.startswith("rapl") for t in tried)


def test_ina3221_without_input_rail_is_not_guessed(tmp_path):
    d = tmp_path / "class/hwmon/hwmon0"
    _write(d / "name", "ina3221\n")
    _write(d / "in1_label", "VDD_CPU\n")
    _write(d / "in1_input", "5000\n")
    _write(d / "curr1_input", "100\n")
    sensor, tried = power.detect("ina3221", root=tmp_path)
    assert sensor is None and "no input rail" in tried[0]


@pytest.mark.parametrize("line, watts", [
    ("RAM 2210/7620MB (lfb 1x4MB) CPU [3%@1510,1%@1510] EMC_FREQ 0% GR3D_FREQ 0% cpu@43.5C "
     "VDD_IN 4939mW/4939mW VDD_CPU_GPU_CV 558mW/558mW VDD_SOC 1435mW/1435mW", 4.939),
    ("RAM 1522/3964MB (lfb 5x2MB) SWAP 0/1982MB CPU [4%@102,2%@102,off,off] EMC_FREQ 0%@1600 "
     "GR3D_FREQ 0%@76 PLL@26C CPU@28.5C POM_5V_IN 3015/3015 POM_5V_GPU 0/0 POM_5V_CPU 123/123", 3.015),
    ("RAM 1522/3964MB CPU [4%@102] GR3D_FREQ 0%", None),
])
def test_tegrastats_both_jetpack_styles(line, watts):
    assert power.parse_tegrastats(line) == (pytest.approx(watts) if watts else None)


def test_tegrastats_sensor_reads_a_running_process(tmp_path):
    f = tmp_path / "tegrastats.txt"
    f.write_text("RAM 1/2MB VDD_IN 4000mW/4000mW VDD_SOC 1mW/1mW\nRAM 1/2MB VDD_IN 6000mW/5000mW\n")
    sensor = power.TegrastatsSensor([sys.executable, "-c", f"import sys; sys.stdout.write(open({str(f)!r}).read())"])
    deadline = time.time() + 5
    while sensor.read() != 6.0 and time.time() < deadline:
        time.sleep(0.01)
    assert sensor.read() == 6.0
    sensor.close()


PMIC = """\
     3V7_WL_SW_A current(0)=0.00000000A
     3V3_SYS_A current(1)=0.06050400A
     1V8_SYS_A current(2)=0.17177000A
     VDD_CORE_A current(7)=2.34000000A
     3V7_WL_SW_V volt(8)=3.74426700V
     3V3_SYS_V volt(9)=3.31599800V
     1V8_SYS_V volt(10)=1.79999800V
     VDD_CORE_V volt(15)=0.85000000V
     EXT5V_V volt(24)=5.12600000V
     BATT_V volt(25)=0.00000000V
"""


def test_pi5_pmic_sums_v_times_i_per_rail():
    want = 0.0 * 3.744267 + 0.060504 * 3.315998 + 0.17177 * 1.799998 + 2.34 * 0.85
    assert power.parse_pmic_adc(PMIC) == pytest.approx(want)
    sensor = power.PmicSensor.probe(runner=lambda: PMIC)
    assert sensor.read() == pytest.approx(want)
    with pytest.raises(power.SensorUnavailable):
        power.parse_pmic_adc("error=1 error_msg=\"Command not registered\"\n")


def test_ina219_power1_input_microwatts(tmp_path):
    d = tmp_path / "class/hwmon/hwmon1"
    _write(d / "name", "ina219\n")
    _write(d / "power1_input", "2450000\n")
    sensor, _ = power.detect("ina219", root=tmp_path)
    assert sensor.read() == pytest.approx(2.45)


def test_no_sensor_says_what_was_tried(tmp_path):
    sensor, tried = power.detect("auto", root=tmp_path)
    assert sensor is None
    names = [t.split(" ")[0] for t in tried]
    assert names[:4] == ["rapl", "ina3221", "ina3221-iio", "ina219"]
    assert power.detect("none")[0] is None
    with pytest.raises(ValueError, match="unknown power sensor"):
        power.detect("nvml")


def test_integration_energy_and_power():
    r = power.integrate([(0.0, 10.0), (1.0, 14.0), (2.0, 20.0)], "energy", "rapl")
    assert r.energy_j == pytest.approx(10.0) and r.mean_w == pytest.approx(5.0)
    r = power.integrate([(0.0, 4.0), (1.0, 6.0), (3.0, 6.0)], "power", "ina219")
    assert r.energy_j == pytest.approx(5.0 + 12.0) and r.mean_w == pytest.approx(17.0 / 3)
    assert power.integrate([(0.0, 1.0)], "power", "x").mean_w is None


def test_sampler_runs_in_background():
    class Fake(power.Sensor):
        name, kind = "fake", "power"

        def read(self):
            return 2.0

    s = power.PowerSampler(Fake(), interval_s=0.01).start()
    time.sleep(0.1)
    r = s.stop()
    assert r.samples >= 3 and r.mean_w == pytest.approx(2.0) and r.energy_j == pytest.approx(2.0 * r.duration_s)
