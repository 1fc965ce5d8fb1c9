"""Find the power sources this machine offers: a factory, and a report for ``carbon doctor``.

:func:`detect_sources` returns fresh source objects each call (no module state), probing in
this order, one probe per component; a probe takes the first method that opens:

1. GPUs (NVML): not probed yet; their entry goes first in :data:`_PROBES`.
2. CPU: RAPL package counters (measured), else the TDP x load estimate.
3. RAM: the RAPL DRAM counter (measured), else the DIMM-count estimate.

A component that no method can cover (``/proc`` unreadable, not Linux) is left out rather
than failing the run; :func:`probe_machine` says why, method by method.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from carbon.errors import SourceUnavailable
from carbon.sources import _procfs
from carbon.sources.base import Component, PowerSource
from carbon.sources.cpu_estimate import CpuEstimateSource
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
    # GPUs (NVML) go here, first, once that backend exists.
    (Component.CPU, (("rapl", _open_rapl_cpu), ("tdp_estimate", _open_cpu_estimate))),
    (Component.RAM, (("rapl", _open_rapl_ram), ("ram_estimate", _open_ram_estimate))),
)
"""Per component, its methods in order of preference; the first that opens is used."""


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
    if settings is not None and settings.distributed and (settings.local_rank or 0) != 0:
        return sources
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


def _probe_nvml() -> ProbeResult:
    """Say whether NVML starts and which GPUs it sees; always shut it down again."""
    try:
        import pynvml
    except ImportError as exc:
        return ProbeResult(Component.GPU, "nvml", False, f"nvidia-ml-py is not installed: {exc}")
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # a diagnostic reports every failure instead of crashing
        return ProbeResult(Component.GPU, "nvml", False, f"NVML could not start: {exc}")
    try:
        count = int(pynvml.nvmlDeviceGetCount())
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        names = [
            _text(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(index)))
            for index in range(count)
        ]
    except Exception as exc:  # as above
        return ProbeResult(Component.GPU, "nvml", False, f"NVML started but failed: {exc}")
    finally:
        with contextlib.suppress(Exception):  # nothing more to report after a failed shutdown
            pynvml.nvmlShutdown()
    if not count:
        return ProbeResult(Component.GPU, "nvml", False, f"NVML driver {driver} sees no GPU")
    listed = ", ".join(f"{index}: {name}" for index, name in enumerate(names))
    return ProbeResult(
        Component.GPU, "nvml", True, f"NVML driver {driver}, {count} GPU(s): {listed}"
    )


def _text(value: object) -> str:
    """NVML returns bytes in old bindings and str in new ones."""
    return value.decode() if isinstance(value, bytes) else str(value)


def probe_machine(
    *,
    powercap_root: Path = DEFAULT_POWERCAP_ROOT,
    proc_root: Path = _procfs.DEFAULT_PROC_ROOT,
) -> list[ProbeResult]:
    """Explain what this machine can measure and how, method by method.

    Every method is tried (and closed again), including those :func:`detect_sources` would
    not pick, so ``carbon doctor`` can show what is used and what the alternative would be;
    ``used`` marks the method :func:`detect_sources` picks. Nothing is kept open.
    """
    roots = _Roots(powercap=powercap_root, proc=proc_root)
    results = [_probe_nvml()]
    for component, methods in _PROBES:
        chosen = False
        for method, opener in methods:
            result = _try_method(component, method, opener, roots)
            if result.available and not chosen:
                chosen = True
                result = dataclasses.replace(result, used=True)
            results.append(result)
    return results
