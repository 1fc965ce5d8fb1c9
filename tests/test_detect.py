from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from carbon.sources import ProbeResult, detect_sources, probe_machine
from carbon.sources.base import Component, PowerSource
from carbon.sources.cpu_estimate import CpuEstimateSource
from carbon.sources.ram_estimate import RamEstimateSource
from carbon.sources.rapl import RaplSource

CPU_NAME = "AMD EPYC 7763 64-Core Processor"


def make_zone(root: Path, folder: str, name: str) -> None:
    path = root / folder
    path.mkdir(parents=True)
    (path / "name").write_text(f"{name}\n")
    (path / "energy_uj").write_text("1000\n")
    (path / "max_energy_range_uj").write_text("262143328850\n")


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    """A /proc with a line for every CPU this process may run on, 24 GiB of memory."""
    root = tmp_path / "proc"
    root.mkdir()
    cpus = range(os.cpu_count() or 1)
    stat = ["cpu  0 0 0 0 0 0 0 0 0 0"] + [f"cpu{cpu} 10 0 5 100 0 0 0 0 0 0" for cpu in cpus]
    (root / "stat").write_text("\n".join(stat) + "\n")
    (root / "cpuinfo").write_text(f"processor\t: 0\nmodel name\t: {CPU_NAME}\nphysical id\t: 0\n")
    (root / "meminfo").write_text("MemTotal:       25165824 kB\n")
    return root


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    root = tmp_path / "powercap"
    make_zone(root, "intel-rapl:0", "package-0")
    make_zone(root, "intel-rapl:0:0", "core")
    return root


def kinds(sources: list[PowerSource]) -> list[tuple[type, Component]]:
    return [(type(source), source.devices[0].component) for source in sources]


def test_rapl_packages_and_dram(powercap: Path, proc: Path) -> None:
    make_zone(powercap, "intel-rapl:0:1", "dram")
    sources = detect_sources(powercap_root=powercap, proc_root=proc)
    assert kinds(sources) == [(RaplSource, Component.CPU), (RaplSource, Component.RAM)]
    assert sources[0].devices[0].name == CPU_NAME


def test_rapl_without_dram_uses_the_ram_estimate(powercap: Path, proc: Path) -> None:
    sources = detect_sources(powercap_root=powercap, proc_root=proc)
    assert kinds(sources) == [(RaplSource, Component.CPU), (RamEstimateSource, Component.RAM)]


def test_no_rapl_uses_both_estimates(tmp_path: Path, proc: Path) -> None:
    sources = detect_sources(powercap_root=tmp_path / "none", proc_root=proc)
    assert kinds(sources) == [
        (CpuEstimateSource, Component.CPU),
        (RamEstimateSource, Component.RAM),
    ]
    assert sources[0].devices[0].power_limit_w == 280.0  # AMD EPYC 7763 row of cpu_power.csv


def test_nothing_readable_gives_no_sources(tmp_path: Path) -> None:
    assert detect_sources(powercap_root=tmp_path / "none", proc_root=tmp_path / "none") == []


def test_each_call_returns_fresh_objects(powercap: Path, proc: Path) -> None:
    first = detect_sources(powercap_root=powercap, proc_root=proc)
    second = detect_sources(powercap_root=powercap, proc_root=proc)
    assert all(a is not b for a, b in zip(first, second, strict=True))


class FakeNvml(types.ModuleType):
    """Enough of pynvml for the probe, recording whether it was shut down."""

    class NVMLError(Exception):
        """pynvml's base error."""

    def __init__(self, *, init_error: str | None = None, count_error: str | None = None) -> None:
        super().__init__("pynvml")
        self.init_error = init_error
        self.count_error = count_error
        self.shut_down = False

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's name
        if self.init_error:
            raise self.NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.shut_down = True

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        if self.count_error:
            raise self.NVMLError(self.count_error)
        return 2

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        return "550.54.15"

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes | str:  # noqa: N802
        return b"NVIDIA H100 80GB HBM3" if handle == 0 else "NVIDIA A100-SXM4-80GB"


def by_method(results: list[ProbeResult]) -> dict[tuple[Component, str], ProbeResult]:
    return {(result.component, result.method): result for result in results}


def test_probe_reports_gpus_and_shuts_nvml_down(
    monkeypatch: pytest.MonkeyPatch, powercap: Path, proc: Path
) -> None:
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    gpu = by_method(probe_machine(powercap_root=powercap, proc_root=proc))[Component.GPU, "nvml"]
    assert gpu.available
    assert "550.54.15" in gpu.detail
    assert "0: NVIDIA H100 80GB HBM3" in gpu.detail
    assert "1: NVIDIA A100-SXM4-80GB" in gpu.detail
    assert fake.shut_down


def test_probe_reports_nvml_init_failure(
    monkeypatch: pytest.MonkeyPatch, powercap: Path, proc: Path
) -> None:
    fake = FakeNvml(init_error="NVML Shared Library Not Found")
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    gpu = by_method(probe_machine(powercap_root=powercap, proc_root=proc))[Component.GPU, "nvml"]
    assert not gpu.available
    assert "NVML Shared Library Not Found" in gpu.detail
    assert not fake.shut_down  # never started


def test_probe_shuts_nvml_down_after_a_failure(
    monkeypatch: pytest.MonkeyPatch, powercap: Path, proc: Path
) -> None:
    fake = FakeNvml(count_error="Driver Not Loaded")
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    gpu = by_method(probe_machine(powercap_root=powercap, proc_root=proc))[Component.GPU, "nvml"]
    assert not gpu.available
    assert "Driver Not Loaded" in gpu.detail
    assert fake.shut_down


def test_probe_without_the_nvml_package(
    monkeypatch: pytest.MonkeyPatch, powercap: Path, proc: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    gpu = by_method(probe_machine(powercap_root=powercap, proc_root=proc))[Component.GPU, "nvml"]
    assert not gpu.available
    assert "not installed" in gpu.detail


def test_probe_with_rapl_marks_rapl_used_and_still_describes_the_estimates(
    monkeypatch: pytest.MonkeyPatch, powercap: Path, proc: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    results = by_method(probe_machine(powercap_root=powercap, proc_root=proc))
    assert results[Component.CPU, "rapl"].available
    assert results[Component.CPU, "rapl"].used
    estimate = results[Component.CPU, "tdp_estimate"]
    assert estimate.available
    assert not estimate.used
    assert "AMD EPYC 7763" in estimate.detail
    assert not results[Component.RAM, "rapl"].available
    assert "no RAPL DRAM zone" in results[Component.RAM, "rapl"].detail
    assert results[Component.RAM, "ram_estimate"].used
    assert "20 W" in results[Component.RAM, "ram_estimate"].detail


def test_probe_without_rapl_says_why_and_uses_the_estimates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, proc: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    results = probe_machine(powercap_root=tmp_path / "none", proc_root=proc)
    assert [(r.component, r.method) for r in results] == [
        (Component.GPU, "nvml"),
        (Component.CPU, "rapl"),
        (Component.CPU, "tdp_estimate"),
        (Component.RAM, "rapl"),
        (Component.RAM, "ram_estimate"),
    ]
    table = by_method(results)
    assert not table[Component.CPU, "rapl"].available
    assert "does not exist" in table[Component.CPU, "rapl"].detail
    assert table[Component.CPU, "tdp_estimate"].used
    assert table[Component.RAM, "ram_estimate"].used
