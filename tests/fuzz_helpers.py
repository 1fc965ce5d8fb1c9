"""Helpers of the fuzz tests: reproducible hypothesis settings, valid wire records, store checks.

The strategies build records the wire models accept (every bound the models state is kept),
so a property can start from a valid record and break one thing at a time. Text drawn for
records that go to a store holds no NUL: PostgreSQL cannot keep it, and the server refuses it
at its door (``carbon/server/json_body.py``); the wire tests draw any text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import func, select

from carbon import wire
from carbon.store import open_store
from carbon.store.models import Base, BatchReceipt, Device, Sample, Window, Work

FUZZ_HEALTH_CHECKS = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.function_scoped_fixture,
    HealthCheck.large_base_example,
]
"""Checks that would stop a bounded run for being slow or stateful, not for being wrong."""


def fuzz_settings(max_examples: int, *, shrink: bool = True) -> settings:
    """Hypothesis settings for a fuzz property: a fixed number of examples, the same in CI.

    Derandomized (examples depend only on the test), no deadline (two shared cores make
    timings meaningless), and no example database written into the repository. Without
    ``shrink`` a failure is reported as found: shrinking a request against a live server
    can take minutes, and the failure message already shows the request and its answer.
    """
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=FUZZ_HEALTH_CHECKS,
        phases=phases,
    )


# -- values ------------------------------------------------------------------------------

_STORABLE = st.characters(codec="utf-8", exclude_characters="\x00")
"""Any character PostgreSQL's text can hold: UTF-8 (no lone surrogate) but NUL."""


def texts(
    *, min_size: int = 0, max_size: int = 20, storable: bool = True
) -> st.SearchStrategy[str]:
    """Text of up to ``max_size`` characters; without NUL when ``storable``."""
    alphabet = _STORABLE if storable else st.characters(codec="utf-8")
    return st.text(alphabet, min_size=min_size, max_size=max_size)


def finite(low: float = 0.0, high: float = 1e9) -> st.SearchStrategy[float]:
    """A finite float in ``[low, high]``, edges and subnormals included."""
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


run_ids = st.text("0123456789abcdef", min_size=32, max_size=32)
"""Run ids as the wire writes them: 32 lower-case hex digits."""

_OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def aware_times(
    *, low: datetime = datetime(2, 1, 1), high: datetime = datetime(9998, 12, 31)
) -> st.SearchStrategy[datetime]:
    """Timezone-aware times with any whole-minute UTC offset, each with a UTC equivalent."""
    return st.datetimes(min_value=low, max_value=high, timezones=_OFFSETS)


def recent_times() -> st.SearchStrategy[datetime]:
    """Aware times of the last ten years, never in the future (what a server accepts)."""
    now = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    return aware_times(low=now - timedelta(days=3650), high=now)


# -- wire records --------------------------------------------------------------------------


@st.composite
def device_specs(draw: st.DrawFn, position: int, *, storable: bool = True) -> wire.DeviceSpec:
    """A device at ``position``, every optional field drawn or left out."""
    return wire.DeviceSpec(
        position=position,
        component=draw(st.sampled_from(["gpu", "cpu", "ram"])),
        name=draw(texts(max_size=255, storable=storable)),
        method=draw(texts(max_size=32, storable=storable)),
        provenance=draw(st.sampled_from(["measured", "integrated", "estimated"])),
        detail=draw(texts(max_size=60, storable=storable)),
        index=draw(st.none() | st.integers(0, wire.MAX_INT32)),
        uuid=draw(st.none() | texts(max_size=96, storable=storable)),
        power_limit_w=draw(st.none() | finite(0.0, 1e6)),
        memory_bytes=draw(st.none() | st.integers(0, wire.MAX_INT64)),
    )


@st.composite
def intensities(draw: st.DrawFn, *, storable: bool = True) -> wire.IntensityInfo:
    """A grid intensity and its provenance."""
    return wire.IntensityInfo(
        intensity_g_per_kwh=draw(finite(0.0, wire.MAX_INTENSITY_G_PER_KWH)),
        source=draw(texts(max_size=40, storable=storable)),
        zone=draw(texts(max_size=64, storable=storable)),
        year=draw(st.none() | st.integers(1, 9999)),
        factor_type=draw(st.none() | texts(max_size=16, storable=storable)),
        fallback=draw(st.booleans()),
        fallback_reason=draw(st.none() | texts(max_size=40, storable=storable)),
    )


_JSON_LEAVES = (
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite(-1e300, 1e300) | texts()
)


def _json_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Lists and objects of ``inner`` (a named function: hypothesis reads its source)."""
    return st.lists(inner, max_size=4) | st.dictionaries(texts(max_size=8), inner, max_size=4)


json_values = st.recursive(_JSON_LEAVES, _json_containers, max_leaves=12)
"""Any JSON value a database can keep (no NaN, no NUL), nested a little."""


@st.composite
def run_starts(
    draw: st.DrawFn,
    *,
    run_id: str | None = None,
    devices: int | None = None,
    storable: bool = True,
    started_at: st.SearchStrategy[datetime] | None = None,
) -> wire.RunStart:
    """A start record with ``devices`` devices (drawn: 0 to 4) at positions 0, 1, ..."""
    count = draw(st.integers(0, 4)) if devices is None else devices
    text = texts(storable=storable)
    return wire.RunStart(
        id=run_id if run_id is not None else draw(run_ids),
        project=draw(texts(min_size=1, max_size=200, storable=storable)),
        name=draw(texts(min_size=1, max_size=200, storable=storable)),
        kind=draw(st.sampled_from(["training", "inference"])),
        started_at=draw(started_at if started_at is not None else aware_times()),
        host=draw(texts(max_size=255, storable=storable)),
        region=draw(st.none() | texts(max_size=64, storable=storable)),
        pue=draw(finite(1.0, wire.MAX_PUE)),
        pue_source=draw(st.none() | text),
        intensity=draw(st.none() | intensities(storable=storable)),
        sample_hz=draw(finite(1e-3, 1e3).filter(lambda hz: hz > 0)),
        carbon_version=draw(texts(max_size=32, storable=storable)),
        simulated=draw(st.booleans()),
        rank=draw(st.integers(0, wire.MAX_INT32)),
        world_size=draw(st.integers(1, wire.MAX_INT32)),
        job_id=draw(st.none() | texts(max_size=128, storable=storable)),
        hardware=draw(st.dictionaries(text, json_values, max_size=3)),
        compression=draw(st.dictionaries(text, json_values, max_size=3)),
        tags=draw(st.dictionaries(text, text, max_size=3)),
        warnings=draw(st.lists(text, max_size=3)),
        devices=[draw(device_specs(position, storable=storable)) for position in range(count)],
    )


@st.composite
def windows(draw: st.DrawFn, *, storable: bool = True) -> wire.WindowRecord:
    """A closed measurement window."""
    energy = st.none() | finite(0.0, wire.MAX_ENERGY_J)
    count = st.none() | st.integers(0, wire.MAX_INT64)
    return wire.WindowRecord(
        name=draw(texts(min_size=1, max_size=200, storable=storable)),
        start_s=draw(finite(0.0, 1e6)),
        duration_s=draw(finite(0.0, 1e6)),
        energy_j=draw(energy),
        energy_gpu_j=draw(energy),
        energy_cpu_j=draw(energy),
        energy_ram_j=draw(energy),
        steps=draw(st.integers(0, wire.MAX_INT64)),
        samples=draw(count),
        tokens=draw(count),
        flops=draw(st.none() | finite(0.0, wire.MAX_FLOPS)),
    )


@st.composite
def totals(
    draw: st.DrawFn, *, devices: int, duration_s: float, storable: bool = True
) -> wire.Totals:
    """Cumulative figures of a run of ``devices`` devices after ``duration_s`` seconds."""
    count = st.none() | st.integers(0, wire.MAX_INT64)
    text = texts(storable=storable)
    return wire.Totals(
        duration_s=duration_s,
        device_energy_j=draw(
            st.lists(finite(0.0, wire.MAX_ENERGY_J), min_size=devices, max_size=devices)
        ),
        steps=draw(st.integers(0, wire.MAX_INT64)),
        samples=draw(count),
        tokens=draw(count),
        flops=draw(st.none() | finite(0.0, wire.MAX_FLOPS)),
        flops_method=draw(st.none() | texts(max_size=32, storable=storable)),
        precision=draw(st.none() | texts(max_size=16, storable=storable)),
        metrics=draw(st.dictionaries(text, finite(-1e300, 1e300), max_size=3)),
        warnings=draw(st.lists(text, max_size=2)),
    )


_Row = tuple[int, float, float, float, float | None]
"""A sample: device position, end, interval, energy, utilization."""


@st.composite
def batches(
    draw: st.DrawFn,
    *,
    run_id: str | None = None,
    rank: int | None = None,
    devices: int | None = None,
    max_duration_s: float = 1e6,
    max_rows: int = 12,
    storable: bool = True,
) -> wire.Batch:
    """A batch the wire accepts: each device's samples in time order, inside the run.

    Energies, intervals and work rows vary freely within the models' bounds; the rows of
    the devices are interleaved in a drawn order (only each device's own order matters).
    """
    count = draw(st.integers(0, 4)) if devices is None else devices
    duration_s = draw(finite(0.0, max_duration_s))
    rows: list[_Row] = []
    for position in range(count):
        ends = draw(st.lists(finite(0.0, duration_s), max_size=max_rows // max(count, 1)))
        previous_s = 0.0
        for end_s in sorted(set(ends)):
            gap_s = end_s - previous_s
            share = draw(st.floats(min_value=0.0, max_value=1.0, exclude_min=True))
            interval_s = gap_s * share if gap_s * share > 0 else gap_s
            if interval_s <= 0:
                continue
            energy_j = draw(finite(0.0, wire.MAX_ENERGY_J))
            rows.append((position, end_s, interval_s, energy_j, draw(st.none() | finite(0.0, 1.0))))
            previous_s = end_s
    order = draw(st.permutations(range(len(rows)))) if rows else []
    rows = _keep_device_order([rows[i] for i in order])
    work = draw(
        st.lists(
            st.tuples(
                finite(0.0, duration_s),
                finite(0.0, 1e6),
                st.integers(0, wire.MAX_INT64),
                st.integers(0, wire.MAX_INT64),
                st.integers(0, wire.MAX_INT64),
                finite(0.0, wire.MAX_FLOPS),
            ),
            max_size=3,
        )
    )
    return wire.Batch(
        run_id=run_id if run_id is not None else draw(run_ids),
        rank=rank if rank is not None else draw(st.integers(0, wire.MAX_INT32)),
        seq=draw(st.integers(0, wire.MAX_INT32)),
        sample_device=[row[0] for row in rows],
        sample_offset_s=[row[1] for row in rows],
        sample_interval_s=[row[2] for row in rows],
        sample_energy_j=[row[3] for row in rows],
        sample_utilization=[row[4] for row in rows],
        work_offset_s=[row[0] for row in work],
        work_interval_s=[row[1] for row in work],
        work_steps=[row[2] for row in work],
        work_samples=[row[3] for row in work],
        work_tokens=[row[4] for row in work],
        work_flops=[row[5] for row in work],
        windows=draw(st.lists(windows(storable=storable), max_size=2)),
        totals=draw(totals(devices=count, duration_s=duration_s, storable=storable)),
        failed_devices=draw(
            st.dictionaries(
                st.integers(0, max(count - 1, 0)), texts(storable=storable), max_size=count
            )
        ),
        failed_at_s=draw(
            st.dictionaries(
                st.integers(0, max(count - 1, 0)), finite(0.0, duration_s), max_size=count
            )
        ),
        gaps=draw(gaps(devices=count, duration_s=duration_s, storable=storable)),
    )


@st.composite
def gaps(
    draw: st.DrawFn, *, devices: int, duration_s: float, storable: bool = True
) -> list[wire.Gap]:
    """A rank's gaps so far: each device's (or every device's) spans, one per start."""
    device = st.none() | st.integers(0, devices - 1) if devices else st.none()
    drawn = draw(
        st.lists(
            st.tuples(device, finite(0.0, duration_s), st.none() | finite(0.0, 1.0)),
            max_size=3,
            unique_by=lambda gap: (gap[0], gap[1]),
        )
    )
    return [
        wire.Gap(
            device=position,
            start_s=start_s,
            end_s=None if share is None else start_s + (duration_s - start_s) * share,
            reason=draw(texts(min_size=1, max_size=40, storable=storable)),
        )
        for position, start_s, share in drawn
    ]


def _keep_device_order(rows: list[_Row]) -> list[_Row]:
    """Rows interleaved as drawn, but each device's rows back in their time order."""
    by_device: dict[int, list[_Row]] = {}
    for row in sorted(rows, key=lambda row: row[1]):
        by_device.setdefault(row[0], []).append(row)
    return [by_device[row[0]].pop(0) for row in rows]


@st.composite
def run_ends(draw: st.DrawFn, *, run_id: str | None = None, storable: bool = True) -> wire.RunEnd:
    """An end record."""
    return wire.RunEnd(
        run_id=run_id if run_id is not None else draw(run_ids),
        rank=draw(st.integers(0, wire.MAX_INT32)),
        status=draw(st.sampled_from(["completed", "failed", "interrupted"])),
        ended_at=draw(aware_times()),
        error=draw(st.none() | texts(max_size=200, storable=storable)),
    )


def records(*, storable: bool = False) -> st.SearchStrategy[BaseModel]:
    """Any record of the wire format, each model drawn as often as the others."""
    acks = st.one_of(
        st.builds(
            wire.StartAck,
            run_id=run_ids,
            rank=st.integers(0, wire.MAX_INT32),
            created=st.booleans(),
        ),
        st.builds(
            wire.BatchAck,
            run_id=run_ids,
            rank=st.integers(0, wire.MAX_INT32),
            seq=st.integers(0, wire.MAX_INT32),
            stored=st.booleans(),
        ),
        st.builds(wire.RunStatusAck, run_id=run_ids, status=texts()),
    )
    return st.one_of(
        run_starts(storable=storable),
        batches(storable=storable),
        run_ends(storable=storable),
        st.builds(wire.Heartbeat, rank=st.integers(0, wire.MAX_INT32)),
        device_specs(0, storable=storable),
        intensities(storable=storable),
        windows(storable=storable),
        acks,
    )


# -- the store -----------------------------------------------------------------------------


def table_rows(store_url: str) -> dict[str, int]:
    """Rows of every table of the store, read in one statement."""
    tables = sorted(Base.metadata.tables.values(), key=lambda table: table.name)
    query = select(*(select(func.count()).select_from(t).scalar_subquery() for t in tables))
    with open_store(store_url).session() as session:
        counts = session.execute(query).one()
    return {table.name: int(count) for table, count in zip(tables, counts, strict=True)}


@dataclass(frozen=True)
class StoredBatches:
    """What the store holds of every run's batches.

    Attributes:
        receipts: ``(run, rank, seq)`` of every batch receipt.
        samples: Samples per ``(run, rank)`` (a sample's rank is its device's).
        work_rows: Work rows per run.
        windows: Measurement windows per run.
        sample_energy_j: Energy of the samples per ``(run, rank)``.
    """

    receipts: frozenset[tuple[str, int, int]]
    samples: dict[tuple[str, int], int]
    work_rows: dict[str, int]
    windows: dict[str, int]
    sample_energy_j: dict[tuple[str, int], float]


def stored_batches(store_url: str) -> StoredBatches:
    """Read back receipts and what batches left in the store, per run and rank."""
    with open_store(store_url).session() as session:
        receipts = frozenset(
            (run_id, rank, seq)
            for run_id, rank, seq in session.execute(
                select(BatchReceipt.run_id, BatchReceipt.rank, BatchReceipt.seq)
            )
        )
        per_rank = session.execute(
            select(Sample.run_id, Device.rank, func.count(), func.sum(Sample.energy_j))
            .join(Device, Device.id == Sample.device_id)
            .group_by(Sample.run_id, Device.rank)
        ).all()
        orphans = session.scalar(
            select(func.count())
            .select_from(Sample)
            .outerjoin(Device, Device.id == Sample.device_id)
            .where(Device.id.is_(None))
        )
        assert not orphans, f"{orphans} sample(s) belong to no device"
        work = session.execute(select(Work.run_id, func.count()).group_by(Work.run_id)).all()
        kept = session.execute(select(Window.run_id, func.count()).group_by(Window.run_id)).all()
    return StoredBatches(
        receipts=receipts,
        samples={(run_id, rank): int(count) for run_id, rank, count, _ in per_rank},
        work_rows={run_id: int(count) for run_id, count in work},
        windows={run_id: int(count) for run_id, count in kept},
        sample_energy_j={
            (run_id, rank): float(energy or 0.0) for run_id, rank, _, energy in per_rank
        },
    )


@dataclass
class SentBatches:
    """The batches a store acknowledged as stored, to compare with what it holds."""

    samples: dict[tuple[str, int], int]
    work_rows: dict[str, int]
    windows: dict[str, int]
    sample_energy_j: dict[tuple[str, int], float]
    receipts: set[tuple[str, int, int]]

    @classmethod
    def empty(cls) -> SentBatches:
        """Nothing sent yet."""
        return cls({}, {}, {}, {}, set())

    def add(self, batch: wire.Batch) -> None:
        """Count a batch the store answered ``stored`` to."""
        key = (batch.run_id, batch.rank)
        self.receipts.add((batch.run_id, batch.rank, batch.seq))
        self.samples[key] = self.samples.get(key, 0) + len(batch.sample_device)
        self.sample_energy_j[key] = self.sample_energy_j.get(key, 0.0) + math.fsum(
            batch.sample_energy_j
        )
        self.work_rows[batch.run_id] = self.work_rows.get(batch.run_id, 0) + len(
            batch.work_offset_s
        )
        self.windows[batch.run_id] = self.windows.get(batch.run_id, 0) + len(batch.windows)


def partial_batches(stored: StoredBatches, sent: SentBatches) -> list[str]:
    """How the store's batches differ from the acknowledged ones; empty when none is partial.

    Every receipt must be a batch acknowledged as stored and every acknowledged batch must
    have its receipt; per run and rank the samples (count and energy), and per run the work
    rows and windows, must be exactly those of the acknowledged batches: a batch stored in
    part, or rows without a receipt, show up as a difference.
    """
    problems = []
    if stored.receipts != sent.receipts:
        problems.append(
            f"receipts without an acknowledged batch: {sorted(stored.receipts - sent.receipts)}; "
            f"acknowledged batches without a receipt: {sorted(sent.receipts - stored.receipts)}"
        )
    for name, held, acked in (
        ("samples", stored.samples, sent.samples),
        ("work rows", stored.work_rows, sent.work_rows),
        ("windows", stored.windows, sent.windows),
    ):
        kept = {key: count for key, count in held.items() if count}
        wanted = {key: count for key, count in acked.items() if count}
        if kept != wanted:
            problems.append(f"{name} stored {kept}, acknowledged {wanted}")
    for key, energy_j in sent.sample_energy_j.items():
        held_j = stored.sample_energy_j.get(key, 0.0)
        if not math.isclose(held_j, energy_j, rel_tol=1e-9, abs_tol=1e-9):
            problems.append(f"sample energy of {key}: stored {held_j!r} J, sent {energy_j!r} J")
    return problems
