"""NVIDIA GPUs through NVML (``pynvml``, from the ``nvidia-ml-py`` package).

Per GPU, the best method NVML offers:

- ``nvml_counter`` (measured): the energy counter ``nvmlDeviceGetTotalEnergyConsumption``
  (millijoules since the driver loaded; Volta and newer). It steps about every 100 ms: at
  a window's edges the source settles on its next step (:meth:`NvmlSource.settle`), so the
  edge is exact; in between, the value at its last step is reported;
- ``nvml_power`` (integrated), where the counter is not supported: power readings
  ``nvmlDeviceGetPowerUsage``. Where the GPU reports 1-second means (Ampere and newer except
  GA100), the source reconstructs the energy from them exactly per whole second; where it
  reports instantaneous power (A100 and older), it returns power only and the sampler
  integrates trapezoids.

:mod:`carbon.sources._nvml_energy` documents both methods and their error bounds. Every
reading of a GPU without a counter, and a reading twice a second of one with a counter,
carries the power and the utilization, for charts.

Which GPUs: all that NVML sees, or those ``CUDA_VISIBLE_DEVICES`` selects (the caller passes
its value; this module reads no environment). Entries are NVML indices or UUIDs (``GPU-...``,
or a unique prefix of one, as CUDA accepts); as in CUDA, an entry that matches no GPU ends the
list. Indices are NVML's order, which is CUDA's when ``CUDA_DEVICE_ORDER=PCI_BUS_ID``; UUIDs
are unambiguous. MIG slices (``MIG-...``) and GPUs in MIG mode are refused: NVML has no
per-slice energy, and the whole GPU's energy would charge this run for other tenants' work.

NVML errors are translated in :mod:`carbon.sources._nvml_errors`. A read fails GPU by GPU:
a GPU that cannot be read this time (an unknown error, a timeout) is named in
:attr:`NvmlSource.unread` and tried again at the next read; a lost GPU
(``NVML_ERROR_GPU_IS_LOST``) is named in :attr:`NvmlSource.lost` as well and not read again.
The other GPUs go on either way; the sampler records the gaps.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from carbon.errors import SourceError, SourceUnavailable
from carbon.sources._nvml_devices import (
    METHOD_COUNTER,
    METHOD_POWER,
    GpuState,
    PowerAveraging,
    open_gpu,
    required,
    select_devices,
    text,
)
from carbon.sources._nvml_errors import NvmlGpuLost, NvmlNotSupported, nvml_errors, translate
from carbon.sources.base import DeviceInfo, DeviceReading
from carbon.units import MW_PER_W

__all__ = ["METHOD_COUNTER", "METHOD_POWER", "NvmlSource", "nvml_probe"]

log = logging.getLogger(__name__)

AUX_INTERVAL_S = 0.5
"""How often power and utilization are read for a GPU whose energy comes from its counter."""

_NO_READING = DeviceReading(energy_j=None)
"""What a GPU that could not be read answers; it is named in :attr:`NvmlSource.unread`."""


def _import_nvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as exc:
        raise SourceUnavailable(
            f"NVML bindings are not installed ({exc}): pip install nvidia-ml-py"
        ) from exc
    module: ModuleType = pynvml
    return module


class NvmlSource:
    """Energy of NVIDIA GPUs from NVML; one device per GPU, in the selected order.

    Attributes:
        notes: Anomalies met while opening and reading (GPUs skipped, a frozen or reset
            counter), as sentences a run can store as warnings.
        driver_version: The NVIDIA driver version NVML reports.
        unread: GPUs the latest :meth:`read` could not read (their index in
            :attr:`devices` -> why); their readings are placeholders without a value.
        lost: GPUs lost for good (index -> why), no longer read; also in ``unread``.
    """

    def __init__(
        self,
        nvml: ModuleType,
        gpus: Sequence[GpuState],
        devices: Sequence[DeviceInfo],
        notes: list[str],
        driver_version: str,
    ) -> None:
        self._nvml = nvml
        self._gpus = list(gpus)
        self._devices = tuple(devices)
        self.notes = notes
        self.driver_version = driver_version
        self.unread: dict[int, str] = {}
        self.lost: dict[int, str] = {}
        self._closed = False

    @classmethod
    def open(
        cls,
        *,
        visible_devices: str | None = None,
        nvml: ModuleType | None = None,
        power_averaging: PowerAveraging = "auto",
        counter_period_s: float = 0.1,
    ) -> NvmlSource:
        """Start NVML and pick the GPUs to measure.

        Args:
            visible_devices: The value of ``CUDA_VISIBLE_DEVICES``, or ``None`` for all GPUs;
                ``""`` means no GPU.
            nvml: The ``pynvml`` module to use (a simulated one in tests); imported when
                ``None``.
            power_averaging: Whether power readings are 1-second means or instantaneous;
                ``auto`` decides from the architecture (means on Ampere and newer, except
                GA100). It decides how power becomes energy where there is no counter, and
                whether a counter's last partial update is extrapolated with the power
                reading (instantaneous) or with the counter's own slope (means).
            counter_period_s: Nominal time between energy counter updates.

        Raises:
            SourceUnavailable: No NVML, no driver, no GPU selected or none usable; the
                message says which and why.
        """
        module = nvml if nvml is not None else _import_nvml()
        with nvml_errors(module, "starting NVML", opening=True):
            module.nvmlInit()
        try:
            return cls._open_started(module, visible_devices, power_averaging, counter_period_s)
        except BaseException:
            with contextlib.suppress(Exception):  # the original error is the one to report
                module.nvmlShutdown()
            raise

    @classmethod
    def _open_started(
        cls,
        nvml: ModuleType,
        visible_devices: str | None,
        power_averaging: PowerAveraging,
        counter_period_s: float,
    ) -> NvmlSource:
        notes: list[str] = []
        driver = text(required(nvml, "reading the driver version", nvml.nvmlSystemGetDriverVersion))
        indices = select_devices(nvml, visible_devices, notes)
        gpus: list[GpuState] = []
        devices: list[DeviceInfo] = []
        for index in indices:
            opened = open_gpu(nvml, index, notes, power_averaging, counter_period_s)
            if opened is not None:
                gpus.append(opened[0])
                devices.append(opened[1])
        if not gpus:
            raise SourceUnavailable("no usable NVIDIA GPU: " + "; ".join(notes))
        return cls(nvml, gpus, devices, notes, driver)

    @property
    def devices(self) -> Sequence[DeviceInfo]:
        """One device per measured GPU."""
        return self._devices

    def read(self, now_s: float) -> Sequence[DeviceReading]:
        """Read every GPU; energy is cumulative since the first read.

        A GPU that cannot be read answers a placeholder and is named in :attr:`unread` (a
        lost one in :attr:`lost` too, and is not read again); the others are read as usual.

        Raises:
            SourceError: The source was closed.
        """
        if self._closed:
            raise SourceError("NVML source read after close()")
        readings: list[DeviceReading] = []
        unread: dict[int, str] = {}
        for index, gpu in enumerate(self._gpus):
            if index in self.lost:
                unread[index] = self.lost[index]
                readings.append(_NO_READING)
                continue
            try:
                readings.append(self._read_gpu(gpu, now_s))
            except NvmlGpuLost as exc:
                self.lost[index] = unread[index] = str(exc)
                readings.append(_NO_READING)
            except SourceError as exc:  # tried again at the next read
                unread[index] = str(exc)
                readings.append(_NO_READING)
        self.unread = unread
        return readings

    def settle(
        self,
        clock: Callable[[], float],
        sleep: Callable[[float], None] = time.sleep,
        *,
        poll_s: float = 0.002,
    ) -> None:
        """Wait until every GPU's energy counter has just advanced, for a window's edge.

        Right after an update the counter is exact, so the reading that follows needs no
        extrapolation over the update interval (which on bursty load can miss up to
        ``(power swing) x period / 2`` per edge). Polling every ``poll_s`` pins each update
        within ``poll_s``. Waits at most about two update periods. GPUs read as 1-second
        power means (no counter) wait instead for a whole second since their first reading,
        over which their reconstruction is exact.

        Args:
            clock: The sampler's monotonic clock.
            sleep: Sleeps on that clock.
            poll_s: Time between polls of the counters.
        """
        if self._closed:
            return
        self._settle_averages(clock, sleep)
        waiting = [
            gpu
            for index, gpu in enumerate(self._gpus)
            if gpu.counter is not None and not gpu.counter.frozen and index not in self.lost
        ]
        if not waiting:
            return
        period_s = max(gpu.counter.period_s for gpu in waiting if gpu.counter is not None)
        deadline_s = clock() + 2.5 * period_s
        start: dict[int, int | None] = {}
        for gpu in waiting:
            start[id(gpu)] = self._settle_step(gpu, clock())
        waiting = [gpu for gpu in waiting if start[id(gpu)] is not None]
        while waiting:
            sleep(poll_s)
            now_s = clock()
            if now_s > deadline_s:
                return
            waiting = [gpu for gpu in waiting if self._settle_step(gpu, now_s) == start[id(gpu)]]

    def _settle_step(self, gpu: GpuState, now_s: float) -> int | None:
        """A counter reading while settling, or ``None`` when the GPU could not be read.

        A GPU that fails here is not waited for; the read that follows the edge finds the
        failure again and reports it.
        """
        try:
            return self._observe_counter(gpu, now_s)
        except SourceError:
            return None

    def _settle_averages(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        """For GPUs read as 1-second means, wait until a whole number of seconds has passed.

        The reconstruction from 1-second means is exact over whole seconds from the first
        reading (each mean is the energy of the second before it); only a fraction of a
        second at the end depends on the unknown profile before the first reading. Ending
        the window on a whole second removes that bias, at the cost of waiting up to a
        second.
        """
        averages = [gpu.average for gpu in self._gpus if gpu.average is not None]
        firsts = [a.first_t_s for a in averages if a.first_t_s is not None]
        if not firsts:
            return
        window_s = averages[0].window_s
        elapsed_s = clock() - firsts[0]
        wait_s = -elapsed_s % window_s
        if elapsed_s >= window_s and 0.001 < wait_s < window_s - 0.001:
            sleep(wait_s)

    def _observe_counter(self, gpu: GpuState, now_s: float) -> int:
        """Read one GPU's counter and let its estimator narrow the time of the last update."""
        assert gpu.counter is not None
        counter_mj = self._counter_mj(gpu)
        gpu.counter.update(now_s, counter_mj, None)
        return counter_mj

    def _counter_mj(self, gpu: GpuState) -> int:
        """The energy counter in mJ (the hot path: errors are translated only when raised)."""
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
        except self._nvml.NVMLError as exc:
            raise translate(
                exc, f"reading the energy counter of {gpu.label}", opening=False
            ) from exc

    def _read_gpu(self, gpu: GpuState, now_s: float) -> DeviceReading:
        nvml = self._nvml
        power_w: float | None = None
        utilization: float | None = None
        if gpu.counter is not None and not gpu.counter.frozen:
            # Power and utilization only feed charts and fault checks here: twice a second.
            if now_s - gpu.aux_read_s < 0.95 * AUX_INTERVAL_S:  # 0.95: tolerate clock jitter
                counter_mj = self._counter_mj(gpu)
                return DeviceReading(energy_j=gpu.counter.update(now_s, counter_mj, None))
            gpu.aux_read_s = now_s
        if gpu.power_supported:
            raw_mw = self._optional(gpu, "power", nvml.nvmlDeviceGetPowerUsage)
            power_w = None if raw_mw is None else raw_mw / MW_PER_W
            gpu.power_supported = raw_mw is not None or gpu.counter is None
        if gpu.utilization_supported:
            rates = self._optional(gpu, "utilization", nvml.nvmlDeviceGetUtilizationRates)
            gpu.utilization_supported = rates is not None
            utilization = None if rates is None else rates.gpu / 100
        if gpu.counter is not None:
            with nvml_errors(nvml, f"reading the energy counter of {gpu.label}"):
                counter_mj = int(nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
            energy_j: float | None = gpu.counter.update(now_s, counter_mj, power_w)
        elif power_w is None:
            raise SourceError(f"{gpu.label}: power reading stopped and there is no energy counter")
        elif gpu.average is not None:
            gpu.last_energy_j = max(gpu.last_energy_j, gpu.average.add(now_s, power_w))
            energy_j = gpu.last_energy_j
        else:
            energy_j = None  # instantaneous power: the sampler integrates trapezoids
        return DeviceReading(energy_j=energy_j, power_w=power_w, utilization=utilization)

    def _optional(self, gpu: GpuState, what: str, call: Callable[[Any], Any]) -> Any:
        """Call NVML for ``gpu``; ``None`` when not supported (other errors propagate)."""
        try:
            with nvml_errors(self._nvml, f"reading the {what} of {gpu.label}"):
                return call(gpu.handle)
        except NvmlNotSupported:
            return None

    def close(self) -> None:
        """Shut NVML down (once); later reads raise :class:`SourceError`."""
        if self._closed:
            return
        self._closed = True
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError:  # nothing to release after a failed shutdown
            log.debug("nvmlShutdown failed", exc_info=True)


def nvml_probe(
    *, visible_devices: str | None = None, nvml: ModuleType | None = None
) -> tuple[bool, str]:
    """Say whether NVML works here and what it would measure, for ``carbon doctor``.

    Opens and closes an :class:`NvmlSource`; never raises for a missing GPU or library.

    Returns:
        ``(available, detail)``: the driver version and, per GPU, its name and whether it has
        an energy counter; or why NVML cannot be used.
    """
    try:
        source = NvmlSource.open(visible_devices=visible_devices, nvml=nvml)
    except SourceUnavailable as exc:
        return False, str(exc)
    try:
        parts = [
            f"{device.index}: {device.name} ("
            + ("energy counter" if device.method == METHOD_COUNTER else "no energy counter: power")
            + ")"
            for device in source.devices
        ]
        detail = f"NVML, driver {source.driver_version}, {len(parts)} GPU(s): " + ", ".join(parts)
        if source.notes:
            detail += "; " + "; ".join(source.notes)
    finally:
        source.close()
    return True, detail
