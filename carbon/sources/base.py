"""The power-source protocol: what every backend (RAPL, estimates, NVML, ...) provides.

A source covers one or more devices of one component (GPU, CPU or RAM). The sampler calls
:meth:`PowerSource.read` with a monotonic timestamp; the source answers one
:class:`DeviceReading` per device, in the order of :attr:`PowerSource.devices`.

Energy is always cumulative: ``energy_j`` is the energy since the source was opened, as a
hardware counter (RAPL, NVML's energy counter) or as the integral of a model the source
evaluates itself (estimates). A source that can only report power (an older GPU) leaves
``energy_j`` as ``None`` and the sampler integrates ``power_w`` (trapezoids). Keeping the
integration in the sampler means one place decides how power becomes energy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class Component(StrEnum):
    """Which part of the machine a device is."""

    GPU = "gpu"
    CPU = "cpu"
    RAM = "ram"


class Provenance(StrEnum):
    """How an energy figure was obtained; travels with every figure to the store."""

    MEASURED = "measured"
    """Read from a hardware energy counter."""
    INTEGRATED = "integrated"
    """Integrated from power readings taken by the sampler."""
    ESTIMATED = "estimated"
    """Computed from a documented model (TDP x utilization, watts per GiB, ...)."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What a device is and how its energy is obtained.

    Attributes:
        component: GPU, CPU or RAM.
        name: Model name as the system reports it (``AMD EPYC 7763 64-Core Processor``).
        method: Short, stable name of the method (``rapl``, ``tdp_estimate``, ...).
        provenance: Measured, integrated or estimated.
        detail: One sentence a reviewer can check: the counter or the model and its inputs.
        index: Index of the device on its bus or package, where there is one.
        uuid: Stable identifier, where the hardware has one (GPUs).
        power_limit_w: Power cap or TDP in watts, where known.
        memory_bytes: Memory attached to the device, where known.
    """

    component: Component
    name: str
    method: str
    provenance: Provenance
    detail: str
    index: int | None = None
    uuid: str | None = None
    power_limit_w: float | None = None
    memory_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class DeviceReading:
    """One reading of one device.

    Attributes:
        energy_j: Cumulative energy since the source was opened, or ``None`` where the
            source reports power only.
        power_w: Power in watts at (or averaged just before) the reading, if known.
        utilization: Busy fraction 0..1 over the interval since the previous read, if known.
    """

    energy_j: float | None
    power_w: float | None = None
    utilization: float | None = None


@runtime_checkable
class PowerSource(Protocol):
    """A backend that reads energy for the devices of one component.

    A source may also have a ``min_read_interval_s`` attribute: the sampler then reads it
    no more often than that between edges (the edges of the run, of windows and of the
    intervals stored as samples always read every source).
    Estimates evaluated from ``/proc`` use it, as a model gains nothing from 10 Hz.

    A source may also have a ``settle(clock, sleep)`` method, which the sampler calls just
    before each edge reading: a counter that advances in steps (NVML's) waits there for its
    next step, so the edge reading is exact.

    A source may also have ``unread`` and ``lost`` mappings (a device's index in
    ``devices`` → why): the devices it could not read at the last ``read`` (their readings
    are placeholders, and the sampler pauses them, opening a gap), and those that will not
    come back. A source that wraps another passes both through.
    """

    @property
    def devices(self) -> Sequence[DeviceInfo]:
        """The devices this source reads, fixed when the source is opened."""
        ...

    def read(self, now_s: float) -> Sequence[DeviceReading]:
        """Read every device.

        Args:
            now_s: The sampler's ``time.monotonic()`` for this reading; sources that
                integrate a model use it, so all sources share one timeline.

        Returns:
            One reading per device, in the order of :attr:`devices`.

        Raises:
            SourceError: The source could not be read (the device was lost, a counter file
                vanished); the sampler stops reading this source and keeps the others.
        """
        ...

    def close(self) -> None:
        """Release what the source holds (file handles, library handles)."""
        ...


class _Described(Protocol):
    @property
    def component(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def memory_bytes(self) -> int | None: ...


def methods_by_component(devices: Iterable[_Described]) -> dict[str, str | None]:
    """The method names per component (``{"gpu": None, "cpu": "rapl", ...}``).

    Several methods for one component (a GPU with an energy counter beside one without)
    are joined with ``+``; a component with no device is ``None``.
    """
    found: dict[str, set[str]] = {component.value: set() for component in Component}
    for device in devices:
        found[str(device.component)].add(device.method)
    return {component: "+".join(sorted(names)) or None for component, names in found.items()}


def describe_hardware(devices: Iterable[_Described]) -> dict[str, Any]:
    """A short description of a machine (or a job's machines) from its measured devices.

    Returns:
        ``cpu`` (model, or a list of models), ``gpu`` (model, or a sorted list of models),
        ``gpu_count``, and ``ram_bytes`` (summed over RAM devices that state it); ``None``
        where nothing was measured.
    """
    devices = list(devices)
    cpus = sorted({d.name for d in devices if d.component == Component.CPU})
    gpus = [d.name for d in devices if d.component == Component.GPU]
    ram = [d.memory_bytes for d in devices if d.component == Component.RAM and d.memory_bytes]
    gpu_models = sorted(set(gpus))
    return {
        "cpu": cpus[0] if len(cpus) == 1 else (cpus or None),
        "gpu": gpu_models[0] if len(gpu_models) == 1 else (gpu_models or None),
        "gpu_count": len(gpus),
        "ram_bytes": sum(ram) if ram else None,
    }
