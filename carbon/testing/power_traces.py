"""Power traces with exact energy integrals, to drive simulated devices.

A trace is a power curve ``power_w(t_s)`` over trace time (seconds since the simulation's
origin) together with its exact integral ``energy_j(t0_s, t1_s)``, so a test can compare what
a source reported with the true energy of any window, to rounding error.

- :class:`ConstantTrace`: one power level.
- :class:`SquareWaveTrace`: two levels alternating with a fixed period and duty cycle.
- :class:`BurstTrace`: an idle level with bursts of random length at a higher level (seeded,
  so a test sees the same trace each run), like a training loop's kernels and pauses.
- :class:`CsvTrace`: a recorded trace (``time_s,power_w`` rows), piecewise linear between
  rows (or a step function, on request), held flat before the first and after the last row.

Step traces are right-continuous: at an edge ``power_w`` already returns the new level.
"""

from __future__ import annotations

import bisect
import csv
import math
import random
from pathlib import Path
from typing import Literal, Protocol, TextIO, runtime_checkable

from carbon.errors import ConfigError

__all__ = ["BurstTrace", "ConstantTrace", "CsvTrace", "PowerTrace", "SquareWaveTrace"]


@runtime_checkable
class PowerTrace(Protocol):
    """A power curve over trace time with its exact integral."""

    def power_w(self, t_s: float) -> float:
        """Power at trace time ``t_s``, in watts."""
        ...

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        """Exact energy between ``t0_s`` and ``t1_s`` (``t1_s >= t0_s``), in joules."""
        ...


def _check_window(t0_s: float, t1_s: float) -> None:
    if t1_s < t0_s:
        raise ValueError(f"energy window ends before it starts: {t0_s} > {t1_s}")


class ConstantTrace:
    """A device drawing ``power_w`` at all times."""

    def __init__(self, power_w: float) -> None:
        if not 0 <= power_w < math.inf:
            raise ValueError(f"power_w must be finite and >= 0, not {power_w}")
        self._power_w = float(power_w)

    def power_w(self, t_s: float) -> float:
        """The constant power."""
        return self._power_w

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        """``power_w x (t1_s - t0_s)``."""
        _check_window(t0_s, t1_s)
        return self._power_w * (t1_s - t0_s)


class SquareWaveTrace:
    """``high_w`` for the first ``duty`` of every period, ``low_w`` for the rest.

    Periods start at trace time ``phase_s + k x period_s`` for every integer ``k``
    (negative times included).
    """

    def __init__(
        self, low_w: float, high_w: float, period_s: float, duty: float, *, phase_s: float = 0.0
    ) -> None:
        if period_s <= 0 or not 0 <= duty <= 1 or min(low_w, high_w) < 0:
            raise ValueError("need period_s > 0, 0 <= duty <= 1 and powers >= 0")
        self.low_w, self.high_w = float(low_w), float(high_w)
        self.period_s, self.duty, self.phase_s = float(period_s), float(duty), float(phase_s)

    def power_w(self, t_s: float) -> float:
        """The level at ``t_s``."""
        position = (t_s - self.phase_s) % self.period_s
        return self.high_w if position < self.duty * self.period_s else self.low_w

    def _cumulative_j(self, t_s: float) -> float:
        """Energy from the phase origin to ``t_s`` (negative before it)."""
        periods = math.floor((t_s - self.phase_s) / self.period_s)
        position = (t_s - self.phase_s) - periods * self.period_s
        high_s = self.duty * self.period_s
        per_period_j = self.high_w * high_s + self.low_w * (self.period_s - high_s)
        within_j = self.high_w * min(position, high_s) + self.low_w * max(0.0, position - high_s)
        return periods * per_period_j + within_j

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        """Whole periods plus the partial ones at each end."""
        _check_window(t0_s, t1_s)
        return self._cumulative_j(t1_s) - self._cumulative_j(t0_s)


class _Piecewise:
    """A curve through knots ``(t_i, p_i)``: linear between knots, or a step at each knot.

    Flat at ``p_0`` before the first knot and at ``p_n`` after the last. The cumulative
    energy at every knot is kept, so any window costs two binary searches.
    """

    def __init__(self, step: bool) -> None:
        self._step = step
        self._times: list[float] = []
        self._powers: list[float] = []
        self._cumulative: list[float] = []

    def _append(self, t_s: float, power_w: float) -> None:
        if not math.isfinite(t_s):
            raise ValueError(f"trace times must be finite, not {t_s}")
        if self._times and t_s < self._times[-1]:
            raise ValueError(f"trace times must not decrease ({t_s} after {self._times[-1]})")
        if not 0 <= power_w < math.inf:
            raise ValueError(f"power must be finite and >= 0, not {power_w} at {t_s} s")
        if self._times:
            dt_s = t_s - self._times[-1]
            last_w = self._powers[-1]
            added_j = last_w * dt_s if self._step else 0.5 * (last_w + power_w) * dt_s
            if not math.isfinite(self._cumulative[-1] + added_j):
                raise ValueError(f"the trace's energy up to {t_s} s is past a float's range")
            self._cumulative.append(self._cumulative[-1] + added_j)
        else:
            self._cumulative.append(0.0)
        self._times.append(t_s)
        self._powers.append(power_w)

    def _ensure(self, t_s: float) -> None:
        """Make sure knots cover ``t_s`` (generated traces extend themselves here)."""

    def power_w(self, t_s: float) -> float:
        """Power at ``t_s``."""
        self._ensure(t_s)
        i = bisect.bisect_right(self._times, t_s) - 1
        if i < 0:
            return self._powers[0]
        if i >= len(self._times) - 1 or self._step:
            return self._powers[i]
        t_a, t_b = self._times[i], self._times[i + 1]
        p_a, p_b = self._powers[i], self._powers[i + 1]
        return p_a if t_b == t_a else p_a + (p_b - p_a) * (t_s - t_a) / (t_b - t_a)

    def _cumulative_j(self, t_s: float) -> float:
        """Energy from the first knot to ``t_s`` (negative before it)."""
        i = bisect.bisect_right(self._times, t_s) - 1
        if i < 0:
            return self._powers[0] * (t_s - self._times[0])
        dt_s = t_s - self._times[i]
        if self._step:
            return self._cumulative[i] + self._powers[i] * dt_s
        return self._cumulative[i] + 0.5 * (self._powers[i] + self.power_w(t_s)) * dt_s

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        """Exact integral of the curve between ``t0_s`` and ``t1_s``."""
        _check_window(t0_s, t1_s)
        self._ensure(t1_s)
        return self._cumulative_j(t1_s) - self._cumulative_j(t0_s)


class BurstTrace(_Piecewise):
    """Idle power with bursts at a higher power, of random length, seeded.

    From ``start_s`` on, the trace alternates an idle gap (uniform in ``gap_s``) and a burst
    (uniform in ``burst_s``), for ever or until ``end_s``; before ``start_s`` and after
    ``end_s`` it stays idle. The same seed gives the same trace.

    Args:
        idle_w: Power between bursts.
        burst_w: Power during a burst.
        burst_s: Shortest and longest burst, seconds.
        gap_s: Shortest and longest gap between bursts, seconds.
        seed: Seed of the random lengths.
        start_s: Trace time of the first gap's start.
        end_s: Trace time after which no burst starts or continues, if any.
    """

    def __init__(
        self,
        *,
        idle_w: float = 200.0,
        burst_w: float = 650.0,
        burst_s: tuple[float, float] = (0.1, 0.3),
        gap_s: tuple[float, float] = (0.1, 0.4),
        seed: int = 0,
        start_s: float = 0.0,
        end_s: float | None = None,
    ) -> None:
        super().__init__(step=True)
        if min(burst_s) <= 0 or min(gap_s) <= 0 or burst_s[0] > burst_s[1] or gap_s[0] > gap_s[1]:
            raise ValueError("burst_s and gap_s must be (shortest, longest) with lengths > 0")
        self.idle_w, self.burst_w = float(idle_w), float(burst_w)
        self.burst_s, self.gap_s, self.end_s = burst_s, gap_s, end_s
        self._rng = random.Random(seed)
        self._append(start_s, self.idle_w)
        self._next_s = start_s

    def _ensure(self, t_s: float) -> None:
        while self._next_s <= t_s and (self.end_s is None or self._next_s < self.end_s):
            burst_start_s = self._next_s + self._rng.uniform(*self.gap_s)
            burst_end_s = burst_start_s + self._rng.uniform(*self.burst_s)
            if self.end_s is not None:
                burst_start_s = min(burst_start_s, self.end_s)
                burst_end_s = min(burst_end_s, self.end_s)
            self._append(burst_start_s, self.burst_w)
            self._append(burst_end_s, self.idle_w)
            self._next_s = burst_end_s


class CsvTrace(_Piecewise):
    """A recorded trace from a CSV file with ``time_s,power_w`` columns.

    Rows must be in time order. Between rows the power is interpolated linearly
    (``interpolation="linear"``, the default) or held at the earlier row's value
    (``"step"``); before the first row and after the last it is held flat.

    Args:
        path: The CSV file (UTF-8); a header row naming ``time_s`` and ``power_w`` is
            required, other columns are ignored.
        interpolation: ``"linear"`` or ``"step"``.
        time_offset_s: Added to every time in the file (to place the recording).

    Raises:
        ConfigError: The file cannot be read or is not UTF-8 CSV, the header lacks a
            column, a row lacks a cell or holds a time or power that is not a finite
            number (a power below 0), times decrease, or there is no row. The message
            names the file, and the line and column where the problem is.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        interpolation: Literal["linear", "step"] = "linear",
        time_offset_s: float = 0.0,
    ) -> None:
        super().__init__(step=interpolation == "step")
        try:
            with Path(path).open(newline="", encoding="utf-8") as handle:
                self._read(path, handle, time_offset_s)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the trace: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from exc
        if not self._times:
            raise ConfigError(f"{path}: no rows")

    def _read(self, path: Path | str, handle: TextIO, time_offset_s: float) -> None:
        reader = csv.reader(handle)
        columns: dict[str, int] | None = None
        try:
            for fields in reader:
                if columns is None:
                    names = [name.strip() for name in fields]
                    if not {"time_s", "power_w"} <= set(names):
                        raise ValueError("need a header with time_s and power_w columns")
                    columns = {name: names.index(name) for name in ("time_s", "power_w")}
                    continue
                if not fields:
                    continue
                values = [_number(fields, columns[name], name) for name in ("time_s", "power_w")]
                self._append(values[0] + time_offset_s, values[1])
        except csv.Error as exc:
            raise ConfigError(f"{path}, line {reader.line_num}: malformed CSV: {exc}") from None
        except ValueError as exc:
            raise ConfigError(f"{path}, line {reader.line_num}: {exc}") from None


def _number(fields: list[str], column: int, name: str) -> float:
    """The finite number in a row's cell, or a ``ValueError`` naming the column."""
    if column >= len(fields):
        raise ValueError(f"no {name} (column {column + 1}): the row has {len(fields)} cell(s)")
    text = fields[column].strip()
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} (column {column + 1}) is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} {text!r} (column {column + 1}) is not a finite number")
    return value
