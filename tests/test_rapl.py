from __future__ import annotations

from pathlib import Path

import pytest

from carbon.errors import SourceError, SourceUnavailable
from carbon.sources import rapl
from carbon.sources.base import Component, PowerSource, Provenance
from carbon.sources.rapl import RaplSource

# A typical max_energy_range_uj on Intel server packages (2**38 x 61 uJ units, ~262 kJ).
MAX_RANGE_UJ = 262_143_328_850


def zone(root: Path, folder: str, name: str, energy_uj: int, max_uj: int = MAX_RANGE_UJ) -> Path:
    path = root / folder
    path.mkdir(parents=True)
    (path / "name").write_text(f"{name}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return path


def set_energy(path: Path, energy_uj: int) -> None:
    (path / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    """Two packages with core, uncore and DRAM subzones, a psys zone and the control folder."""
    root = tmp_path / "powercap"
    (root / "intel-rapl").mkdir(parents=True)  # the control type, not a zone
    zone(root, "intel-rapl:0", "package-0", 1_000_000)
    zone(root, "intel-rapl:0:0", "core", 500_000)
    zone(root, "intel-rapl:0:1", "uncore", 100_000)
    zone(root, "intel-rapl:0:2", "dram", 2_000_000)
    zone(root, "intel-rapl:1", "package-1", 7_000_000)
    zone(root, "intel-rapl:1:0", "dram", 0)
    zone(root, "intel-rapl:2", "psys", 9_000_000)
    return root


def test_finds_packages_only(powercap: Path) -> None:
    source = RaplSource.open(powercap, cpu_name="Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz")
    assert isinstance(source, PowerSource)
    assert [device.index for device in source.devices] == [0, 1]
    for device in source.devices:
        assert device.component is Component.CPU
        assert device.method == "rapl"
        assert device.provenance is Provenance.MEASURED
        assert device.name == "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"
        assert "energy_uj" in device.detail


def test_energy_since_open_and_average_power(powercap: Path) -> None:
    source = RaplSource.open(powercap)
    first = source.read(100.0)
    assert [reading.energy_j for reading in first] == [0.0, 0.0]
    assert [reading.power_w for reading in first] == [None, None]

    set_energy(powercap / "intel-rapl:0", 3_500_000)  # +2.5 J
    set_energy(powercap / "intel-rapl:1", 7_400_000)  # +0.4 J
    second = source.read(102.0)
    assert [reading.energy_j for reading in second] == pytest.approx([2.5, 0.4])
    assert [reading.power_w for reading in second] == pytest.approx([1.25, 0.2])

    set_energy(powercap / "intel-rapl:0", 4_500_000)  # +1.0 J
    third = source.read(104.0)
    assert [reading.energy_j for reading in third] == pytest.approx([3.5, 0.4])
    assert [reading.power_w for reading in third] == pytest.approx([0.5, 0.0])


def test_wrap_around(tmp_path: Path) -> None:
    package = zone(tmp_path, "intel-rapl:0", "package-0", MAX_RANGE_UJ - 328_850 - 1_000_000)
    source = RaplSource.open(tmp_path)
    set_energy(package, MAX_RANGE_UJ - 328_850)  # +1.0 J, just below the top
    assert source.read(1.0)[0].energy_j == pytest.approx(1.0)
    set_energy(package, 500_000)  # wrapped: 328_850 uJ to the top, then 500_000 uJ
    # 1.0 J + (262_143_328_850 - 262_143_000_000 + 500_000) uJ = 1.0 + 0.82885 J
    reading = source.read(2.0)[0]
    assert reading.energy_j == pytest.approx(1.82885)
    assert reading.power_w == pytest.approx(0.82885)


def test_dram_is_a_ram_source(powercap: Path) -> None:
    source = RaplSource.open(powercap, component=Component.RAM)
    assert [device.component for device in source.devices] == [Component.RAM, Component.RAM]
    assert [device.index for device in source.devices] == [0, 1]
    assert source.devices[0].name == "DRAM of package 0"
    set_energy(powercap / "intel-rapl:0:2", 2_750_000)  # +0.75 J
    set_energy(powercap / "intel-rapl:1:0", 250_000)  # +0.25 J
    assert [reading.energy_j for reading in source.read(5.0)] == pytest.approx([0.75, 0.25])


def test_no_dram_zone(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    with pytest.raises(SourceUnavailable, match="no RAPL DRAM zone"):
        RaplSource.open(tmp_path, component=Component.RAM)


def test_absent_powercap(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match="does not exist"):
        RaplSource.open(tmp_path / "missing")


def test_powercap_without_packages(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "psys", 0)
    with pytest.raises(SourceUnavailable, match="no RAPL CPU package zone"):
        RaplSource.open(tmp_path)


def test_permission_denied_says_how_to_fix(powercap: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests may run as root, where chmod cannot take read access away; fail the read instead.
    def denied(path: Path) -> int:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(rapl, "_read_int", denied)
    with pytest.raises(SourceUnavailable, match="permission denied") as caught:
        RaplSource.open(powercap)
    assert "root" in str(caught.value)
    assert "chmod" in str(caught.value)
    assert "container" in str(caught.value)


def test_missing_max_range_is_unavailable(tmp_path: Path) -> None:
    package = zone(tmp_path, "intel-rapl:0", "package-0", 0)
    (package / "max_energy_range_uj").unlink()
    with pytest.raises(SourceUnavailable, match="cannot be read"):
        RaplSource.open(tmp_path)


def test_counter_vanishing_mid_run_is_a_source_error(powercap: Path) -> None:
    source = RaplSource.open(powercap)
    (powercap / "intel-rapl:1" / "energy_uj").unlink()
    with pytest.raises(SourceError, match="could not be read"):
        source.read(1.0)


def test_garbage_in_counter_is_a_source_error(powercap: Path) -> None:
    source = RaplSource.open(powercap)
    (powercap / "intel-rapl:0" / "energy_uj").write_text("not a number\n")
    with pytest.raises(SourceError):
        source.read(1.0)


def test_read_after_close(powercap: Path) -> None:
    source = RaplSource.open(powercap)
    source.close()
    with pytest.raises(SourceError, match="after close"):
        source.read(1.0)


def test_gpu_is_not_a_rapl_component(powercap: Path) -> None:
    with pytest.raises(ValueError, match="not GPUs"):
        RaplSource.open(powercap, component=Component.GPU)
