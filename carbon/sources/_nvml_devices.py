"""Finding and describing the GPUs an :class:`~carbon.sources.nvml.NvmlSource` measures.

Which GPUs: ``CUDA_VISIBLE_DEVICES`` is a comma-separated list of device indices or UUIDs
(``GPU-...``, where a unique prefix is enough); CUDA ignores everything from the first entry
that matches no device, and so does :func:`select_devices`. MIG slices are named ``MIG-...``.
Each entry is resolved to an NVML device through its UUID; indices are NVML's (PCI bus)
order, the same as CUDA's under ``CUDA_DEVICE_ORDER=PCI_BUS_ID``.

How: :func:`open_gpu` reads what a GPU is (name, UUID, power limit, memory), refuses MIG
mode, and picks the energy method (see :mod:`carbon.sources._nvml_energy`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from carbon.errors import SourceUnavailable
from carbon.sources._nvml_energy import (
    AverageReconstructor,
    CounterEstimator,
    PowerIntegrator,
    TrapezoidIntegrator,
)
from carbon.sources._nvml_errors import NvmlNotSupported, nvml_errors
from carbon.sources.base import Component, DeviceInfo, Provenance
from carbon.units import MW_PER_W

__all__ = [
    "METHOD_COUNTER",
    "METHOD_POWER",
    "GpuState",
    "PowerAveraging",
    "maybe",
    "open_gpu",
    "required",
    "select_devices",
    "text",
]

METHOD_COUNTER = "nvml_counter"
METHOD_POWER = "nvml_power"

PowerAveraging = Literal["auto", "average_1s", "instant"]

_AMPERE = 7  # NVML_DEVICE_ARCH_AMPERE
_GA100 = re.compile(r"\bA(100|30|800)\b")  # Ampere GA100 parts report instantaneous power


def text(value: object) -> str:
    """NVML returns bytes in old bindings and str in new ones."""
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(slots=True)
class GpuState:
    """One GPU being read, and how its energy is worked out."""

    handle: Any
    label: str
    counter: CounterEstimator | None
    average: AverageReconstructor | None
    power_supported: bool
    utilization_supported: bool = True
    last_energy_j: float = 0.0
    aux_read_s: float = float("-inf")


def required(nvml: ModuleType, what: str, call: Callable[..., Any], *args: Any) -> Any:
    """An NVML call the source cannot open without: every failure means unavailable."""
    try:
        with nvml_errors(nvml, what, opening=True):
            return call(*args)
    except NvmlNotSupported as exc:
        raise SourceUnavailable(str(exc)) from exc


def maybe(nvml: ModuleType, what: str, call: Callable[..., Any] | None, *args: Any) -> Any:
    """An NVML call whose answer is optional: ``None`` when unsupported or absent."""
    if call is None:
        return None
    try:
        with nvml_errors(nvml, what, opening=True):
            return call(*args)
    except NvmlNotSupported:
        return None


def _averages_power(nvml: ModuleType, handle: Any, name: str, mode: PowerAveraging) -> bool:
    if mode != "auto":
        return mode == "average_1s"
    arch_call = getattr(nvml, "nvmlDeviceGetArchitecture", None)
    arch = maybe(nvml, "reading the architecture", arch_call, handle)
    return isinstance(arch, int) and _AMPERE <= arch < 0xFFFF and not _GA100.search(name)


def open_gpu(
    nvml: ModuleType,
    index: int,
    notes: list[str],
    power_averaging: PowerAveraging,
    counter_period_s: float,
) -> tuple[GpuState, DeviceInfo] | None:
    """Describe GPU ``index`` and set up its estimator, or note why it is skipped."""
    handle = required(nvml, f"opening GPU {index}", nvml.nvmlDeviceGetHandleByIndex, index)
    name = text(required(nvml, f"naming GPU {index}", nvml.nvmlDeviceGetName, handle))
    uuid = text(required(nvml, f"reading GPU {index}'s UUID", nvml.nvmlDeviceGetUUID, handle))
    label = f"GPU {index} ({name})"
    mig = maybe(nvml, f"reading the MIG mode of {label}", nvml.nvmlDeviceGetMigMode, handle)
    if mig is not None and mig[0] == nvml.NVML_DEVICE_MIG_ENABLE:
        notes.append(
            f"{label} is in MIG mode: NVML gives no per-slice energy, and the whole GPU's "
            "counter would include other slices' work; skipped"
        )
        return None
    limit_mw = maybe(
        nvml, f"reading {label}'s power limit", nvml.nvmlDeviceGetEnforcedPowerLimit, handle
    )
    memory = maybe(nvml, f"reading {label}'s memory", nvml.nvmlDeviceGetMemoryInfo, handle)
    counter = maybe(
        nvml, f"reading {label}'s energy counter", nvml.nvmlDeviceGetTotalEnergyConsumption, handle
    )
    power = maybe(nvml, f"reading {label}'s power", nvml.nvmlDeviceGetPowerUsage, handle)
    if counter is None and power is None:
        notes.append(f"{label} reports neither an energy counter nor power; skipped")
        return None
    averaged = _averages_power(nvml, handle, name, power_averaging)
    limit_w = None if limit_mw is None else limit_mw / MW_PER_W
    integrator: PowerIntegrator = AverageReconstructor() if averaged else TrapezoidIntegrator()
    if counter is not None:
        estimator = CounterEstimator(
            label,
            integrator,
            notes,
            period_s=counter_period_s,
            instant_power=not averaged,
            max_power_w=2000.0 if limit_w is None else max(1000.0, 2 * limit_w),
            stall_s=max(1.0, 10 * counter_period_s),
        )
        gpu = GpuState(handle, label, estimator, None, power_supported=power is not None)
        method, provenance = METHOD_COUNTER, Provenance.MEASURED
        detail = (
            "NVML energy counter (nvmlDeviceGetTotalEnergyConsumption, mJ), stepping about "
            f"every {counter_period_s * 1000:.0f} ms; run and window edges wait for its next step"
        )
    elif averaged:
        gpu = GpuState(handle, label, None, AverageReconstructor(), power_supported=True)
        method, provenance = METHOD_POWER, Provenance.INTEGRATED
        detail = (
            "no energy counter: NVML power (nvmlDeviceGetPowerUsage, 1 s means on this GPU), "
            "energy reconstructed exactly per whole second (E = mean x 1 s), the partial "
            "second at the start assuming flat power"
        )
    else:
        gpu = GpuState(handle, label, None, None, power_supported=True)
        method, provenance = METHOD_POWER, Provenance.INTEGRATED
        detail = (
            "no energy counter: NVML instantaneous power (nvmlDeviceGetPowerUsage) integrated "
            "by trapezoids at the sampling rate"
        )
    info = DeviceInfo(
        component=Component.GPU,
        name=name,
        method=method,
        provenance=provenance,
        detail=detail,
        index=index,
        uuid=uuid,
        power_limit_w=limit_w,
        memory_bytes=None if memory is None else int(memory.total),
    )
    return gpu, info


def _uuids(nvml: ModuleType) -> list[str]:
    """NVML UUID of every device, in NVML index order."""
    count = int(required(nvml, "counting GPUs", nvml.nvmlDeviceGetCount))
    uuids = []
    for index in range(count):
        handle = required(nvml, f"opening GPU {index}", nvml.nvmlDeviceGetHandleByIndex, index)
        uuid = required(nvml, f"reading GPU {index}'s UUID", nvml.nvmlDeviceGetUUID, handle)
        uuids.append(text(uuid))
    return uuids


def _resolve(entry: str, uuids: list[str]) -> int | str:
    """The NVML index an entry names, or why it names none."""
    if entry.lstrip("+-").isdigit():
        index = int(entry)
        if 0 <= index < len(uuids):
            return index
        return f"index {index} is not one of the {len(uuids)} GPU(s) NVML sees"
    if entry.upper().startswith("GPU-"):
        matches = [i for i, uuid in enumerate(uuids) if uuid.lower().startswith(entry.lower())]
        if len(matches) == 1:
            return matches[0]
        return f"{entry} matches {'no' if not matches else 'more than one'} GPU UUID"
    return f"{entry!r} is neither an index nor a GPU UUID"


def select_devices(nvml: ModuleType, visible_devices: str | None, notes: list[str]) -> list[int]:
    """NVML indices of the GPUs ``visible_devices`` selects, in its order.

    Args:
        nvml: The started ``pynvml`` module.
        visible_devices: The value of ``CUDA_VISIBLE_DEVICES``, or ``None`` for every GPU.
        notes: Where to note ignored entries.

    Raises:
        SourceUnavailable: No GPU, an empty value, a MIG slice, or nothing selected.
    """
    uuids = _uuids(nvml)
    if not uuids:
        raise SourceUnavailable("NVML works but sees no GPU")
    if visible_devices is None:
        return list(range(len(uuids)))
    entries = [entry.strip() for entry in visible_devices.split(",")]
    if not any(entries):
        raise SourceUnavailable("CUDA_VISIBLE_DEVICES is empty: no GPU is visible to this process")
    mig = [entry for entry in entries if entry.upper().startswith("MIG-")]
    if mig:
        raise SourceUnavailable(
            f"CUDA_VISIBLE_DEVICES selects the MIG slice {mig[0]}: NVML gives no per-slice "
            "energy, and the whole GPU's counter would include other slices' work; GPU "
            "energy is not measured for this run"
        )
    selected: list[int] = []
    for position, entry in enumerate(entries):
        resolved = _resolve(entry, uuids)
        if isinstance(resolved, str):
            ignored = ",".join(entries[position:])
            notes.append(
                f"CUDA_VISIBLE_DEVICES entry {position + 1}: {resolved}; as CUDA does, the "
                f"entries from there on ({ignored}) are ignored"
            )
            break
        if resolved in selected:
            notes.append(f"CUDA_VISIBLE_DEVICES names GPU {resolved} twice; counted once")
            continue
        selected.append(resolved)
    if not selected:
        raise SourceUnavailable(
            f"CUDA_VISIBLE_DEVICES={visible_devices!r} selects no GPU NVML sees: "
            + "; ".join(notes)
        )
    return selected
