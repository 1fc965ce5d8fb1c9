from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pynvml
import pytest

from carbon.sources import ProbeResult, detect_sources, probe_machine
from carbon.sources.base import Component, PowerSource
from carbon.sources.cpu_estimate import CpuEstimateSource
from carbon.sources.ram_estimate import RamEstimateSource
from carbon.sources.rapl import RaplSource
from carbon.testing.simulated_gpu import SimulatedGpu, SimulatedNvml, simulated_nvml

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


def by_method(results: list[ProbeResult]) -> dict[tuple[Component, str], ProbeResult]:
    return {(result.component, result.method): result for result in results}


def _simulated(**kwargs: Any) -> SimulatedNvml:
    return simulated_nvml(
        [SimulatedGpu(), SimulatedGpu(name="NVIDIA A100-SXM4-80GB", counter_supported=False)],
        **kwargs,
    )


def test_probe_reports_gpus_and_shuts_nvml_down(
    monkeypatch: pytest.MonkeyPatch, powercap: Path, proc: Path
) -> None:
    sim = _simulated()
    monkeypatch.setitem(sys.modules, "pynvml", sim)
    gpu = by_method(probe_machine(powercap_root=powercap, proc_root=proc))[Component.GPU, "nvml"]
    assert gpu.available
    assert gpu.used
    assert "550.54.15" in gpu.detail
    assert "0: NVIDIA H100 80GB HBM3 (energy counter)" in gpu.detail
    assert "1: NVIDIA A100-SXM4-80GB (no energy counter: power)" in gpu.detail
    assert sim.init_count == 0  # every nvmlInit was matched by an nvmlShutdown


def test_probe_reports_nvml_init_failure(
    monkeypatch: pytest.MonkeyPatch, powercap: Path, proc: Path
) -> None:
    sim = _simulated(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    monkeypatch.setitem(sys.modules, "pynvml", sim)
    gpu = by_method(probe_machine(powercap_root=powercap, proc_root=proc))[Component.GPU, "nvml"]
    assert not gpu.available
    assert "library" in gpu.detail.lower()


def test_detected_gpus_come_first(
    monkeypatch: pytest.MonkeyPatch, powercap: Path, proc: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _simulated())
    sources = detect_sources(powercap_root=powercap, proc_root=proc)
    try:
        components = [d.component for source in sources for d in source.devices]
        methods = [d.method for source in sources for d in source.devices]
    finally:
        for source in sources:
            source.close()
    assert components[:2] == [Component.GPU, Component.GPU]
    assert methods[:2] == ["nvml_counter", "nvml_power"]


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
    monkeypatch.setitem(sys.modules, "pynvml", _simulated())
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
    monkeypatch.setitem(sys.modules, "pynvml", _simulated())
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
