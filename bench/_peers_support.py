"""What ``bench.peers`` needs to run CodeCarbon beside carbon, offline, on simulated GPUs.

- :class:`PeerNvml`: the simulated ``pynvml`` module of :mod:`carbon.testing.simulated_gpu`
  with the few calls CodeCarbon makes that carbon does not (temperature, compute mode,
  process lists), so both tools read the same simulated devices.
- :func:`codecarbon_on`: points CodeCarbon's NVIDIA path at such a module. CodeCarbon does
  not take a ``pynvml`` module as an argument: ``codecarbon.core.gpu_nvidia`` imports
  ``pynvml`` and calls ``nvmlInit()`` when it is imported, and on a machine without a driver
  it keeps ``pynvml = None`` and ``PYNVML_AVAILABLE = False``; ``codecarbon.core.gpu`` copies
  both, and ``ResourceTracker.set_GPU_tracking`` only looks for GPUs when ``nvidia-smi``
  runs. So the module references and flags are replaced in both modules, the ``nvidia-smi``
  probe answers yes, and CodeCarbon's per-process hardware cache is cleared so the next
  tracker sets its hardware up again (with the simulated devices).
- :func:`codecarbon_tracker`: an ``OfflineEmissionsTracker`` that writes nothing and asks
  nothing of the network.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._peers_offline import COUNTRY_ISO3
from carbon.testing.simulated_gpu import SimulatedGpu, SimulatedNvml

J_PER_KWH = 3.6e6
"""Joules in a kilowatt-hour (CodeCarbon reports energy in kWh)."""


@dataclass(frozen=True, slots=True)
class _Process:
    pid: int
    used_gpu_memory: int

    @property
    def usedGpuMemory(self) -> int:  # noqa: N802 - pynvml's name
        """Memory the process holds on the device, bytes."""
        return self.used_gpu_memory


class PeerNvml(SimulatedNvml):
    """The simulated NVML, plus the queries CodeCarbon makes for its hardware description."""

    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> int:  # noqa: N802
        """A fixed 45 °C."""
        self._gpu(handle, "nvmlDeviceGetTemperature")
        return 45

    def nvmlDeviceGetComputeMode(self, handle: Any) -> int:  # noqa: N802
        """Default compute mode (0)."""
        self._gpu(handle, "nvmlDeviceGetComputeMode")
        return 0

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[_Process]:  # noqa: N802
        """No processes."""
        self._gpu(handle, "nvmlDeviceGetComputeRunningProcesses")
        return []

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: Any) -> list[_Process]:  # noqa: N802
        """No processes."""
        self._gpu(handle, "nvmlDeviceGetGraphicsRunningProcesses")
        return []


def peer_nvml(devices: Sequence[SimulatedGpu]) -> PeerNvml:
    """Simulated devices on ``time.monotonic``, the clock both tools stamp their readings on.

    carbon's sampler uses ``time.monotonic``, CodeCarbon ``time.perf_counter``: on Linux both
    are ``CLOCK_MONOTONIC``, so a window's edges from either tool are times on the trace.
    """
    return PeerNvml(devices, clock=time.monotonic)


@contextmanager
def codecarbon_on(nvml: SimulatedNvml) -> Iterator[None]:
    """Make CodeCarbon trackers created inside the block see ``nvml``'s devices.

    Restores CodeCarbon's module state and clears its hardware cache on the way out.
    """
    from codecarbon.core import gpu, gpu_nvidia, hardware_cache

    saved = {
        (gpu_nvidia, "pynvml"): gpu_nvidia.pynvml,  # type: ignore[attr-defined]
        (gpu_nvidia, "PYNVML_AVAILABLE"): gpu_nvidia.PYNVML_AVAILABLE,
        (gpu, "pynvml"): gpu.pynvml,
        (gpu, "PYNVML_AVAILABLE"): gpu.PYNVML_AVAILABLE,
        (gpu, "is_nvidia_system"): gpu.is_nvidia_system,
        (gpu, "is_rocm_system"): gpu.is_rocm_system,
        (gpu, "AMDSMI_AVAILABLE"): gpu.AMDSMI_AVAILABLE,
    }
    hardware_cache.clear_cache()
    gpu_nvidia.pynvml = gpu.pynvml = nvml  # type: ignore[attr-defined]
    gpu_nvidia.PYNVML_AVAILABLE = gpu.PYNVML_AVAILABLE = True
    gpu.AMDSMI_AVAILABLE = False
    gpu.is_nvidia_system = lambda: True  # type: ignore[assignment]
    gpu.is_rocm_system = lambda: False  # type: ignore[assignment]
    try:
        yield
    finally:
        for (module, name), value in saved.items():
            setattr(module, name, value)
        hardware_cache.clear_cache()


def codecarbon_tracker(measure_power_secs: float, output_dir: Path) -> Any:
    """An ``OfflineEmissionsTracker`` priced in France that writes no file and logs errors only.

    ``output_methods=[]`` is the current spelling of ``save_to_file=False`` (the ``save_to_*``
    arguments are deprecated in CodeCarbon 3 and warn); ``allow_multiple_runs`` is already
    CodeCarbon 3's default, so no lock file is written either.
    """
    from codecarbon import OfflineEmissionsTracker

    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    return OfflineEmissionsTracker(
        country_iso_code=COUNTRY_ISO3,
        measure_power_secs=measure_power_secs,
        output_methods=[],
        output_dir=str(output_dir),
        log_level="error",
        tracking_mode="machine",
        allow_multiple_runs=True,
        project_name="bench",
    )


def other_threads_cpu_s() -> float:
    """CPU seconds of every thread of this process but the calling one, exited ones included.

    ``CLOCK_PROCESS_CPUTIME_ID`` counts all threads the process ever had (Linux adds a thread's
    time to the process when it exits), ``CLOCK_THREAD_CPUTIME_ID`` the caller's alone; the
    difference is what background threads cost, whether they live for the whole run
    (carbon's sampler) or one tick (the ``threading.Timer`` that CodeCarbon starts per tick).
    """
    return time.process_time() - time.thread_time()
