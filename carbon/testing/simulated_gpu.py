"""A simulated NVIDIA GPU: a stand-in for the ``pynvml`` module, driven by power traces.

Code written against ``pynvml`` runs unchanged on it, so a GPU integration can be tested on
a machine without a GPU. Each simulated device follows a :mod:`~carbon.testing.power_traces`
trace on a clock (``time.monotonic`` unless another is given) and behaves like real
hardware where it matters for energy accounting:

- the energy counter (millijoules) is the exact integral of the trace up to the last update
  tick, ticks coming every ``counter_period_s`` (0.1 s by default, as on recent GPUs), so a
  window shorter than a tick can read no change;
- power readings are either the mean over the last second (``average_1s``, as Hopper and
  most Ampere-or-newer GPUs report) or the instantaneous power (``instant``, A100 and older);
- faults on request: the counter freezes, resets to zero, or the GPU falls off the bus
  (every call then raises ``NVMLError_GpuIsLost``); a passing error (the next few calls
  raise, say, ``NVMLError_Unknown``, then the GPU answers again); MIG mode; no counter
  (NotSupported).

Errors and constants are ``pynvml``'s own, so ``except pynvml.NVMLError_NotSupported`` works.

Example::

    from carbon.sources.nvml import NvmlSource
    from carbon.testing.power_traces import BurstTrace
    from carbon.testing.simulated_gpu import SimulatedGpu, simulated_nvml

    sim = simulated_nvml(devices=[SimulatedGpu(trace=BurstTrace(seed=1))] * 2)
    source = NvmlSource.open(nvml=sim)
    ...  # run the code under test with `source`, then compare with the exact energy:
    expected_j = sim.energy_j(0, t_start, t_end)  # times on the simulation's clock
"""

from __future__ import annotations

import math
import time
import uuid as uuid_module
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal, NoReturn

import pynvml

from carbon.testing.clocks import VirtualClock
from carbon.testing.power_traces import ConstantTrace, PowerTrace
from carbon.units import MJ_PER_J, MW_PER_W

__all__ = ["SimulatedGpu", "SimulatedNvml", "VirtualClock", "simulated_nvml"]

AVERAGE_WINDOW_S = 1.0
"""Length of the power average that ``average_1s`` readings report."""


@dataclass(frozen=True)
class SimulatedGpu:
    """One simulated device. Times (``*_s`` thresholds) are trace time: seconds since origin.

    Attributes:
        trace: The power the device draws.
        name: Model name NVML reports.
        uuid: NVML UUID; a stable ``GPU-...`` derived from the index when ``None``.
        counter_supported: Whether the energy counter exists (``False``: NotSupported).
        counter_period_s: Seconds between counter updates.
        counter_phase_s: Trace time of one counter update (the others are periods apart).
        counter_start_mj: Counter value at the origin (energy since the driver loaded).
        power_mode: ``average_1s`` (mean over the last second) or ``instant``.
        power_update_period_s: If set, readings change only every this many seconds (the
            value of the last update); ``None`` means the reading is current at every call.
        power_supported: Whether power readings exist.
        power_limit_w: Enforced power limit.
        memory_bytes: Total memory.
        idle_w: Power at 0 % utilization (the simulated utilization is linear in power).
        architecture: ``NVML_DEVICE_ARCH_*``; by default Hopper for ``average_1s`` and Volta
            for ``instant``.
        mig_enabled: Whether MIG mode is on.
        counter_frozen_after_s: The counter stops advancing after this time.
        counter_reset_at_s: The counter restarts from zero at this time.
        lost_at_s: From this time on every call on the device raises GpuIsLost.
        error_at_s: From this time on, the next ``error_calls`` calls on the device raise
            ``error_code``; later calls answer as usual (a passing fault).
        error_code: The ``NVML_ERROR_*`` code of that fault (``NVML_ERROR_UNKNOWN``).
        error_calls: How many calls fail.
    """

    trace: PowerTrace = field(default_factory=lambda: ConstantTrace(300.0))
    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str | None = None
    counter_supported: bool = True
    counter_period_s: float = 0.1
    counter_phase_s: float = 0.0
    counter_start_mj: int = 73_421_337_000
    power_mode: Literal["average_1s", "instant"] = "average_1s"
    power_update_period_s: float | None = None
    power_supported: bool = True
    power_limit_w: float = 700.0
    memory_bytes: int = 85_520_809_984
    idle_w: float = 70.0
    architecture: int | None = None
    mig_enabled: bool = False
    counter_frozen_after_s: float | None = None
    counter_reset_at_s: float | None = None
    lost_at_s: float | None = None
    error_at_s: float | None = None
    error_code: int = pynvml.NVML_ERROR_UNKNOWN
    error_calls: int = 1


@dataclass(frozen=True, slots=True)
class _Handle:
    index: int


@dataclass(frozen=True, slots=True)
class _Utilization:
    gpu: int
    memory: int


@dataclass(frozen=True, slots=True)
class _Memory:
    total: int
    free: int
    used: int


def _default_uuid(index: int) -> str:
    return f"GPU-{uuid_module.uuid5(uuid_module.NAMESPACE_OID, f'carbon-simulated-gpu-{index}')}"


class SimulatedNvml(ModuleType):
    """A module object with the ``pynvml`` functions carbon uses, over simulated devices.

    Args:
        devices: The simulated GPUs, NVML index order.
        clock: Seconds on the clock the traces run on.
        origin_s: Clock time of trace time 0; ``clock()`` at creation when ``None``.
        driver_version: What ``nvmlSystemGetDriverVersion`` returns.
        init_error: An ``NVML_ERROR_*`` code ``nvmlInit`` raises (a missing library or
            driver), or ``None``.
    """

    def __init__(
        self,
        devices: Sequence[SimulatedGpu],
        *,
        clock: Callable[[], float] = time.monotonic,
        origin_s: float | None = None,
        driver_version: str = "550.54.15",
        init_error: int | None = None,
    ) -> None:
        super().__init__("carbon_simulated_pynvml", "A simulated pynvml module.")
        for name in dir(pynvml):
            if name.startswith(("NVML_", "NVMLError")):
                setattr(self, name, getattr(pynvml, name))
        self.gpus = list(devices)
        self.clock = clock
        self.origin_s = clock() if origin_s is None else origin_s
        self.driver_version = driver_version
        self.init_error = init_error
        self.init_count = 0
        self.calls: Counter[str] = Counter()
        self.errors_raised: Counter[int] = Counter()
        self._uuids = [gpu.uuid or _default_uuid(i) for i, gpu in enumerate(self.gpus)]

    # --- helpers -------------------------------------------------------------------------

    def trace_time_s(self) -> float:
        """The current trace time."""
        return self.clock() - self.origin_s

    def energy_j(self, index: int, t0_s: float, t1_s: float) -> float:
        """Exact energy of device ``index`` between two times on the simulation's clock."""
        return self.gpus[index].trace.energy_j(t0_s - self.origin_s, t1_s - self.origin_s)

    def _raise(self, code: int) -> NoReturn:
        raise pynvml.NVMLError(code)

    def _gpu(self, handle: Any, call: str) -> tuple[SimulatedGpu, float]:
        self.calls[call] += 1
        if self.init_count <= 0:
            self._raise(pynvml.NVML_ERROR_UNINITIALIZED)
        if not isinstance(handle, _Handle) or not 0 <= handle.index < len(self.gpus):
            self._raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        gpu, t_s = self.gpus[handle.index], self.trace_time_s()
        if gpu.lost_at_s is not None and t_s >= gpu.lost_at_s:
            self._raise(pynvml.NVML_ERROR_GPU_IS_LOST)
        failing = gpu.error_at_s is not None and t_s >= gpu.error_at_s
        if failing and self.errors_raised[handle.index] < gpu.error_calls:
            self.errors_raised[handle.index] += 1
            self._raise(gpu.error_code)
        return gpu, t_s

    def _average_w(self, gpu: SimulatedGpu, t_s: float) -> float:
        return gpu.trace.energy_j(t_s - AVERAGE_WINDOW_S, t_s) / AVERAGE_WINDOW_S

    # --- system --------------------------------------------------------------------------

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        """Start the (simulated) library, or raise ``init_error``."""
        self.calls["nvmlInit"] += 1
        if self.init_error is not None:
            self._raise(self.init_error)
        self.init_count += 1

    def nvmlShutdown(self) -> None:  # noqa: N802
        """Stop the library (reference counted, as NVML is)."""
        self.calls["nvmlShutdown"] += 1
        if self.init_count <= 0:
            self._raise(pynvml.NVML_ERROR_UNINITIALIZED)
        self.init_count -= 1

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        """The driver version string."""
        self.calls["nvmlSystemGetDriverVersion"] += 1
        if self.init_count <= 0:
            self._raise(pynvml.NVML_ERROR_UNINITIALIZED)
        return self.driver_version

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        """Number of simulated devices."""
        self.calls["nvmlDeviceGetCount"] += 1
        if self.init_count <= 0:
            self._raise(pynvml.NVML_ERROR_UNINITIALIZED)
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:  # noqa: N802
        """A handle for device ``index``."""
        handle = _Handle(index)
        self._gpu(handle, "nvmlDeviceGetHandleByIndex")
        return handle

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> _Handle:  # noqa: N802
        """A handle for the device with this exact UUID."""
        if uuid not in self._uuids:
            self.calls["nvmlDeviceGetHandleByUUID"] += 1
            self._raise(pynvml.NVML_ERROR_NOT_FOUND)
        handle = _Handle(self._uuids.index(uuid))
        self._gpu(handle, "nvmlDeviceGetHandleByUUID")
        return handle

    # --- device --------------------------------------------------------------------------

    def nvmlDeviceGetName(self, handle: _Handle) -> str:  # noqa: N802
        """Model name."""
        return self._gpu(handle, "nvmlDeviceGetName")[0].name

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:  # noqa: N802
        """UUID (``GPU-...``)."""
        self._gpu(handle, "nvmlDeviceGetUUID")
        return self._uuids[handle.index]

    def nvmlDeviceGetIndex(self, handle: _Handle) -> int:  # noqa: N802
        """NVML index."""
        self._gpu(handle, "nvmlDeviceGetIndex")
        return handle.index

    def nvmlDeviceGetArchitecture(self, handle: _Handle) -> int:  # noqa: N802
        """``NVML_DEVICE_ARCH_*`` of the device."""
        gpu, _ = self._gpu(handle, "nvmlDeviceGetArchitecture")
        if gpu.architecture is not None:
            return gpu.architecture
        hopper, volta = pynvml.NVML_DEVICE_ARCH_HOPPER, pynvml.NVML_DEVICE_ARCH_VOLTA
        return int(hopper if gpu.power_mode == "average_1s" else volta)

    def nvmlDeviceGetMigMode(self, handle: _Handle) -> list[int]:  # noqa: N802
        """``[current, pending]`` MIG mode."""
        gpu, _ = self._gpu(handle, "nvmlDeviceGetMigMode")
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if gpu.mig_enabled else pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _Handle) -> int:  # noqa: N802
        """Power limit in milliwatts."""
        gpu, _ = self._gpu(handle, "nvmlDeviceGetEnforcedPowerLimit")
        return round(gpu.power_limit_w * MW_PER_W)

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle) -> _Memory:  # noqa: N802
        """Memory sizes in bytes (a quarter in use)."""
        gpu, _ = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        used = gpu.memory_bytes // 4
        return _Memory(total=gpu.memory_bytes, free=gpu.memory_bytes - used, used=used)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:  # noqa: N802
        """Energy counter in millijoules: the exact integral up to the last update tick."""
        gpu, t_s = self._gpu(handle, "nvmlDeviceGetTotalEnergyConsumption")
        if not gpu.counter_supported:
            self._raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        period_s, phase_s = gpu.counter_period_s, gpu.counter_phase_s
        tick_s = phase_s + math.floor((t_s - phase_s) / period_s) * period_s
        if gpu.counter_frozen_after_s is not None and tick_s > gpu.counter_frozen_after_s:
            frozen_s = gpu.counter_frozen_after_s
            tick_s = phase_s + math.floor((frozen_s - phase_s) / period_s) * period_s
        if gpu.counter_reset_at_s is not None and tick_s >= gpu.counter_reset_at_s:
            return math.floor(gpu.trace.energy_j(gpu.counter_reset_at_s, tick_s) * MJ_PER_J)
        energy_j = gpu.trace.energy_j(0.0, tick_s) if tick_s > 0 else 0.0
        return gpu.counter_start_mj + math.floor(energy_j * MJ_PER_J)

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:  # noqa: N802
        """Power in milliwatts: the last second's mean, or instantaneous (see ``power_mode``)."""
        gpu, t_s = self._gpu(handle, "nvmlDeviceGetPowerUsage")
        if not gpu.power_supported:
            self._raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if gpu.power_update_period_s is not None:
            t_s = math.floor(t_s / gpu.power_update_period_s) * gpu.power_update_period_s
        if gpu.power_mode == "instant":
            return round(gpu.trace.power_w(t_s) * MW_PER_W)
        return round(self._average_w(gpu, t_s) * MW_PER_W)

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> _Utilization:  # noqa: N802
        """Busy percentage over the last second, linear between ``idle_w`` and the limit."""
        gpu, t_s = self._gpu(handle, "nvmlDeviceGetUtilizationRates")
        span_w = max(gpu.power_limit_w - gpu.idle_w, 1e-9)
        busy = min(1.0, max(0.0, (self._average_w(gpu, t_s) - gpu.idle_w) / span_w))
        return _Utilization(gpu=round(100 * busy), memory=round(50 * busy))


def simulated_nvml(
    devices: Sequence[SimulatedGpu] = (SimulatedGpu(),),
    *,
    clock: Callable[[], float] = time.monotonic,
    origin_s: float | None = None,
    driver_version: str = "550.54.15",
    init_error: int | None = None,
) -> SimulatedNvml:
    """A simulated ``pynvml`` module; pass it as ``NvmlSource.open(nvml=...)``.

    Args:
        devices: The simulated GPUs (one H100 drawing 300 W by default).
        clock: The clock the traces run on; share it with the sampler under test.
        origin_s: Clock time of trace time 0 (``clock()`` now when ``None``).
        driver_version: Reported driver version.
        init_error: ``NVML_ERROR_*`` code ``nvmlInit`` should raise, if any.
    """
    return SimulatedNvml(
        devices,
        clock=clock,
        origin_s=origin_s,
        driver_version=driver_version,
        init_error=init_error,
    )
