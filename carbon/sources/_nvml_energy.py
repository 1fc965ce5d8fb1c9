"""How NVML readings become cumulative energy, one device at a time (no NVML calls here).

Every estimator is fed one reading per sampler tick, at the sampler's time ``t_s``, and
returns the device's energy since its first reading, never decreasing.

**Power readings** (:class:`TrapezoidIntegrator`, :class:`AverageReconstructor`). Older GPUs
(A100 and before) report instantaneous power, integrated by trapezoids. Hopper and most
Ampere-or-newer GPUs report the mean power over the last second, ``A(t) = E(t-1, t) / 1 s``.
Integrating those means as if they were instantaneous lags the true energy by about half a
second (the mean is centred 0.5 s in the past): a few percent on a few-second window that
starts or ends with a change of load. :class:`AverageReconstructor` instead uses that each
reading is an exact energy, ``E(t-1, t) = A(t) x 1 s``, so the cumulative energy obeys
``F(t) = A(t) x 1 s + F(t - 1 s)``: whole seconds are known exactly, from the readings alone.
The recursion needs the profile of the second before the first reading, which no reading can
tell; it is taken as flat at the first reading's mean. The bias is thus the energy of part of
that one second: zero when the window lasts a whole number of seconds or the power was steady
before it began (a job that starts after its tracking does), otherwise at most about a
quarter of ``(max - min power) x 1 s``, and it does not grow with the length of the run.
At a window's end the source settles on a whole second since its first reading, where the
reconstruction is exact, so a run measured this way has no such bias.
Reading times between samples are interpolated linearly.

**The energy counter** (:class:`CounterEstimator`). NVML's counter is exact but advances only
when the driver updates it (about every 100 ms). The estimator keeps the (estimated) times of
the updates it sees: when the counter changed between two readings, the update happened
between them; a reading that sees no change narrows that bracket. Then:

- at a window's edge the sampler first lets the source *settle*: it polls the counter every
  few milliseconds until it advances, so the edge reading comes right after an update and
  is exact to within the power times the poll interval (the tail since the update is
  extrapolated with the latest power). A window therefore never reads 0 J, and a run or a
  ``run.measure`` window is exact however bursty the load at its edges;
- between edges a reading reports the counter at its last update: it lags the true energy
  by less than one update, never runs ahead of it, and so never has to be held up (the
  reported energy may not go down) above the truth. Per-second samples can thus each be off
  by up to the power times one update period at their boundaries; their sum is exact;
- at the first reading, once the next update is seen, the counter is interpolated between
  the updates on either side of it.

Faults: a counter that goes backwards (a reset) or jumps by more than the device can draw is
rebased so the energy continues from the power readings, with a note; a counter that does
not move for ``stall_s`` while the device draws power is declared frozen, with a note, and
the device's energy continues from its power readings from then on.
"""

from __future__ import annotations

import bisect
from typing import Protocol

from carbon.units import MJ_PER_J

__all__ = ["AverageReconstructor", "CounterEstimator", "PowerIntegrator", "TrapezoidIntegrator"]

SETTLED_S = 0.005
"""A reading this close after a counter update is extrapolated over the gap."""

_KEEP_S = 6.0
"""History kept for interpolation: the averaging window plus the longest stall, with room."""


class PowerIntegrator(Protocol):
    """Turns power readings into cumulative energy."""

    def add(self, t_s: float, power_w: float) -> float:
        """Take a reading; return the energy since the first reading."""
        ...

    def energy_at(self, t_s: float) -> float:
        """Energy since the first reading at ``t_s`` (interpolated or extrapolated)."""
        ...


class _History:
    """Times and cumulative energies, with linear interpolation; old points are dropped."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.values: list[float] = []

    def append(self, t_s: float, value_j: float) -> None:
        self.times.append(t_s)
        self.values.append(value_j)
        if len(self.times) > 64 and self.times[0] < t_s - _KEEP_S:
            cut = bisect.bisect_left(self.times, t_s - _KEEP_S) - 1
            del self.times[:cut], self.values[:cut]

    def interpolate(self, t_s: float) -> float:
        """Value at ``t_s``, which must lie within the kept history."""
        i = bisect.bisect_right(self.times, t_s)
        if i <= 0:
            return self.values[0]
        if i >= len(self.times):
            return self.values[-1]
        t_a, t_b = self.times[i - 1], self.times[i]
        v_a, v_b = self.values[i - 1], self.values[i]
        return v_a + (v_b - v_a) * (t_s - t_a) / (t_b - t_a)


class TrapezoidIntegrator:
    """Trapezoids between instantaneous power readings."""

    def __init__(self) -> None:
        self._history = _History()
        self._last_w = 0.0

    def add(self, t_s: float, power_w: float) -> float:
        """Add the trapezoid since the previous reading."""
        history = self._history
        if not history.times:
            history.append(t_s, 0.0)
        elif t_s > history.times[-1]:
            dt_s = t_s - history.times[-1]
            history.append(t_s, history.values[-1] + 0.5 * (self._last_w + power_w) * dt_s)
        self._last_w = power_w
        return history.values[-1]

    def energy_at(self, t_s: float) -> float:
        """Interpolated energy; held at the last power beyond the last reading."""
        history = self._history
        if t_s > history.times[-1]:
            return history.values[-1] + self._last_w * (t_s - history.times[-1])
        return history.interpolate(t_s)


class AverageReconstructor:
    """Exact energy from readings that are each the mean power over the last ``window_s``.

    See the module docstring for the recursion and its bias.
    """

    def __init__(self, window_s: float = 1.0) -> None:
        self.window_s = window_s
        self._history = _History()
        self._first_t_s = 0.0
        self._first_w = 0.0
        self._last_w = 0.0

    def add(self, t_s: float, power_w: float) -> float:
        """``F(t) = A(t) x window + F(t - window)``; a repeated time keeps the first answer."""
        history = self._history
        if not history.times:
            self._first_t_s, self._first_w = t_s, power_w
            history.append(t_s, 0.0)
        elif t_s > history.times[-1]:
            window_j = power_w * self.window_s
            history.append(t_s, window_j + self.energy_at(t_s - self.window_s))
        self._last_w = power_w
        return history.values[-1]

    @property
    def first_t_s(self) -> float | None:
        """Time of the first reading, or ``None`` before it."""
        return self._first_t_s if self._history.times else None

    def energy_at(self, t_s: float) -> float:
        """Reconstructed energy at ``t_s``; before the first reading, the flat prior."""
        history = self._history
        if t_s <= self._first_t_s:
            return -(self._first_t_s - t_s) * self._first_w
        if t_s > history.times[-1]:
            return history.values[-1] + self._last_w * (t_s - history.times[-1])
        return history.interpolate(t_s)


class CounterEstimator:
    """Energy from NVML's stepwise counter: exact at its steps, lagging less than one between.

    Args:
        label: The device, for notes (``GPU 0 (NVIDIA H100 80GB HBM3)``).
        integrator: Integrates the device's power readings (for stalls and faults).
        notes: Where anomaly notes go (the source's ``notes``).
        period_s: Nominal time between counter updates.
        instant_power: Whether power readings are instantaneous (then the best estimate of
            the power since the last update) rather than 1-second means (too old for that).
        max_power_w: More than this, sustained between two readings, is not believed.
        stall_s: A counter unchanged this long while power is drawn is declared frozen.
    """

    def __init__(
        self,
        label: str,
        integrator: PowerIntegrator,
        notes: list[str],
        *,
        period_s: float = 0.1,
        instant_power: bool = False,
        max_power_w: float = 2000.0,
        stall_s: float = 1.0,
    ) -> None:
        self.label, self.integrator, self.notes = label, integrator, notes
        self.period_s, self.instant_power = period_s, instant_power
        self.max_power_w, self.stall_s = max_power_w, stall_s
        self.frozen = False
        self._offset_j = 0.0
        self._first_t_s: float | None = None
        self._last_t_s = 0.0
        self._last_j = 0.0
        self._updates = _History()  # estimated update times and the counter's value, J
        self._bracket = (0.0, 0.0)  # the last update lies in (lo, hi]
        self._anchor_j = 0.0  # estimated counter value at the first reading
        self._power_w: float | None = None  # the latest power reading
        self._frozen_base_j = 0.0
        self._frozen_from_j = 0.0
        self._reported_j = 0.0

    def update(self, t_s: float, counter_mj: int, power_w: float | None) -> float:
        """Take one reading; return the device's energy since its first reading."""
        integrated_j = None if power_w is None else self.integrator.add(t_s, power_w)
        self._power_w = power_w
        counter_j = counter_mj / MJ_PER_J + self._offset_j
        if self._first_t_s is None:
            self._first_t_s = self._last_t_s = t_s
            self._last_j = counter_j
            self._new_update(t_s - self.period_s, t_s, counter_j)
            self._anchor_j = self._estimate(t_s, integrated_j)
            return 0.0
        t_s = max(t_s, self._last_t_s)
        if self.frozen and integrated_j is not None:
            estimate_j = self._frozen_base_j + integrated_j - self._frozen_from_j
        else:
            counter_j = self._check_counter(t_s, counter_j, counter_mj, integrated_j)
            if counter_j > self._last_j:
                self._new_update(max(self._last_t_s, t_s - self.period_s), t_s, counter_j)
            else:
                lo_s, hi_s = self._bracket
                if t_s - self.period_s < hi_s:  # regular updates: the last is within a period
                    self._bracket = (max(lo_s, t_s - self.period_s), hi_s)
                    self._updates.times[-1] = 0.5 * sum(self._bracket)
            if len(self._updates.times) == 1:  # no update since the first reading yet
                self._anchor_j = self._estimate(self._first_t_s, None)
            estimate_j = self._estimate(t_s, integrated_j)
            self._check_stall(t_s, estimate_j, integrated_j, power_w)
            self._last_j = counter_j
        self._last_t_s = t_s
        self._reported_j = max(self._reported_j, estimate_j - self._anchor_j)
        return self._reported_j

    def _new_update(self, lo_s: float, hi_s: float, counter_j: float) -> None:
        """Record a counter update seen in ``(lo_s, hi_s]``; place the first edge if due."""
        self._bracket = (lo_s, hi_s)
        updates = self._updates
        updates.append(0.5 * (lo_s + hi_s), counter_j)
        if len(updates.times) == 2 and self._first_t_s is not None:
            # The first update after the first reading: interpolate the counter at that
            # reading between this update and the one before it.
            first_s = self._first_t_s
            (before_s, update_s), (before_j, update_j) = updates.times, updates.values
            if update_s - self.period_s <= first_s:  # one update since the first reading
                before_s = updates.times[0] = update_s - self.period_s
            share = (first_s - before_s) / (update_s - before_s)
            self._anchor_j = before_j + (update_j - before_j) * min(1.0, max(0.0, share))

    def _tail_power_w(self) -> float:
        """Power since the last update: an instantaneous reading, else the counter's slope.

        The slope is taken over the last update interval (at least 3/4 of a period); before
        there is one, the latest power reading stands in.
        """
        if self.instant_power and self._power_w is not None:
            return self._power_w
        updates = self._updates
        last_s, last_j = updates.times[-1], updates.values[-1]
        for update_s, update_j in zip(
            reversed(updates.times), reversed(updates.values), strict=True
        ):
            if last_s - update_s >= 0.75 * self.period_s:
                return (last_j - update_j) / (last_s - update_s)
        return self._power_w or 0.0

    def _estimate(self, t_s: float, integrated_j: float | None) -> float:
        """The counter at its last update, plus what is known of the energy since.

        Within :data:`SETTLED_S` of an update (an edge reading after :meth:`settle
        <carbon.sources.nvml.NvmlSource.settle>`) the tail is extrapolated with the latest
        power. Otherwise the counter's value at its last update is reported as it is: it lags
        by less than an update, but it never runs ahead of the true energy, so the reported
        energy (which may not go down) is never held above it. Beyond two periods without an
        update (a late or stalled counter), the integrated power readings carry it on.
        """
        update_s, update_j = self._updates.times[-1], self._updates.values[-1]
        tail_s = max(0.0, t_s - update_s)
        if tail_s <= SETTLED_S:
            return update_j + self._tail_power_w() * tail_s
        if tail_s <= 2 * self.period_s or integrated_j is None:
            return update_j
        return update_j + integrated_j - self.integrator.energy_at(update_s)

    def _check_counter(
        self, t_s: float, counter_j: float, counter_mj: int, integrated_j: float | None
    ) -> float:
        """Rebase a counter that went back or jumped; return the (rebased) counter in J."""
        delta_j = counter_j - self._last_j
        dt_s = t_s - self._last_t_s
        if 0 <= delta_j <= self.max_power_w * (dt_s + 2 * self.period_s) + 1.0:
            return counter_j
        what = "went back" if delta_j < 0 else "jumped"
        if integrated_j is not None:
            bridge_j = integrated_j - self.integrator.energy_at(self._last_t_s)
        else:
            bridge_j = self._tail_power_w() * dt_s
        self._offset_j += self._last_j + bridge_j - counter_j
        self.notes.append(
            f"{self.label}: energy counter {what} by {abs(delta_j):.3f} J (to {counter_mj} mJ; "
            "reset or glitch); rebased, bridging the gap with the power readings"
        )
        return self._last_j + bridge_j

    def _check_stall(
        self, t_s: float, estimate_j: float, integrated_j: float | None, power_w: float | None
    ) -> None:
        stalled_s = t_s - self._updates.times[-1]
        if stalled_s <= self.stall_s or integrated_j is None or not power_w:
            return
        self.frozen = True
        self._frozen_base_j, self._frozen_from_j = estimate_j, integrated_j
        self.notes.append(
            f"{self.label}: energy counter has not moved for {stalled_s:.1f} s while the GPU "
            f"draws {power_w:.0f} W (frozen counter); from now on its energy is integrated from "
            "power readings"
        )
