"""A run's power over time: buckets that keep the energy, on SQLite and PostgreSQL.

Runs are written through the real write path (:class:`~carbon.store.sink.LocalSink`): a GPU
at a constant 300 W reporting 90 % utilization, and a CPU whose power ramps as
``20 + 0.01 t`` W without utilization, in one-second samples. Bucket sums are checked
against the integrals of those functions, not against the code.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from carbon import wire
from carbon.errors import ConfigError, RunNotFound
from carbon.store import Store, open_store
from carbon.store.models import DEFAULT_TEAM_ID, Device
from carbon.store.retention import apply_retention
from carbon.store.series import (
    DeviceSeries,
    RunSeries,
    bucket_width_s,
    power_series,
    total_power,
)
from carbon.store.sink import LocalSink
from carbon.store.teams import create_team

RUN_ID = "5e1e5" + "0" * 27
STARTED = datetime(2026, 11, 22, 9, 30, 15, 250000, tzinfo=UTC)
GPU_W = 300.0
GPU_UTILIZATION = 0.9
CHUNK_S = 10_000


def _cpu_w(t_s: float) -> float:
    return 20.0 + 0.01 * t_s


def _gpu_j(a_s: float, b_s: float) -> float:
    """The GPU's energy from ``a_s`` to ``b_s``: the integral of a constant."""
    return GPU_W * (b_s - a_s)


def _cpu_j(a_s: float, b_s: float) -> float:
    """The CPU's energy from ``a_s`` to ``b_s``: the integral of the ramp."""
    return 20.0 * (b_s - a_s) + 0.005 * (b_s**2 - a_s**2)


def _start(started_at: datetime) -> wire.RunStart:
    return wire.RunStart(
        id=RUN_ID,
        project="p",
        name="n",
        kind="training",
        started_at=started_at,
        host="h",
        region=None,
        pue=1.0,
        intensity=None,
        sample_hz=10,
        carbon_version="test",
        devices=[
            wire.DeviceSpec(
                position=0,
                component="gpu",
                name="H100",
                method="m",
                provenance="measured",
                detail="",
            ),
            wire.DeviceSpec(
                position=1,
                component="cpu",
                name="Xeon",
                method="m",
                provenance="measured",
                detail="",
            ),
        ],
    )


def _write_run(
    store: Store,
    seconds: int,
    *,
    started_at: datetime = STARTED,
    team_id: int = DEFAULT_TEAM_ID,
    finish: bool = True,
) -> None:
    """A run of ``seconds`` one-second samples per device, in batches of ``CHUNK_S`` s."""
    sink = LocalSink(store, team_id)
    sink.start_run(_start(started_at))
    for seq, first in enumerate(range(0, seconds, CHUNK_S)):
        last = min(first + CHUNK_S, seconds)
        count = last - first
        ends = [float(k + 1) for k in range(first, last)]
        sink.write(
            wire.Batch(
                run_id=RUN_ID,
                seq=seq,
                sample_device=[0] * count + [1] * count,
                sample_offset_s=ends * 2,
                sample_interval_s=[1.0] * (2 * count),
                sample_energy_j=[_gpu_j(e - 1, e) for e in ends] + [_cpu_j(e - 1, e) for e in ends],
                sample_utilization=[GPU_UTILIZATION] * count + [None] * count,
                totals=wire.Totals(
                    duration_s=float(last),
                    device_energy_j=[_gpu_j(0, last), _cpu_j(0, last)],
                    steps=0,
                ),
            )
        )
    if finish:
        sink.finish_run(wire.RunEnd(run_id=RUN_ID, status="completed", ended_at=started_at))


def _series(
    store: Store,
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    max_points: int = 2000,
) -> RunSeries:
    with store.session() as session:
        return power_series(session, RUN_ID, start_s=start_s, end_s=end_s, max_points=max_points)


def _stored_energy_j(store: Store) -> list[float]:
    with store.session() as session:
        query = select(Device.energy_j).where(Device.run_id == RUN_ID).order_by(Device.position)
        return list(session.scalars(query))


def test_bucket_energy_is_the_integral_and_power_the_mean(store_url: str) -> None:
    store = open_store(store_url)
    _write_run(store, 3600)
    series = _series(store)
    gpu, cpu = series.devices
    assert (series.width_s, series.start_s, series.end_s) == (2.0, 0.0, 3600.0)
    assert series.source_rows == 7200
    assert ((gpu.component, gpu.name), (cpu.component, cpu.name)) == (
        ("gpu", "H100"),
        ("cpu", "Xeon"),
    )
    assert gpu.start_s == cpu.start_s == [2.0 * k for k in range(1800)]
    assert math.fsum(gpu.energy_j) == pytest.approx(_gpu_j(0, 3600), rel=1e-12)
    assert math.fsum(cpu.energy_j) == pytest.approx(_cpu_j(0, 3600), rel=1e-12)
    assert [math.fsum(gpu.energy_j), math.fsum(cpu.energy_j)] == pytest.approx(
        _stored_energy_j(store), rel=1e-12
    )
    assert gpu.covered_s == [2.0] * 1800
    assert gpu.power_w == pytest.approx([GPU_W] * 1800)
    # The mean of a ramp over [a, a + 2) is its value at the middle.
    assert cpu.power_w == pytest.approx([_cpu_w(start + 1.0) for start in cpu.start_s])
    assert cpu.power_min_w == pytest.approx([_cpu_w(start + 0.5) for start in cpu.start_s])
    assert cpu.power_max_w == pytest.approx([_cpu_w(start + 1.5) for start in cpu.start_s])
    for low, mean, high in zip(cpu.power_min_w, cpu.power_w, cpu.power_max_w, strict=True):
        assert low is not None
        assert high is not None
        assert low <= mean <= high
    assert gpu.utilization == pytest.approx([GPU_UTILIZATION] * 1800)
    assert cpu.utilization == [None] * 1800
    starts, total_w = total_power(series)
    assert starts == gpu.start_s
    assert total_w == pytest.approx([GPU_W + _cpu_w(start + 1.0) for start in starts])


def test_a_long_run_never_has_more_buckets_than_asked(store_url: str) -> None:
    store = open_store(store_url)
    _write_run(store, 20_000)
    for max_points in (1, 3, 7, 500, 1999):
        series = _series(store, max_points=max_points)
        for device in series.devices:
            assert 0 < len(device.start_s) <= max_points
        gpu, cpu = series.devices
        assert math.fsum(gpu.energy_j) == pytest.approx(_gpu_j(0, 20_000), rel=1e-12)
        assert math.fsum(cpu.energy_j) == pytest.approx(_cpu_j(0, 20_000), rel=1e-12)
    assert _series(store, max_points=500).width_s == 50.0
    # A window off the bucket edges touches one bucket more than it spans: a wider width.
    for start_s, end_s in ((1000.0, 1500.0), (1000.5, 1500.5), (0.0, 20_000.0), (19_999.5, None)):
        series = _series(store, start_s=start_s, end_s=end_s, max_points=500)
        assert 0 < len(series.devices[0].start_s) <= 500


def test_a_zoom_window_has_finer_buckets_inside_it(store_url: str) -> None:
    store = open_store(store_url)
    _write_run(store, 20_000)
    whole = _series(store, max_points=500)
    zoom = _series(store, start_s=1000.0, end_s=1500.0, max_points=500)
    assert (zoom.width_s, zoom.start_s, zoom.end_s) == (1.0, 1000.0, 1500.0)
    assert zoom.width_s < whole.width_s
    gpu, cpu = zoom.devices
    assert gpu.start_s == [float(t) for t in range(1000, 1500)]
    assert zoom.source_rows == 1000
    assert math.fsum(gpu.energy_j) == pytest.approx(_gpu_j(1000, 1500), rel=1e-12)
    assert math.fsum(cpu.energy_j) == pytest.approx(_cpu_j(1000, 1500), rel=1e-12)
    # Off the edges, the window widens to whole buckets (of 2 s: 501 of 1 s are too many).
    odd = _series(store, start_s=1000.5, end_s=1500.5, max_points=500)
    assert (odd.width_s, odd.start_s, odd.end_s) == (2.0, 1000.0, 1502.0)
    assert odd.devices[1].start_s == [float(t) for t in range(1000, 1502, 2)]
    assert math.fsum(odd.devices[1].energy_j) == pytest.approx(_cpu_j(1000, 1502), rel=1e-12)
    # A window past the run's end is clipped to it.
    tail = _series(store, start_s=19_990.0, end_s=1e9)
    assert (tail.start_s, tail.end_s, tail.devices[0].start_s[-1]) == (19_990.0, 20_000.0, 19_999.0)
    assert math.fsum(tail.devices[0].energy_j) == pytest.approx(_gpu_j(19_990, 20_000))


@pytest.mark.parametrize(
    ("start_s", "end_s", "shown"),
    [
        (500.0, 100.0, ("start_s=500.0", "end_s=100.0")),
        (100.0, 100.0, ("start_s=100.0", "end_s=100.0")),
        (4000.0, None, ("start_s=4000.0", "end_s=None", "0 to 3600 s")),
        (None, -5.0, ("start_s=None", "end_s=-5.0")),
        (math.nan, 10.0, ("start_s=nan",)),
    ],
)
def test_a_window_holding_none_of_the_run_names_the_values(
    store_url: str, start_s: float | None, end_s: float | None, shown: tuple[str, ...]
) -> None:
    store = open_store(store_url)
    _write_run(store, 3600)
    with pytest.raises(ConfigError) as info:
        _series(store, start_s=start_s, end_s=end_s)
    assert isinstance(info.value, ValueError)
    for part in shown:
        assert part in str(info.value)


def test_another_teams_run_is_not_found(store_url: str) -> None:
    store = open_store(store_url)
    with store.session() as session:
        other = create_team(session, "other").id
    _write_run(store, 60, team_id=other)
    with store.session() as session:
        with pytest.raises(RunNotFound):
            power_series(session, RUN_ID, team_id=DEFAULT_TEAM_ID)
        assert power_series(session, RUN_ID[:8], team_id=other).run_id == RUN_ID


def test_a_running_run_spans_to_its_latest_sample(store_url: str) -> None:
    store = open_store(store_url)
    _write_run(store, 90, finish=False)
    series = _series(store)
    assert (series.end_s, series.devices[0].start_s[-1]) == (90.0, 89.0)


def test_samples_past_a_lagging_duration_join_the_last_bucket(store_url: str) -> None:
    store = open_store(store_url)
    sink = LocalSink(store)
    sink.start_run(_start(STARTED))
    for seq, first in ((1, 10), (0, 0)):  # the later batch is stored first
        ends = [float(k + 1) for k in range(first, first + 10)]
        sink.write(
            wire.Batch(
                run_id=RUN_ID,
                seq=seq,
                sample_device=[0] * 10,
                sample_offset_s=ends,
                sample_interval_s=[1.0] * 10,
                sample_energy_j=[GPU_W] * 10,
                sample_utilization=[None] * 10,
                totals=wire.Totals(
                    duration_s=first + 10.0, device_energy_j=[GPU_W * (first + 10), 0.0], steps=0
                ),
            )
        )
    series = _series(store, max_points=5)  # the run's duration says 10 s; samples go to 20 s
    gpu = series.devices[0]
    assert (series.width_s, series.end_s, gpu.start_s) == (2.0, 10.0, [0.0, 2.0, 4.0, 6.0, 8.0])
    assert gpu.energy_j == pytest.approx([2 * GPU_W] * 4 + [12 * GPU_W])
    assert gpu.power_w == pytest.approx([GPU_W] * 5)


def test_a_run_without_samples_has_empty_series(store_url: str) -> None:
    store = open_store(store_url)
    LocalSink(store).start_run(_start(STARTED))
    series = _series(store)
    assert (series.start_s, series.end_s, series.source_rows) == (0.0, 0.0, 0)
    assert [device.start_s for device in series.devices] == [[], []]
    assert total_power(series) == ([], [])


def test_a_long_run_is_drawn_from_its_minutes(store_url: str) -> None:
    store = open_store(store_url)
    _write_run(store, 7200)  # two hours in 100 points: buckets wider than a minute
    series = _series(store, max_points=100)
    gpu, cpu = series.devices
    assert series.width_s == 100.0
    # Read from the minutes (2 devices x 121, the run starts mid-minute), not 14,400 samples.
    assert series.source_rows == 2 * 121
    assert math.fsum(gpu.energy_j) == pytest.approx(_gpu_j(0, 7200), rel=1e-12)
    assert math.fsum(cpu.energy_j) == pytest.approx(_cpu_j(0, 7200), rel=1e-12)
    assert gpu.power_w == pytest.approx([GPU_W] * 72)
    assert gpu.power_min_w == gpu.power_max_w == pytest.approx([GPU_W] * 72)
    assert gpu.utilization == pytest.approx([GPU_UTILIZATION] * 72)
    assert cpu.utilization == [None] * 72
    # The CPU's power ramps: each bucket's range holds its mean.
    for low, mean, high in zip(cpu.power_min_w, cpu.power_w, cpu.power_max_w, strict=True):
        assert low is not None
        assert high is not None
        assert low <= mean <= high
    zoomed = _series(store, start_s=600.0, end_s=1600.0, max_points=1000)  # the samples again
    assert (zoomed.width_s, zoomed.source_rows) == (1.0, 2 * 1000)


def test_a_window_reaching_removed_samples_is_drawn_from_minutes(store_url: str) -> None:
    store = open_store(store_url)
    # 40 minutes across a midnight; retention keeps the samples from midnight on.
    started = datetime(2026, 10, 1, 23, 40, 45, tzinfo=UTC)
    _write_run(store, 2400, started_at=started)
    with store.transaction() as connection:
        report = apply_retention(
            connection, keep_days=29, now=datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
        )
    assert report.samples_removed == 2 * 1154  # ends up to 19:15 after the start
    series = _series(store)
    assert series.width_s == 100.0  # at least a minute, so no bucket holds part of one
    gpu, cpu = series.devices
    assert gpu.start_s == [100.0 * k for k in range(24)]
    assert series.source_rows == 2 * 41  # minutes 23:40 to 00:20 of each device
    assert math.fsum(gpu.energy_j) == pytest.approx(_gpu_j(0, 2400), rel=1e-12)
    assert math.fsum(cpu.energy_j) == pytest.approx(_cpu_j(0, 2400), rel=1e-12)
    assert gpu.power_w == pytest.approx([GPU_W] * 24)  # energy over covered seconds
    assert gpu.power_min_w == gpu.power_max_w == pytest.approx([GPU_W] * 24)
    # Zoomed where the samples are kept, the buckets are fine again.
    raw = _series(store, start_s=1300.0, end_s=2400.0)
    assert (raw.width_s, len(raw.devices[1].start_s)) == (1.0, 1100)
    assert math.fsum(raw.devices[1].energy_j) == pytest.approx(_cpu_j(1300, 2400), rel=1e-12)
    # Zoomed into the removed part, the minutes stand in (23:42 to 23:51, their middles
    # between 100 and 700 s), a minute wide at least.
    old = _series(store, start_s=100.0, end_s=700.0)
    assert old.width_s == 100.0
    assert math.fsum(old.devices[0].energy_j) == pytest.approx(_gpu_j(75, 675), rel=1e-12)


def test_minutes_outside_the_run_stay_in_its_buckets(store_url: str) -> None:
    store = open_store(store_url)
    # Minutes 10:00 to 10:09 hold a run of 10:00:45 to 10:09:05: both ends stick out.
    _write_run(store, 500, started_at=datetime(2026, 10, 1, 10, 0, 45, tzinfo=UTC))
    with store.transaction() as connection:
        apply_retention(connection, keep_days=1, now=datetime(2026, 10, 31, tzinfo=UTC))
    series = _series(store, max_points=5)
    gpu, cpu = series.devices
    assert (series.width_s, series.source_rows) == (100.0, 2 * 10)
    assert gpu.start_s == cpu.start_s == [0.0, 100.0, 200.0, 300.0, 400.0]
    assert gpu.utilization == pytest.approx([GPU_UTILIZATION] * 5)
    assert math.fsum(gpu.energy_j) == pytest.approx(_gpu_j(0, 500), rel=1e-12)
    assert math.fsum(cpu.energy_j) == pytest.approx(_cpu_j(0, 500), rel=1e-12)
    assert gpu.power_w == pytest.approx([GPU_W] * 5)
    first = _series(store, start_s=0.0, end_s=150.0)  # the minute that began before the run
    assert first.devices[0].start_s == [0.0, 100.0]


def test_the_query_leaves_the_sessions_settings_as_they_were(store_url: str) -> None:
    store = open_store(store_url)
    _write_run(store, 60)
    with store.session() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        show = "SELECT current_setting('work_mem'), current_setting('jit')"
        before = session.execute(text(show)).one() if postgres else None
        series = power_series(session, RUN_ID)
        assert math.fsum(series.devices[0].energy_j) == pytest.approx(_gpu_j(0, 60))
        assert (session.execute(text(show)).one() if postgres else None) == before


@pytest.mark.parametrize(
    ("span_s", "max_points", "min_width_s", "width_s"),
    [
        (3600, 2000, 1.0, 2.0),
        (20_000, 500, 1.0, 50.0),
        (1000, 1000, 1.0, 1.0),
        (1001, 1000, 1.0, 2.0),
        (0, 10, 1.0, 1.0),
        (600, 2000, 60.0, 100.0),
        (1e6, 3, 1.0, 500_000.0),
        (1.0, 4, 0.1, 0.5),
    ],
)
def test_bucket_widths_are_nice_and_wide_enough(
    span_s: float, max_points: int, min_width_s: float, width_s: float
) -> None:
    assert bucket_width_s(span_s, max_points, min_width_s=min_width_s) == width_s


@pytest.mark.parametrize(
    ("span_s", "max_points", "message"),
    [(10.0, 0, "max_points=0"), (-1.0, 10, "span_s=-1.0"), (math.inf, 10, "span_s=inf")],
)
def test_bad_bucket_arguments_are_refused(span_s: float, max_points: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        bucket_width_s(span_s, max_points)


def _device(device_id: int, starts: list[float], power_w: list[float]) -> DeviceSeries:
    nones: list[float | None] = [None] * len(starts)
    return DeviceSeries(
        device_id,
        "gpu",
        "g",
        0,
        device_id,
        starts,
        10.0,
        power_w,
        starts,
        power_w,
        nones,
        nones,
        nones,
    )


def test_total_power_sums_the_devices_present_in_each_bucket() -> None:
    series = RunSeries(
        "r",
        10.0,
        0.0,
        40.0,
        [
            _device(1, [0.0, 10.0, 30.0], [100.0, 110.0, 130.0]),
            _device(2, [10.0, 20.0], [5.0, 7.0]),
        ],
        5,
    )
    assert total_power(series) == ([0.0, 10.0, 20.0, 30.0], [100.0, 115.0, 7.0, 130.0])
