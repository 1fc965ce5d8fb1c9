"""A run's power over time, per device, downsampled in SQL to at most a few thousand points.

A run may hold millions of samples (one per device per second); a plot needs a few thousand
points per trace. :func:`power_series` sums them into equal time buckets in one ``GROUP BY``
query, keeping the energy: a bucket's energy is the sum of its rows', its power that energy
over the seconds they cover, so the area under the curve is the energy at any width.

Where a row goes: a sample's ``offset_s`` is the *end* of its interval, in seconds from the
run's start (:class:`carbon.wire.Batch`), so a sample counts in the bucket holding its
interval's middle, ``offset_s - interval_s / 2``, and never lands a bucket late. Bucket
``k`` covers ``[k * width_s, (k + 1) * width_s)`` from the run's start whatever the window,
so zooming and panning keep the edges where they were.

Where rows come from: buckets of a minute or wider are summed from the devices' minutes
(``sample_minute``, kept current as batches are stored, 1/60 of the samples, each with its
power range and utilization), placed at their minute's middle; narrower buckets from the
samples themselves. A window that reaches samples retention removed is drawn from minutes
too, at 100 s or wider. A row outside the run (a minute begun before it) joins its first or
last bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, Row, cast, func, literal_column, select, text
from sqlalchemy.orm import Session

from carbon.errors import ConfigError
from carbon.store.models import Device, Run, Sample, SampleMinute
from carbon.store.queries import get_run

MIN_WIDTH_S = 1.0
"""Narrowest bucket: samples last about a second, a narrower bucket shows nothing more."""

ROLLUP_MIN_WIDTH_S = 60.0
"""Narrowest bucket drawn from minutes rather than samples, so each holds whole minutes."""

T_SLACK_S = 60.0
"""How far past a window the index range on ``sample.t`` (a sample's end) reaches: samples
last about a second; one over twice this, centred in the window but ending past it, is missed."""

_MINUTE_S = 60.0


@dataclass(frozen=True, slots=True)
class DeviceSeries:
    """One device's power, one entry per bucket with data (a bucket without is a gap).

    Attributes:
        device_id: The device's database id.
        component: ``gpu``, ``cpu`` or ``ram``.
        name: The device's model name.
        rank: The rank that measured it.
        position: Its position within the rank.
        start_s: Each bucket's start, seconds from the run's start, increasing.
        width_s: Width of every bucket, seconds.
        energy_j: Energy of each bucket (its samples' or minutes').
        covered_s: Seconds each bucket's samples or minutes cover.
        power_w: Mean power of each bucket, ``energy_j / covered_s``.
        power_min_w: Lowest one-second power in each bucket; ``None`` where its minutes were
            summed before revision 0004, which kept no power range.
        power_max_w: Highest one-second power in each bucket; ``None`` likewise.
        utilization: Mean utilization (0 to 1) of each bucket's samples; ``None`` if unknown.
    """

    device_id: int
    component: str
    name: str
    rank: int
    position: int
    start_s: list[float]
    width_s: float
    energy_j: list[float]
    covered_s: list[float]
    power_w: list[float]
    power_min_w: list[float | None]
    power_max_w: list[float | None]
    utilization: list[float | None]


@dataclass(frozen=True, slots=True)
class RunSeries:
    """The power of a run's devices over a window.

    Attributes:
        run_id: The run's full id.
        width_s: Bucket width, seconds.
        start_s: Start of the window covered: the one asked, clipped to the run and widened
            to whole buckets (0 for the whole run).
        end_s: End of the window covered (the run's duration for the whole run).
        devices: Every device of the run, by rank then position.
        source_rows: Stored rows (samples, or minutes for wide buckets) summed into the buckets.
    """

    run_id: str
    width_s: float
    start_s: float
    end_s: float
    devices: list[DeviceSeries]
    source_rows: int


def bucket_width_s(span_s: float, max_points: int, *, min_width_s: float = MIN_WIDTH_S) -> float:
    """The narrowest 1, 2 or 5 x 10^k s >= ``min_width_s`` cutting ``span_s`` in <= ``max_points``.

    Raises:
        ConfigError: A negative or non-finite span, ``max_points`` < 1, or a width <= 0.
    """
    if max_points < 1:
        raise ConfigError(f"max_points={max_points}: a series needs at least 1 point")
    if not math.isfinite(span_s) or span_s < 0:
        raise ConfigError(f"span_s={span_s!r}: give a finite number of seconds >= 0")
    if not min_width_s > 0:
        raise ConfigError(f"min_width_s={min_width_s!r}: widths are > 0")
    return next(_nice_widths(max(span_s / max_points, min_width_s)))


def power_series(
    session: Session,
    run_id: str,
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    max_points: int = 2000,
    team_id: int | None = None,
) -> RunSeries:
    """Each device's power through a run, in at most ``max_points`` buckets per device.

    Args:
        session: An open session.
        run_id: A full run id or a unique prefix of one.
        start_s: Start of a zoom window, seconds from the run's start; ``None`` for 0.
        end_s: End of the window; ``None`` for the run's end (for a running run, the end of
            its latest sample).
        max_points: Most buckets per device.
        team_id: Look only among this team's runs; ``None`` looks at every team's.

    Raises:
        RunNotFound: No run (of the team) matches ``run_id``.
        ConfigError: The window holds none of the run, or ``max_points`` < 1.
    """
    run = get_run(session, run_id, team_id=team_id)
    span_s = max(run.duration_s or 0.0, 0.0)
    low_s, high_s = _clip_window(start_s, end_s, span_s)
    width_s, first, stop, run_buckets = _layout(span_s, low_s, high_s, max_points, MIN_WIDTH_S)
    if width_s < ROLLUP_MIN_WIDTH_S and _reaches_removed_samples(session, run, low_s, high_s):
        width_s, first, stop, run_buckets = _layout(
            span_s, low_s, high_s, max_points, ROLLUP_MIN_WIDTH_S
        )
    query = (
        _minute_query(session, run, width_s, first, stop, run_buckets)
        if width_s >= ROLLUP_MIN_WIDTH_S
        else _sample_query(session, run, width_s, first, stop, run_buckets)
    )
    rows = _execute(session, query)
    buckets = _gather(rows, run_buckets)
    return RunSeries(
        run_id=run.id,
        width_s=width_s,
        start_s=first * width_s,
        end_s=min(stop * width_s, span_s),
        devices=[
            _device_series(device, width_s, buckets.get(device.id, {}))
            for device in sorted(run.devices, key=lambda device: (device.rank, device.position))
        ],
        source_rows=sum(int(row[-1]) for row in rows),
    )


def total_power(series: RunSeries) -> tuple[list[float], list[float]]:
    """Bucket starts and the run's power in each: the sum of its devices' mean power.

    A device without data in a bucket (not started yet, failed, a gap) is left out of that
    bucket's sum, neither counted as 0 W nor hiding the bucket: the total is the power of
    the devices measured then.
    """
    totals: dict[float, float] = {}
    for device in series.devices:
        for start, power_w in zip(device.start_s, device.power_w, strict=True):
            totals[start] = totals.get(start, 0.0) + power_w
    starts = sorted(totals)
    return starts, [totals[start] for start in starts]


def _nice_widths(target_s: float) -> Iterator[float]:
    """Widths 1, 2, 5 x 10^k seconds, from the first >= ``target_s`` (> 0) up, forever."""
    exponent = math.floor(math.log10(target_s)) - 1  # one lower: log10 may round up
    while True:
        for mantissa in (1, 2, 5):
            width = mantissa * 10.0**exponent if exponent >= 0 else mantissa / 10.0**-exponent
            if width >= target_s:
                yield width
        exponent += 1


def _layout(
    span_s: float, low_s: float, high_s: float, max_points: int, min_width_s: float
) -> tuple[float, int, int, int]:
    """The width, the window's buckets ``first`` to ``stop`` (excluded), the run's count."""
    widths = _nice_widths(bucket_width_s(high_s - low_s, max_points, min_width_s=min_width_s))
    while True:  # a window off the bucket edges may touch one bucket more than it spans
        width_s = next(widths)
        run_buckets = max(1, math.ceil(span_s / width_s))
        first = math.floor(low_s / width_s)
        stop = min(max(math.ceil(high_s / width_s), first + 1), run_buckets)
        if stop - first <= max_points:
            return width_s, first, stop, run_buckets


def _clip_window(start_s: float | None, end_s: float | None, span_s: float) -> tuple[float, float]:
    """The window asked, clipped to the run ``[0, span_s]``."""
    for name, value in (("start_s", start_s), ("end_s", end_s)):
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"{name}={value!r}: give a finite number of seconds")
    low_s = 0.0 if start_s is None else min(max(start_s, 0.0), span_s)
    high_s = span_s if end_s is None else min(max(end_s, 0.0), span_s)
    if (start_s is not None or end_s is not None) and low_s >= high_s:
        raise ConfigError(
            f"window start_s={start_s!r} to end_s={end_s!r} holds none of the run "
            f"(0 to {span_s:g} s): give start_s < end_s inside it"
        )
    return low_s, high_s


def _reaches_removed_samples(session: Session, run: Run, low_s: float, high_s: float) -> bool:
    """Whether the window reaches minutes whose samples retention removed (two index probes).

    Retention removes whole days, so such minutes are those before the run's first stored
    sample (all of them when none is left).
    """
    margin_s = 2 * _MINUTE_S  # a minute, plus the widening to buckets under a minute
    first_sample = session.scalar(select(func.min(Sample.t)).where(Sample.run_id == run.id))
    window_end = run.started_at + timedelta(seconds=high_s + margin_s)
    before = window_end if first_sample is None else min(window_end, first_sample)
    query = select(SampleMinute.minute).where(
        SampleMinute.run_id == run.id,
        SampleMinute.minute >= run.started_at + timedelta(seconds=low_s - margin_s),
        SampleMinute.minute < before.replace(second=0, microsecond=0),
    )
    return session.execute(query.limit(1)).first() is not None


class _Buckets:
    """How rows are numbered into the buckets ``first`` to ``stop`` of a bucket query."""

    def __init__(
        self, session: Session, width_s: float, first: int, stop: int, run_buckets: int
    ) -> None:
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.width_s = width_s
        self.low_s, self.high_s = first * width_s, stop * width_s
        # Open ends: rows outside the run count in its first or last bucket.
        self.at_start, self.at_end = first == 0, stop == run_buckets

    def index(self, middle_s: ColumnElement[float]) -> tuple[ColumnElement[Any], list[Any]]:
        """The bucket of a row's middle, and the conditions keeping it in the window."""
        # floor(), which SQLite lacks: its cast truncates, the same for offsets >= 0 (and a
        # negative one joins bucket 0 in _gather anyway); PostgreSQL's ::int rounds instead.
        ratio = middle_s / self.width_s
        index = func.floor(ratio) if self.postgres else cast(ratio, Integer)
        bounds = [] if self.at_start else [middle_s >= self.low_s]
        if not self.at_end:
            bounds.append(middle_s < self.high_s)
        return index.label("bucket"), bounds


def _sample_query(
    session: Session, run: Run, width_s: float, first: int, stop: int, run_buckets: int
) -> Any:
    """One ``GROUP BY`` over the run's samples in buckets ``first`` to ``stop``."""
    buckets = _Buckets(session, width_s, first, stop, run_buckets)
    index, bounds = buckets.index(Sample.offset_s - Sample.interval_s / 2)
    # The (run_id, t) index: t is a sample's end, at or after its middle.
    if not buckets.at_start:
        bounds.append(Sample.t >= run.started_at + timedelta(seconds=buckets.low_s - 1))
    if not buckets.at_end:
        bounds.append(Sample.t < run.started_at + timedelta(seconds=buckets.high_s + T_SLACK_S))
    return (
        select(
            Sample.device_id,
            index,
            func.sum(Sample.energy_j),
            func.sum(Sample.interval_s),
            func.min(Sample.power_w),
            func.max(Sample.power_w),
            func.coalesce(func.sum(Sample.utilization), 0.0),
            func.count(Sample.utilization),
            func.count(),
        )
        .where(Sample.run_id == run.id, *bounds)
        .group_by(Sample.device_id, literal_column("bucket"))
    )


def _minute_query(
    session: Session, run: Run, width_s: float, first: int, stop: int, run_buckets: int
) -> Any:
    """One ``GROUP BY`` over the run's minutes in buckets ``first`` to ``stop``."""
    buckets = _Buckets(session, width_s, first, stop, run_buckets)
    epoch = (
        func.extract("epoch", SampleMinute.minute)
        if buckets.postgres
        else func.strftime("%s", SampleMinute.minute)
    )
    middle_s = cast(epoch, Float) - run.started_at.timestamp() + _MINUTE_S / 2
    index, bounds = buckets.index(middle_s)
    if not buckets.at_start:  # the (run_id, minute) index, likewise
        bounds.append(
            SampleMinute.minute >= run.started_at + timedelta(seconds=buckets.low_s - _MINUTE_S)
        )
    if not buckets.at_end:
        bounds.append(SampleMinute.minute < run.started_at + timedelta(seconds=buckets.high_s))
    return (
        select(
            SampleMinute.device_id,
            index,
            func.sum(SampleMinute.energy_j),
            func.sum(SampleMinute.interval_s),
            func.min(SampleMinute.power_min_w),
            func.max(SampleMinute.power_max_w),
            func.sum(SampleMinute.utilization_sum),
            func.sum(SampleMinute.utilization_count),
            func.count(),
        )
        .where(SampleMinute.run_id == run.id, *bounds)
        .group_by(SampleMinute.device_id, literal_column("bucket"))
    )


def _execute(session: Session, query: Any) -> Sequence[Row[Any]]:
    """Run the bucket query; on PostgreSQL with settings fit for it, undone afterwards."""
    if session.get_bind().dialect.name != "postgresql":
        return session.execute(query).all()
    savepoint = session.begin_nested()
    try:
        # Measured on 1M samples: the planner's cost estimate turns JIT compilation on, which
        # costs ~30 ms and saves nothing on one aggregate; and the default work_mem (4MB)
        # spills the grouping sort to disk. SET LOCAL lasts until the transaction ends, so
        # the savepoint rolled back below restores the caller's values.
        session.execute(text("SET LOCAL jit = off"))
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        return session.execute(query).all()
    finally:
        savepoint.rollback()


def _gather(rows: Sequence[Sequence[Any]], run_buckets: int) -> dict[int, dict[int, list[Any]]]:
    """Per device and bucket: energy, seconds, min and max W, utilization sum and count, rows.

    A row outside the run joins the first or last bucket, so it never adds one.
    """
    devices: dict[int, dict[int, list[Any]]] = {}
    for row in rows:
        buckets = devices.setdefault(row[0], {})
        index = min(max(int(row[1]), 0), run_buckets - 1)
        new: list[Any] = list(row[2:])
        if (old := buckets.get(index)) is not None:
            new = [
                *(old[0] + new[0], old[1] + new[1]),
                *(_either(min, old[2], new[2]), _either(max, old[3], new[3])),
                *(old[4] + new[4], old[5] + new[5], old[6] + new[6]),
            ]
        buckets[index] = new
    return devices


def _either(pick: Any, a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else pick(a, b)


def _device_series(device: Device, width_s: float, buckets: dict[int, list[Any]]) -> DeviceSeries:
    ordered = sorted(buckets.items())
    energy_j = [float(values[0]) for _, values in ordered]
    covered_s = [float(values[1]) for _, values in ordered]
    return DeviceSeries(
        device_id=device.id,
        component=device.component,
        name=device.name,
        rank=device.rank,
        position=device.position,
        start_s=[index * width_s for index, _ in ordered],
        width_s=width_s,
        energy_j=energy_j,
        covered_s=covered_s,
        power_w=[e / c if c > 0 else 0.0 for e, c in zip(energy_j, covered_s, strict=True)],
        power_min_w=[None if v[2] is None else float(v[2]) for _, v in ordered],
        power_max_w=[None if v[3] is None else float(v[3]) for _, v in ordered],
        utilization=[float(v[4]) / v[5] if v[5] else None for _, v in ordered],
    )
