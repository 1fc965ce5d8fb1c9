"""Power sources with exactly known energy, for tests and demonstrations."""

from __future__ import annotations

from collections.abc import Sequence

from carbon.errors import SourceError
from carbon.sources.base import Component, DeviceInfo, DeviceReading, Provenance


class ConstantPowerSource:
    """Devices that each draw a constant power, reported as a cumulative energy counter.

    The counter starts at the first :meth:`read`, so the energy between two reads at
    ``t1`` and ``t2`` is exactly ``power_w x (t2 - t1)``.

    Args:
        power_w: Power of each device, in watts.
        component: Which component the devices stand for.
        count: How many devices.
        name: Device name to report.
        counter: Report a cumulative energy counter (``True``) or power only (``False``,
            which makes the sampler integrate power).
    """

    def __init__(
        self,
        power_w: float,
        *,
        component: Component = Component.CPU,
        count: int = 1,
        name: str = "constant test device",
        counter: bool = True,
    ) -> None:
        if power_w < 0:
            raise ValueError(f"power_w must be >= 0, not {power_w}")
        self.power_w = power_w
        self.counter = counter
        self._t_first: float | None = None
        self._devices = [
            DeviceInfo(
                component=component,
                name=name,
                method="constant_test" if counter else "constant_test_power",
                provenance=Provenance.MEASURED if counter else Provenance.INTEGRATED,
                detail=f"test source drawing a constant {power_w} W",
                index=i,
            )
            for i in range(count)
        ]
        self.reads = 0
        self.closed = False

    @property
    def devices(self) -> Sequence[DeviceInfo]:
        """The simulated devices."""
        return self._devices

    def read(self, now_s: float) -> Sequence[DeviceReading]:
        """Energy since the first read, or the constant power."""
        if self._t_first is None:
            self._t_first = now_s
        self.reads += 1
        if self.counter:
            energy_j = self.power_w * (now_s - self._t_first)
            return [DeviceReading(energy_j=energy_j, power_w=self.power_w)] * len(self._devices)
        return [DeviceReading(energy_j=None, power_w=self.power_w)] * len(self._devices)

    def close(self) -> None:
        """Mark the source closed."""
        self.closed = True


class FailingPowerSource(ConstantPowerSource):
    """A constant source that raises :class:`SourceError` once ``fail_after_s`` have passed.

    Args:
        power_w: Power of each device, in watts.
        fail_after_s: Seconds after the first read at which every read fails.
        **kwargs: As for :class:`ConstantPowerSource`.
    """

    def __init__(self, power_w: float, *, fail_after_s: float, **kwargs: object) -> None:
        super().__init__(power_w, **kwargs)  # type: ignore[arg-type]
        self.fail_after_s = fail_after_s

    def read(self, now_s: float) -> Sequence[DeviceReading]:
        """Read, or fail once the time has come."""
        if self._t_first is not None and now_s - self._t_first >= self.fail_after_s:
            raise SourceError("simulated device lost")
        return super().read(now_s)
