from __future__ import annotations

from pathlib import Path

import pytest

from carbon.errors import SourceError, SourceUnavailable
from carbon.sources._procfs import mem_total_bytes
from carbon.sources.base import Component, PowerSource, Provenance
from carbon.sources.ram_estimate import RamEstimateSource, estimate_dimm_count, ram_power_w

GIB = 1024**3


def write_meminfo(proc: Path, mem_total_kb: int) -> None:
    (proc / "meminfo").write_text(
        f"MemTotal:       {mem_total_kb} kB\nMemFree:         1000 kB\nMemAvailable:    2000 kB\n"
    )


@pytest.mark.parametrize(
    ("total_gib", "dimms"),
    [(1, 1), (2, 1), (4, 2), (16, 2), (24, 4), (32, 4), (64, 4), (96, 8), (128, 8),
     (256, 8), (1024, 8), (2048, 16), (4096, 32), (16384, 32)],
)  # fmt: skip
def test_dimm_count(total_gib: float, dimms: int) -> None:
    assert estimate_dimm_count(total_gib) == dimms


@pytest.mark.parametrize(
    ("total_gib", "power_w"),
    [
        (1, 10.0),  # 1 DIMM x 5 W = 5 W, raised to the 10 W minimum
        (8, 10.0),  # 2 x 5 W
        (24, 20.0),  # 4 x 5 W
        (96, 38.0),  # 8 DIMMs: 4 x 5 + 4 x 4.5
        (2048, 70.0),  # 16 DIMMs: 20 + 18 + 8 x 4
        (4096, 126.0),  # 32 DIMMs: 20 + 18 + 32 + 16 x 3.5
    ],
)
def test_x86_power(total_gib: int, power_w: float) -> None:
    assert ram_power_w(total_gib * GIB) == pytest.approx(power_w)


def test_arm_power() -> None:
    assert ram_power_w(24 * GIB, arm=True) == pytest.approx(6.0)  # 4 x 1.5 W
    assert ram_power_w(1 * GIB, arm=True) == pytest.approx(3.0)  # 1.5 W, raised to 3 W


@pytest.mark.parametrize("total_bytes", [0, -1])
def test_power_needs_memory(total_bytes: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        ram_power_w(total_bytes)


def test_constant_power_integrated_over_time(tmp_path: Path) -> None:
    write_meminfo(tmp_path, 24 * 1024 * 1024)  # 24 GiB -> 20 W
    source = RamEstimateSource.open(proc_root=tmp_path, machine="x86_64", now_s=100.0)
    assert isinstance(source, PowerSource)
    (device,) = source.devices
    assert device.component is Component.RAM
    assert device.method == "ram_estimate"
    assert device.provenance is Provenance.ESTIMATED
    assert device.memory_bytes == 24 * GIB
    assert "4 DIMM(s)" in device.detail
    assert "20 W" in device.detail

    (first,) = source.read(100.0)
    assert first.energy_j == 0.0
    (second,) = source.read(110.0)
    assert second.power_w == 20.0
    assert second.energy_j == pytest.approx(200.0)
    (third,) = source.read(112.5)
    assert third.energy_j == pytest.approx(250.0)


def test_arm_machine(tmp_path: Path) -> None:
    write_meminfo(tmp_path, 24 * 1024 * 1024)
    source = RamEstimateSource.open(proc_root=tmp_path, machine="aarch64", now_s=0.0)
    assert source.read(10.0)[0].energy_j == pytest.approx(60.0)  # 6 W x 10 s


def test_meminfo_reader(tmp_path: Path) -> None:
    write_meminfo(tmp_path, 24683656)
    assert mem_total_bytes(tmp_path) == 24683656 * 1024
    (tmp_path / "meminfo").write_text("MemFree: 1 kB\n")
    assert mem_total_bytes(tmp_path) is None


def test_missing_meminfo(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match="memory size cannot be read"):
        RamEstimateSource.open(proc_root=tmp_path)


def test_meminfo_without_total(tmp_path: Path) -> None:
    (tmp_path / "meminfo").write_text("MemFree: 1 kB\n")
    with pytest.raises(SourceUnavailable, match="no MemTotal"):
        RamEstimateSource.open(proc_root=tmp_path)


def test_read_errors(tmp_path: Path) -> None:
    write_meminfo(tmp_path, 8 * 1024 * 1024)
    source = RamEstimateSource.open(proc_root=tmp_path, now_s=5.0)
    with pytest.raises(ValueError, match="backwards"):
        source.read(4.0)
    source.close()
    with pytest.raises(SourceError, match="after close"):
        source.read(6.0)
