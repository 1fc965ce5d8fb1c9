"""Turns readings into per-interval energy, device by device, with no threads or I/O.

Each reading moves a device's energy forward: by the counter's advance where the source
reports cumulative energy, or by the trapezoid between this power reading and the previous
one where it reports power only. Energy piles up in the open interval; closing the interval
yields one :class:`IntervalEnergy` per device and adds it to the device's total, so the
totals are exactly the sums of what was emitted.

A device that cannot be read (a lost GPU, a failed source, a read that failed) is *paused*:
a :class:`DeviceGap` opens at its last reading, and its samples stop there instead of going
on at zero, since its energy since then is unknown, not nothing. When it is read again the
gap closes and its next sample starts where its last one ended, so a counter's advance over
the gap lands in one longer sample and no energy is lost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from carbon.sources.base import DeviceReading

MAX_GAPS = 200
"""Most gaps a run lists; a device flapping beyond that is still paused, but not listed."""


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


@dataclass(frozen=True, slots=True)
class DeviceGap:
    """A span without readings of one device.

    Attributes:
        position: The device's position in the run.
        start_s: Its last reading before the gap, seconds since the run started.
        end_s: Its first reading after the gap, or ``None`` while it is not read.
        reason: Why it was not read.
    """

    position: int
    start_s: float
    end_s: float | None
    reason: str


@dataclass(slots=True)
class _DeviceState:
    last_energy_j: float | None = None
    last_power_w: float | None = None
    last_time_s: float | None = None
    open_energy_j: float = 0.0
    util_sum: float = 0.0
    util_count: int = 0
    total_j: float = 0.0
    sample_from_s: float = 0.0
    paused: bool = False
    gap_index: int | None = None


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
    _gaps: list[DeviceGap] = field(init=False, default_factory=list)
    _gaps_capped: bool = field(init=False, default=False)

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

    @property
    def gaps(self) -> list[DeviceGap]:
        """The run's gaps so far, in the order they opened (a copy)."""
        return list(self._gaps)

    def is_paused(self, position: int) -> bool:
        """Whether the device is not being read (a gap of it is open)."""
        return self._devices[position].paused

    def pause(self, position: int, now_s: float, reason: str) -> bool:
        """Stop counting a device that could not be read at ``now_s``; open its gap.

        The gap starts at the device's last reading (at the run's start if it had none);
        readings of it are ignored until :meth:`resume`.

        Returns:
            ``True`` when the device was being read (a gap opened), ``False`` if it was
            already paused.
        """
        device = self._devices[position]
        if device.paused:
            return False
        device.paused = True
        start_s = device.sample_from_s
        if device.last_time_s is not None:
            start_s = max(start_s, device.last_time_s - self.t0)
        device.gap_index = None
        if len(self._gaps) < MAX_GAPS:
            device.gap_index = len(self._gaps)
            self._gaps.append(DeviceGap(position, start_s, None, reason))
        elif not self._gaps_capped:
            self._gaps_capped = True
            self.anomalies.append(
                f"more than {MAX_GAPS} gaps in the readings: later ones are not listed"
            )
        return True

    def resume(self, position: int, now_s: float) -> None:
        """A paused device is read again at ``now_s``: close its gap.

        Its next sample starts where its last one ended, so it spans the gap.
        """
        device = self._devices[position]
        if not device.paused:
            return
        device.paused = False
        if device.gap_index is not None:
            gap = self._gaps[device.gap_index]
            self._gaps[device.gap_index] = replace(gap, end_s=max(gap.start_s, now_s - self.t0))
        device.gap_index = None

    def observe(self, first_position: int, readings: Sequence[DeviceReading], now_s: float) -> None:
        """Account the readings of one source taken at ``now_s`` (monotonic seconds).

        Readings of paused devices, and readings with neither energy nor power (the source
        had nothing for the device this time), are skipped: they say nothing.

        Args:
            first_position: Position of the source's first device in the run.
            readings: One reading per device of the source, in order.
            now_s: When the readings were taken.
        """
        for offset, reading in enumerate(readings):
            device = self._devices[first_position + offset]
            if device.paused or (reading.energy_j is None and reading.power_w is None):
                continue
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
        any, stays in the open interval. A paused device's sample ends at its last reading,
        and a device paused with no reading since its last sample has none.
        """
        start_s = self._open_since_s
        end_s = now_s - self.t0
        if end_s <= start_s:
            return []
        closed = []
        for position, device in enumerate(self._devices):
            sample_end_s = end_s
            if device.paused:
                if device.last_time_s is None:
                    continue
                sample_end_s = min(end_s, device.last_time_s - self.t0)
                if sample_end_s <= device.sample_from_s:
                    continue
            utilization = device.util_sum / device.util_count if device.util_count else None
            closed.append(
                IntervalEnergy(
                    position, device.sample_from_s, sample_end_s, device.open_energy_j, utilization
                )
            )
            device.sample_from_s = sample_end_s
            device.total_j += device.open_energy_j
            device.open_energy_j = 0.0
            device.util_sum = 0.0
            device.util_count = 0
        self._open_since_s = end_s
        return closed
