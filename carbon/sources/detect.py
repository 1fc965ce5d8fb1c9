"""Find the power sources this machine offers: a factory, and a report for ``carbon doctor``.

:func:`detect_sources` returns fresh source objects each call (no module state), probing in
this order, one probe per component; a probe takes the first method that opens:

1. GPUs (NVML, or simulated ones with ``CARBON_SIMULATE_GPUS``): the energy counter, else
   power; in a distributed job, only this local rank's share of the visible GPUs.
2. CPU: RAPL package counters (measured), else the TDP x load estimate.
3. RAM: the RAPL DRAM counter (measured), else the DIMM-count estimate.

A component that no method can cover (``/proc`` unreadable, not Linux) is left out rather
than failing the run; :func:`probe_machine` says why, method by method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from carbon.errors import SourceUnavailable
from carbon.sources import _procfs
from carbon.sources.base import Component, PowerSource
from carbon.sources.cpu_estimate import CpuEstimateSource
from carbon.sources.nvml import NvmlSource, nvml_probe
from carbon.sources.ram_estimate import RamEstimateSource
from carbon.sources.rapl import DEFAULT_POWERCAP_ROOT, RaplSource

if TYPE_CHECKING:
    from carbon.settings import Settings

__all__ = ["ProbeResult", "detect_sources", "probe_machine"]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one method can do on this machine.

    Attributes:
        component: GPU, CPU or RAM.
        method: The method's name as sources report it (``rapl``, ``tdp_estimate``, ``nvml``).
        available: Whether the method works here.
        detail: What it found, or why it is not available and how to fix that.
        used: Whether :func:`detect_sources` picks this method for its component.
    """

    component: Component
    method: str
    available: bool
    detail: str
    used: bool = False


@dataclass(frozen=True, slots=True)
class _Roots:
    powercap: Path
    proc: Path


def _cpu_name(proc_root: Path) -> str | None:
    try:
        return _procfs.cpu_model_name(proc_root)
    except OSError:
        return None


def _open_rapl_cpu(roots: _Roots) -> PowerSource:
    name = _cpu_name(roots.proc)
    return RaplSource.open(roots.powercap, component=Component.CPU, cpu_name=name)


def _open_cpu_estimate(roots: _Roots) -> PowerSource:
    return CpuEstimateSource.open(proc_root=roots.proc)


def _open_rapl_ram(roots: _Roots) -> PowerSource:
    return RaplSource.open(roots.powercap, component=Component.RAM)


def _open_ram_estimate(roots: _Roots) -> PowerSource:
    return RamEstimateSource.open(proc_root=roots.proc)


_Opener = Callable[[_Roots], PowerSource]

_PROBES: tuple[tuple[Component, tuple[tuple[str, _Opener], ...]], ...] = (
    (Component.CPU, (("rapl", _open_rapl_cpu), ("tdp_estimate", _open_cpu_estimate))),
    (Component.RAM, (("rapl", _open_rapl_ram), ("ram_estimate", _open_ram_estimate))),
)
"""Per component, its methods in order of preference; the first that opens is used."""


def _simulated(settings: Settings) -> ModuleType:
    """A simulated NVML with ``settings.simulate_gpus`` H100s drawing bursty power."""
    from carbon.testing.power_traces import BurstTrace
    from carbon.testing.simulated_gpu import SimulatedGpu, simulated_nvml

    return simulated_nvml(
        [SimulatedGpu(trace=BurstTrace(seed=i)) for i in range(settings.simulate_gpus)]
    )


def _open_gpus(settings: Settings | None) -> PowerSource | None:
    """This process's GPUs through NVML, or ``None`` where there are none to measure.

    In a distributed job each local rank measures its share of the node's visible GPUs:
    the one it sees, when it sees one, else every ``local_world_size``-th from its local
    rank (torchrun's convention of rank ``k`` using device ``k``).
    """
    visible = settings.cuda_visible_devices if settings else None
    nvml = _simulated(settings) if settings and settings.simulate_gpus else None
    try:
        source = NvmlSource.open(visible_devices=visible, nvml=nvml)
    except SourceUnavailable:
        return None
    if settings is None or not settings.distributed or len(source.devices) < 2:
        return source
    local_rank = settings.local_rank or 0
    stride = settings.local_world_size or len(source.devices)
    mine = [
        device.uuid or str(device.index)
        for position, device in enumerate(source.devices)
        if position % stride == local_rank
    ]
    source.close()
    if not mine:
        return None
    try:
        return NvmlSource.open(visible_devices=",".join(mine), nvml=nvml)
    except SourceUnavailable:
        return None


def detect_sources(
    *,
    settings: Settings | None = None,
    powercap_root: Path = DEFAULT_POWERCAP_ROOT,
    proc_root: Path = _procfs.DEFAULT_PROC_ROOT,
) -> list[PowerSource]:
    """Open a fresh source for every component this process should account for.

    In a distributed job, the machine-wide components (CPU, RAM) are measured by the
    node's local rank 0 only, so the job's run counts each node once.

    Args:
        settings: Ranks of a distributed job; ``None`` for a single process.
        powercap_root: The powercap folder (``/sys/class/powercap``).
        proc_root: The proc folder (``/proc``).

    Returns:
        New, open sources in probe order (see the module docstring); the caller closes them.
    """
    roots = _Roots(powercap=powercap_root, proc=proc_root)
    sources: list[PowerSource] = []
    gpus = _open_gpus(settings)
    if gpus is not None:
        sources.append(gpus)
    if settings is not None and settings.distributed and (settings.local_rank or 0) != 0:
        return sources  # the node's CPU and RAM are local rank 0's to measure
    for _component, methods in _PROBES:
        for _method, opener in methods:
            try:
                sources.append(opener(roots))
            except SourceUnavailable:
                continue
            break
    return sources


def _try_method(component: Component, method: str, opener: _Opener, roots: _Roots) -> ProbeResult:
    """Open a source to see whether it works, describe it, and close it again."""
    try:
        source = opener(roots)
    except SourceUnavailable as exc:
        return ProbeResult(component, method, available=False, detail=str(exc))
    try:
        detail = "; ".join(f"{device.name}: {device.detail}" for device in source.devices)
    finally:
        source.close()
    return ProbeResult(component, method, available=True, detail=detail)


def probe_machine(
    *,
    settings: Settings | None = None,
    powercap_root: Path = DEFAULT_POWERCAP_ROOT,
    proc_root: Path = _procfs.DEFAULT_PROC_ROOT,
) -> list[ProbeResult]:
    """Explain what this machine can measure and how, method by method.

    Every method is tried (and closed again), including those :func:`detect_sources` would
    not pick, so ``carbon doctor`` can show what is used and what the alternative would be;
    ``used`` marks the method :func:`detect_sources` picks. Nothing is kept open.
    """
    roots = _Roots(powercap=powercap_root, proc=proc_root)
    available, detail = nvml_probe(
        visible_devices=settings.cuda_visible_devices if settings else None,
        nvml=_simulated(settings) if settings and settings.simulate_gpus else None,
    )
    results = [ProbeResult(Component.GPU, "nvml", available, detail, used=available)]
    for component, methods in _PROBES:
        chosen = False
        for method, opener in methods:
            result = _try_method(component, method, opener, roots)
            if result.available and not chosen:
                chosen = True
                result = dataclasses.replace(result, used=True)
            results.append(result)
    return results
