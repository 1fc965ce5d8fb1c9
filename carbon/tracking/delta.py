"""What a run measured since the previous look: the figures a logger records per step.

:meth:`carbon.tracking.run.Run.delta` returns one :class:`Delta` per call; the next call
starts where this one ended (the first at the run's start), so the deltas of a run add up
to its totals: energy, work and CO2e telescope, nothing falls between two calls.

Each call reads every power source at an *edge*, as a measurement window does (after queued
GPU work has finished, and after an NVML energy counter's next step: up to about 0.1 s on a
GPU with an energy counter, up to 1 s on one read as 1-second power means, nothing on CPU
estimates). That makes each delta exact, and it is why a delta belongs at a logging step or
an epoch's end rather than in every step of a fast loop.

CO2e is the delta's energy times the run's PUE times the grid intensity the run resolved at
its start (the static or live factor). The stored run may be priced hour by hour instead,
when an hourly series of its zone has been imported, so on such runs the deltas' CO2e sums
to the static-factor figure, not to the stored ``co2e_g``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

from carbon.accounting import efficiency
from carbon.accounting.co2e import co2e_g
from carbon.sources.base import DeviceInfo
from carbon.tracking.measure import Edge, between_edges

__all__ = ["Delta", "DeltaClock", "delta_between"]

_NOT_METRICS = frozenset({"start_s"})
"""Fields that place a delta in time rather than measure it; :meth:`Delta.as_metrics` omits them."""


@dataclass(frozen=True, slots=True)
class Delta:
    """Energy, CO2e and work of a run between two calls of ``run.delta()``.

    Attributes:
        duration_s: Time covered, seconds.
        energy_j: Energy of every measured device, or ``None`` when no device is measured.
        energy_gpu_j: Energy of the GPUs, or ``None`` when the run measures none.
        energy_cpu_j: Energy of the CPUs, or ``None`` when the run measures none.
        energy_ram_j: Energy of the memory, or ``None`` when the run measures none.
        co2e_g: Location-based CO2e of ``energy_j`` (with the run's PUE), or ``None`` when
            the run has no region.
        steps: Steps counted.
        samples: Samples counted, or ``None`` when the run counts none.
        tokens: Tokens counted, or ``None`` when the run counts none.
        flops: FLOPs counted, or ``None`` when the run counts none.
        j_per_flop: ``energy_j / flops``, or ``None`` when either is unknown or zero.
        mfu: Model FLOPs utilization over the interval, or ``None`` when unknown (no FLOPs,
            no GPU with a catalog peak, or no precision).
        start_s: Where the interval starts, seconds since the run started.
    """

    duration_s: float
    energy_j: float | None
    energy_gpu_j: float | None
    energy_cpu_j: float | None
    energy_ram_j: float | None
    co2e_g: float | None
    steps: int
    samples: int | None
    tokens: int | None
    flops: float | None
    j_per_flop: float | None
    mfu: float | None
    start_s: float = 0.0

    @property
    def end_s(self) -> float:
        """Where the interval ends, seconds since the run started."""
        return self.start_s + self.duration_s

    def as_metrics(self, prefix: str = "carbon/") -> dict[str, float]:
        """The known figures as a flat ``{prefix + name: value}`` dict for a metrics logger.

        Unknown figures are left out rather than logged as 0; ``start_s`` is left out too
        (the logger's step says where the figures belong).
        """
        return {
            prefix + field.name: float(value)
            for field in fields(self)
            if field.name not in _NOT_METRICS and (value := getattr(self, field.name)) is not None
        }


def delta_between(
    begin: Edge,
    end: Edge,
    devices: Sequence[DeviceInfo],
    *,
    intensity_g_per_kwh: float | None,
    pue: float,
    peak_flops_per_gpu: float | None,
) -> Delta:
    """The delta between two edges of a run (pure: no clock, no I/O).

    Args:
        begin: The earlier edge (offset, energy per device, counters).
        end: The later edge.
        devices: The run's devices, in the order of the edges' energies.
        intensity_g_per_kwh: The grid intensity the run is priced with, or ``None``.
        pue: The run's PUE.
        peak_flops_per_gpu: Peak FLOP/s of one of the run's GPUs at its precision, or
            ``None`` when unknown (MFU is then unknown).
    """
    m, _ = between_edges("delta", begin, end, devices)
    gpus = sum(1 for device in devices if device.component == "gpu")
    return Delta(
        duration_s=m.duration_s,
        energy_j=m.energy_j,
        energy_gpu_j=m.energy_by_component_j["gpu"],
        energy_cpu_j=m.energy_by_component_j["cpu"],
        energy_ram_j=m.energy_by_component_j["ram"],
        co2e_g=(
            None
            if m.energy_j is None or intensity_g_per_kwh is None
            else co2e_g(max(m.energy_j, 0.0), intensity_g_per_kwh, pue)
        ),
        steps=m.steps,
        samples=m.samples,
        tokens=m.tokens,
        flops=m.flops,
        j_per_flop=efficiency.joules_per_flop(m.energy_j, m.flops),
        mfu=efficiency.mfu(m.flops, m.duration_s, peak_flops_per_gpu, gpus) if gpus else None,
        start_s=m.start_s,
    )


class DeltaClock:
    """Where a run's last delta ended, and the factors its deltas are priced with.

    One per run, made when the run starts. :meth:`take` reads a new edge and returns the
    delta since the previous one; calls from several threads are served one at a time, so
    every interval is counted once.

    Args:
        devices: The run's devices.
        intensity_g_per_kwh: The grid intensity the run resolved at its start, or ``None``
            when it has no region.
        pue: The run's PUE.
    """

    def __init__(
        self, devices: Sequence[DeviceInfo], *, intensity_g_per_kwh: float | None, pue: float
    ) -> None:
        self.devices = list(devices)
        self.intensity_g_per_kwh = intensity_g_per_kwh
        self.pue = pue
        self._last: Edge = (0.0, [0.0] * len(self.devices), (0, None, None, None))
        self._lock = threading.Lock()
        self._peaks: dict[str | None, float | None] = {}

    def take(self, edge: Callable[[], Edge], precision: str | None) -> Delta:
        """Read a new edge with ``edge()`` and return the delta since the previous one.

        Args:
            edge: Reads the run's edge now (raises when the run is not running).
            precision: The run's precision now (a catalog key), for MFU.
        """
        with self._lock:
            end = edge()
            begin, self._last = self._last, end
        return delta_between(
            begin,
            end,
            self.devices,
            intensity_g_per_kwh=self.intensity_g_per_kwh,
            pue=self.pue,
            peak_flops_per_gpu=self._peak(precision),
        )

    def _peak(self, precision: str | None) -> float | None:
        """Peak FLOP/s of one GPU at ``precision``: one catalog row for all GPUs, else ``None``."""
        if precision not in self._peaks:
            from carbon.accounting.catalog import match_gpu, normalize_precision, peak_flops

            specs = {match_gpu(d.name) for d in self.devices if d.component == "gpu"}
            spec = specs.pop() if len(specs) == 1 else None
            peak = None
            if spec is not None and precision and normalize_precision(precision) is not None:
                peak = peak_flops(spec, precision)
            self._peaks[precision] = peak
        return self._peaks[precision]
