"""Turns readings into per-interval energy, device by device, with no threads or I/O.

Each reading moves a device's energy forward: by the counter's advance where the source
reports cumulative energy, or by the trapezoid between this power reading and the previous
one where it reports power only. Energy piles up in the open interval; closing the interval
yields one :class:`IntervalEnergy` per device and adds it to the device's total, so the
totals are exactly the sums of what was emitted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from carbon.sources.base import DeviceReading


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    """Energy of one device over one closed interval.

    Attributes:
        position: The device's position in the run.
        start_s: Interval start, seconds since the run started.
        end_s: Interval end, seconds since the run started.
        energy_j: Energy over the interval.
        utilization: Mean of the utilization readings in the interval, if any.
    """

    position: int
    start_s: float
    end_s: float
    energy_j: float
    utilization: float | None


@dataclass(slots=True)
class _DeviceState:
    last_energy_j: float | None = None
    last_power_w: float | None = None
    last_time_s: float | None = None
    open_energy_j: float = 0.0
    util_sum: float = 0.0
    util_count: int = 0
    total_j: float = 0.0


@dataclass(slots=True)
class Ledger:
    """Energy bookkeeping for the devices of one run.

    Attributes:
        t0: The run's start on the monotonic clock; offsets are measured from it.
        anomalies: Human-readable notes about readings that could not be used (a counter
            that went backwards); the run stores them as warnings.
    """

    t0: float
    device_count: int
    anomalies: list[str] = field(default_factory=list)
    _devices: list[_DeviceState] = field(init=False)
    _open_since_s: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._devices = [_DeviceState() for _ in range(self.device_count)]

    @property
    def totals_j(self) -> list[float]:
        """Energy per device over all closed intervals."""
        return [device.total_j for device in self._devices]

    def cumulative_j(self) -> list[float]:
        """Energy per device up to the latest reading, closed intervals and open one."""
        return [device.total_j + device.open_energy_j for device in self._devices]

    @property
    def open_since_s(self) -> float:
        """Start of the open interval, seconds since the run started."""
        return self._open_since_s

    def observe(self, first_position: int, readings: Sequence[DeviceReading], now_s: float) -> None:
        """Account the readings of one source taken at ``now_s`` (monotonic seconds).

        Args:
            first_position: Position of the source's first device in the run.
            readings: One reading per device of the source, in order.
            now_s: When the readings were taken.
        """
        for offset, reading in enumerate(readings):
            device = self._devices[first_position + offset]
            self._advance(first_position + offset, device, reading, now_s)

    def _advance(
        self, position: int, device: _DeviceState, reading: DeviceReading, now_s: float
    ) -> None:
        for value in (reading.energy_j, reading.power_w):
            if value is not None and not (0.0 <= value < math.inf):
                raise ValueError(f"device {position}: unusable reading {value!r}")
        if reading.energy_j is not None:
            if device.last_energy_j is not None:
                delta_j = reading.energy_j - device.last_energy_j
                if delta_j < 0:
                    self.anomalies.append(
                        f"device {position}: energy counter went back by {-delta_j:.3f} J at "
                        f"{now_s - self.t0:.3f} s (reset?); that reading was not counted"
                    )
                    delta_j = 0.0
                device.open_energy_j += delta_j
            device.last_energy_j = reading.energy_j
        elif reading.power_w is not None:
            if device.last_power_w is not None and device.last_time_s is not None:
                dt_s = now_s - device.last_time_s
                device.open_energy_j += 0.5 * (reading.power_w + device.last_power_w) * dt_s
            device.last_power_w = reading.power_w
        device.last_time_s = now_s
        if reading.utilization is not None:
            device.util_sum += reading.utilization
            device.util_count += 1

    def close_interval(self, now_s: float) -> list[IntervalEnergy]:
        """Close the open interval at ``now_s`` and return its energy per device.

        An interval of zero length is not closed (nothing is returned); its energy, if
        any, stays in the open interval.
        """
        start_s = self._open_since_s
        end_s = now_s - self.t0
        if end_s <= start_s:
            return []
        closed = []
        for position, device in enumerate(self._devices):
            utilization = device.util_sum / device.util_count if device.util_count else None
            closed.append(
                IntervalEnergy(position, start_s, end_s, device.open_energy_j, utilization)
            )
            device.total_j += device.open_energy_j
            device.open_energy_j = 0.0
            device.util_sum = 0.0
            device.util_count = 0
        self._open_since_s = end_s
        return closed
