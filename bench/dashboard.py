"""Server time of the dashboard's Runs, Run detail and Compare views over a large store.

The product's target: with 1,000 runs and 10 million samples in PostgreSQL, the server
answers the Runs, Run detail (of a run of 1 million samples) and Compare views with a p95
under 300 ms each. Two figures per view, each after warm-ups, median and p95, as a ratio
to that limit (below 1 meets it):

1. page: the page's ``layout(...)`` called in-process, in a request context of the
   dashboard's Flask app (what the page costs: queries, summaries, figures);
2. HTTP: the Dash page router's callback (``POST /_dash-update-component``) to a real
   ``carbon serve`` on loopback, logged in with a read key (the page plus Dash's
   serialisation, uvicorn, a2wsgi and the login guard), timed by the client.

The data set (built once, kept between runs while its row counts match; ``--rebuild``
forces a new one) is 1,000 runs of the ``default`` team in six projects, written through
the store's write path (``start_run``, one ``write_batch`` per run carrying the run's last
seconds and its totals, ``finish_run``), with the bulk of the samples copied straight into
``sample`` by binary ``COPY``: one run of 3 devices x 333,334 one-second samples
(1,000,002 samples, 3.9 days) and 8,999,998 samples over the other 999 runs. Every sample's
energy is its power times its 1-second interval, a device's energy is the sum of its
samples, the run's energy per hour is the sum of its samples per hour, so pages show
coherent numbers. Every day the samples span has its own partition.

Run: ``python -m bench.dashboard [--reps N] [--rebuild]``; needs PostgreSQL at
``CARBON_BENCH_DASHBOARD_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/carbon_bench_dashboard``, trust auth; the
database is dropped and made again when (re)built). Results go to
``bench/results/dashboard.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from carbon import wire
from carbon.store import Store, connect_store
from carbon.store.bulk import COPY_SAMPLE_SQL
from carbon.store.context import start_run
from carbon.store.ingest import write_batch
from carbon.store.lifecycle import finish_run
from carbon.store.minutes import add_minutes
from carbon.store.models import DEFAULT_TEAM_ID
from carbon.store.partitions import day_partitions, ensure_day_partitions
from carbon.store.pricing import add_energy_hours

RESULTS = Path(__file__).parent / "results" / "dashboard.json"
BENCH_URL = os.environ.get(
    "CARBON_BENCH_DASHBOARD_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/carbon_bench_dashboard",
)
TARGET_MS = 300.0
"""The product's limit on each view's p95 server time."""

SPEC = 2
"""Version of the data set below: a cached database of another version is rebuilt."""
SEED = 20261122
RUNS = 1000
SAMPLES = 10_000_000
BIG_SECONDS = 333_334
"""The big run: 3 devices x 333,334 one-second samples (3.9 days)."""
TAIL_S = 10
"""Each run's last seconds go through ``write_batch`` with the run's totals."""
DAYS_BACK = 40
"""Runs started within this many days before the day the data set was built."""
COPY_ROWS = 500_000
"""Samples per ``COPY`` statement (and commit) of the bulk load."""

H100 = "NVIDIA H100 80GB HBM3"
CPU = "AMD EPYC 7763 64-Core Processor"
RAM = "512.0 GiB RAM"
PROJECTS = (
    ("bert-ft", "training"),
    ("resnet50", "training"),
    ("vit-distill", "training"),
    ("llama-serve", "inference"),
    ("whisper-asr", "inference"),
)
BIG_PROJECT = "llm-pretrain"
COMPRESSIONS: tuple[dict[str, Any], ...] = (
    {"precision": "fp32"},
    {"precision": "bf16"},
    {"precision": "int8", "quantization": "dynamic"},
    {"precision": "fp32", "pruning": "l1_unstructured", "sparsity": 0.5},
    {"precision": "fp16", "distillation": "student"},
)
REGIONS = ("FRA", "DEU", "USA", "SWE")
STATUSES = (("completed", 0.85), ("failed", 0.08), ("interrupted", 0.07))
FILTER_PROJECT = "bert-ft"
"""The project of the filtered Runs view."""


# -- the data set -------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedRun:
    """One run of the data set: everything needed to write it, drawn from the seed."""

    id: str
    project: str
    name: str
    kind: wire.RunKind
    status: wire.FinalStatus
    started_at: datetime
    seconds: int
    gpus: int
    region: str | None
    compression: dict[str, Any]
    tags: dict[str, str]
    accuracy: float
    seed: int

    @property
    def components(self) -> list[str]:
        """The run's devices by position: its GPUs, then a CPU and RAM."""
        return ["gpu"] * self.gpus + ["cpu", "ram"]

    @property
    def samples(self) -> int:
        """Samples stored for the run: one per device per second."""
        return len(self.components) * self.seconds


@dataclass
class DataSet:
    """The runs written, and what the views look at."""

    build_day: date
    runs: list[PlannedRun]
    big: PlannedRun
    ordinary: PlannedRun
    compared: list[PlannedRun]
    facts: dict[str, Any] = field(default_factory=dict)


def plan(build_day: date) -> DataSet:
    """The data set built on ``build_day``: the same runs for the same day, every time."""
    rng = random.Random(SEED)
    midnight = datetime.combine(build_day, day_time(), tzinfo=UTC)

    def run_id() -> str:
        return f"{rng.getrandbits(128):032x}"

    big = PlannedRun(
        id=run_id(),
        project=BIG_PROJECT,
        name="pretrain-7b",
        kind="training",
        status="completed",
        started_at=midnight - timedelta(days=6, hours=5),
        seconds=BIG_SECONDS,
        gpus=1,
        region="FRA",
        compression={"precision": "bf16"},
        tags={"owner": "alice", "stage": "pretrain"},
        accuracy=0.712,
        seed=rng.getrandbits(32),
    )
    target = SAMPLES - big.samples
    shapes = []
    for _ in range(RUNS - 1):
        project, kind = rng.choice(PROJECTS)
        gpus = 1 if rng.random() < 0.6 else 0
        shapes.append((project, kind, gpus, rng.lognormvariate(0.0, 0.6)))
    scale = target / sum((gpus + 2) * weight for *_, gpus, weight in shapes)
    seconds = [max(TAIL_S + 1, round(weight * scale)) for *_, weight in shapes]
    # The last run takes what is left; a 2-device run gives a second while that does not
    # divide among the last run's devices.
    last_devices = shapes[-1][2] + 2
    remainder = target - sum((s[2] + 2) * n for s, n in zip(shapes[:-1], seconds, strict=False))
    donors = (i for i, s in enumerate(shapes[:-1]) if s[2] == 0)
    while remainder % last_devices:
        seconds[next(donors)] += 1
        remainder -= 2
    seconds[-1] = remainder // last_devices
    runs = [big]
    statuses, weights = zip(*STATUSES, strict=True)
    for n, ((project, kind, gpus, _), length) in enumerate(zip(shapes, seconds, strict=True)):
        latest = midnight - timedelta(days=1, seconds=length)
        offset_s = rng.randrange(
            int((latest - (midnight - timedelta(days=DAYS_BACK))).total_seconds())
        )
        runs.append(
            PlannedRun(
                id=run_id(),
                project=project,
                name=f"{project.split('-')[0]}-{n:03d}",
                kind=kind,  # type: ignore[arg-type]
                status=rng.choices(statuses, weights)[0],  # type: ignore[arg-type]
                started_at=midnight - timedelta(days=DAYS_BACK) + timedelta(seconds=offset_s),
                seconds=length,
                gpus=gpus,
                region=rng.choice(REGIONS) if rng.random() < 0.9 else None,
                compression=dict(rng.choice(COMPRESSIONS)),
                tags={"owner": rng.choice(("alice", "bob", "chen", "dana"))},
                accuracy=round(rng.uniform(0.70, 0.95), 4),
                seed=rng.getrandbits(32),
            )
        )
    assert sum(run.samples for run in runs) == SAMPLES
    with_gpu = [run for run in runs[1:] if run.gpus and run.status == "completed"]
    ordinary = with_gpu[0]
    return DataSet(build_day, runs, big, ordinary, [big, ordinary, with_gpu[1]])


def _powers(run: PlannedRun) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Each device's mean power per second (W) and utilization (RAM has none)."""
    rng = np.random.default_rng(run.seed)
    ticks = np.arange(run.seconds, dtype=np.float64)
    out: list[tuple[np.ndarray, np.ndarray | None]] = []
    for component in run.components:
        base = {"gpu": (250.0, 600.0), "cpu": (60.0, 160.0), "ram": (15.0, 40.0)}[component]
        level = rng.uniform(*base)
        wave = np.sin(2 * np.pi * ticks / rng.uniform(60.0, 900.0) + rng.uniform(0, 6.28))
        power = level * (1.0 + 0.15 * wave + rng.normal(0.0, 0.05, run.seconds))
        power = np.maximum(power, 0.05 * level)
        utilization = None if component == "ram" else np.clip(power / (1.25 * level), 0.0, 1.0)
        out.append((power, utilization))
    return out


_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_HEAD = [
    ("fields", ">i2"),
    ("run_len", ">i4"),
    ("run_id", "S32"),
    ("device_len", ">i4"),
    ("device_id", ">i4"),
    ("t_len", ">i4"),
    ("t", ">i8"),
    ("offset_len", ">i4"),
    ("offset_s", ">f8"),
    ("interval_len", ">i4"),
    ("interval_s", ">f8"),
    ("energy_len", ">i4"),
    ("energy_j", ">f8"),
    ("power_len", ">i4"),
    ("power_w", ">f8"),
    ("utilization_len", ">i4"),
]
_ROW = np.dtype([*_HEAD, ("utilization", ">f8")])
_ROW_NULL = np.dtype(_HEAD)
_COPY_HEAD = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TAIL = b"\xff\xff"


def copy_rows(
    run_id: str,
    device_id: int,
    started_at: datetime,
    offsets_s: np.ndarray,
    power_w: np.ndarray,
    utilization: np.ndarray | None,
) -> bytes:
    """One device's 1-second samples as rows of a binary ``COPY`` (``SAMPLE_COLUMNS``).

    The same bytes as :meth:`carbon.store.bulk.SampleColumns.copy_binary` writes per row,
    packed by numpy a column at a time.
    """
    rows = np.empty(len(offsets_s), dtype=_ROW_NULL if utilization is None else _ROW)
    start_us = (started_at - _PG_EPOCH) // timedelta(microseconds=1)
    for name, value in (
        ("fields", 8),
        ("run_len", 32),
        ("run_id", run_id.encode()),
        ("device_len", 4),
        ("device_id", device_id),
        ("t_len", 8),
        ("t", start_us + np.round(offsets_s * 1e6).astype(np.int64)),
        ("offset_len", 8),
        ("offset_s", offsets_s),
        ("interval_len", 8),
        ("interval_s", 1.0),
        ("energy_len", 8),
        ("energy_j", power_w),  # 1-second intervals: energy (J) = mean power (W) x 1 s
        ("power_len", 8),
        ("power_w", power_w),
        ("utilization_len", -1 if utilization is None else 8),
    ):
        rows[name] = value
    if utilization is not None:
        rows["utilization"] = utilization
    return rows.tobytes()


def _hour_rows(run: PlannedRun, energy_j: np.ndarray) -> list[dict[str, Any]]:
    """``run_energy_hour`` rows of 1-second samples ending at 1..n s (summed over devices)."""
    first = int(run.started_at.timestamp())
    hours = (first + np.arange(len(energy_j))) // 3600  # each interval's start
    keys, index = np.unique(hours, return_inverse=True)
    sums = np.bincount(index, weights=energy_j)
    return [
        {
            "run_id": run.id,
            "rank": 0,
            "hour_start": datetime.fromtimestamp(int(key) * 3600, UTC),
            "energy_j": float(value),
        }
        for key, value in zip(keys, sums, strict=True)
        if value
    ]


def _minute_rows(
    run: PlannedRun, device_id: int, power_w: np.ndarray, utilization: np.ndarray | None
) -> list[dict[str, Any]]:
    """``sample_minute`` rows of one device's 1-second samples ending at 1..n s.

    The same sums :func:`carbon.store.minutes.minute_rows` makes for a batch, per minute of
    each sample's end, so the bulk-loaded samples are in their minutes as ingest puts them.
    """
    minute0 = run.started_at.replace(second=0, microsecond=0)
    into_minute_s = (run.started_at - minute0).total_seconds()
    ends_s = np.arange(1, len(power_w) + 1, dtype=np.float64)
    keys, index = np.unique(np.floor((into_minute_s + ends_s) / 60.0), return_inverse=True)
    counts = np.bincount(index)
    lowest = np.full(len(keys), np.inf)
    highest = np.full(len(keys), -np.inf)
    np.minimum.at(lowest, index, power_w)
    np.maximum.at(highest, index, power_w)
    used = utilization is not None
    util_sums = np.bincount(index, weights=utilization) if used else np.zeros(len(keys))
    return [
        {
            "device_id": device_id,
            "minute": minute0 + timedelta(minutes=int(key)),
            "run_id": run.id,
            "energy_j": float(energy_j),
            "interval_s": float(count),
            "samples": int(count),
            "power_min_w": float(low),
            "power_max_w": float(high),
            "utilization_sum": float(util_sum),
            "utilization_count": int(count) if used else 0,
        }
        for key, energy_j, count, low, high, util_sum in zip(
            keys,
            np.bincount(index, weights=power_w),
            counts,
            lowest,
            highest,
            util_sums,
            strict=True,
        )
    ]


def _start(run: PlannedRun) -> wire.RunStart:
    from carbon.accounting.intensity import lookup_country_intensity

    intensity = None
    if run.region is not None:
        factor = lookup_country_intensity(run.region)
        intensity = wire.IntensityInfo(
            intensity_g_per_kwh=factor.intensity_g_per_kwh,
            source=factor.source,
            zone=factor.zone,
            year=factor.year,
            factor_type=factor.factor_type,
        )
    gpu = {
        "component": "gpu",
        "name": H100,
        "method": "nvml_counter",
        "provenance": "measured",
        "detail": "NVML total energy counter",
        "power_limit_w": 700.0,
        "memory_bytes": 80 * 2**30,
    }
    others = [
        {
            "component": "cpu",
            "name": CPU,
            "method": "tdp_estimate",
            "provenance": "estimated",
            "detail": "utilization x TDP (280 W)",
        },
        {
            "component": "ram",
            "name": RAM,
            "method": "ram_estimate",
            "provenance": "estimated",
            "detail": "0.375 W per GiB",
        },
    ]
    specs = [{**gpu, "index": i} for i in range(run.gpus)] + others
    return wire.RunStart(
        id=run.id,
        project=run.project,
        name=run.name,
        kind=run.kind,
        started_at=run.started_at,
        host=f"node-{int(run.id[:4], 16) % 8 + 1:02d}",
        region=run.region,
        pue=1.2 if run.region is not None else 1.0,
        pue_source="bench" if run.region is not None else None,
        intensity=intensity,
        sample_hz=1,
        carbon_version="bench",
        compression=run.compression,
        tags=run.tags,
        warnings=[] if run.region else ["no region set: CO2e is unknown"],
        devices=[wire.DeviceSpec(position=p, **spec) for p, spec in enumerate(specs)],
    )


def _tail_batch(
    run: PlannedRun, powers: list[tuple[np.ndarray, np.ndarray | None]], seq: int
) -> wire.Batch:
    """The run's last :data:`TAIL_S` seconds, with the run's totals (sums of all samples)."""
    first = run.seconds - TAIL_S
    ends = [float(s) for s in range(first + 1, run.seconds + 1)]
    devices: list[int] = []
    offsets: list[float] = []
    energies: list[float] = []
    utilizations: list[float | None] = []
    for position, (power, utilization) in enumerate(powers):
        devices += [position] * TAIL_S
        offsets += ends
        energies += power[first:].tolist()
        utilizations += [None] * TAIL_S if utilization is None else utilization[first:].tolist()
    precision = str(run.compression["precision"])
    steps = run.seconds * 4
    items = steps * (32 if run.kind == "training" else 8)
    peak = {"fp32": 67e12, "bf16": 989e12, "fp16": 989e12, "int8": 1979e12}[precision]
    flops = 0.35 * peak * run.gpus * run.seconds if run.gpus else 2.0e12 * run.seconds
    return wire.Batch(
        run_id=run.id,
        seq=seq,
        sample_device=devices,
        sample_offset_s=offsets,
        sample_interval_s=[1.0] * len(devices),
        sample_energy_j=energies,
        sample_utilization=utilizations,
        totals=wire.Totals(
            duration_s=float(run.seconds),
            device_energy_j=[math.fsum(power) for power, _ in powers],
            steps=steps,
            samples=items,
            tokens=items * 256 if run.project == "llama-serve" else None,
            flops=flops,
            flops_method="analytic",
            precision=precision,
            metrics={"accuracy": run.accuracy},
        ),
    )


class _Copier:
    """Binary ``COPY`` of sample rows on its own connection, in a background thread."""

    def __init__(self, url: str) -> None:
        import psycopg

        conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
        self.connection = psycopg.connect(conninfo)
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending: Future[None] | None = None
        self.parts: list[bytes] = []
        self.rows = 0

    def add(self, data: bytes, rows: int) -> None:
        self.parts.append(data)
        self.rows += rows
        if self.rows >= COPY_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.pending is not None:
            self.pending.result()
            self.pending = None
        if self.parts:
            self.pending = self.pool.submit(self._copy, b"".join(self.parts))
            self.parts, self.rows = [], 0

    def _copy(self, stream: bytes) -> None:
        with self.connection.cursor() as cursor, cursor.copy(COPY_SAMPLE_SQL) as copy:
            copy.write(_COPY_HEAD + stream + _COPY_TAIL)
        self.connection.commit()

    def close(self) -> None:
        self.flush()
        if self.pending is not None:
            self.pending.result()
        self.pool.shutdown()
        self.connection.close()


def _admin_engine() -> Any:
    return create_engine(make_url(BENCH_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")


def _database_name() -> str:
    name = make_url(BENCH_URL).database
    assert name, "CARBON_BENCH_DASHBOARD_URL names no database"
    return name


def cached(url: str) -> DataSet | None:
    """The data set already in the database, when it is complete and of this version."""
    try:
        engine = create_engine(url)
        with engine.connect() as connection:
            note = connection.execute(
                text(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                    "WHERE datname = current_database()"
                )
            ).scalar()
            facts = json.loads(note or "{}")
            if facts.get("spec") != SPEC:
                return None
            runs = connection.execute(
                text("SELECT count(*) FROM run WHERE team_id = :team"), {"team": DEFAULT_TEAM_ID}
            ).scalar()
            samples = connection.execute(text("SELECT count(*) FROM sample")).scalar()
        engine.dispose()
    except Exception:  # no database, no schema: build it
        return None
    if runs != RUNS or samples != SAMPLES:
        return None
    data = plan(date.fromisoformat(facts["build_day"]))
    data.facts = facts
    return data


def build(url: str) -> DataSet:
    """Drop and make the database, migrate it, and write the data set; returns it."""
    began = time.perf_counter()
    name = _database_name()
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    store = connect_store(url, migrate=True)
    data = plan(datetime.now(UTC).date())
    with store.transaction() as connection:
        # A partition for every day from the first run's start to a few days ahead, so
        # no sample waits in the default partition and the server's maintenance (today's
        # partitions) finds nothing to move.
        made = ensure_day_partitions(
            connection, today=data.build_day, days_behind=DAYS_BACK + 1, days_ahead=3
        )
    copier = _Copier(url)
    written = 0
    try:
        for n, run in enumerate(data.runs):
            _write_run(store, copier, run)
            written += run.samples
            if n % 100 == 99:
                print(
                    f"  {n + 1:,} runs, {written:,} samples, {time.perf_counter() - began:.0f} s",
                    flush=True,
                )
    finally:
        copier.close()
    print("  VACUUM ANALYZE", flush=True)
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    build_s = time.perf_counter() - began
    data.facts = {
        "spec": SPEC,
        "build_day": data.build_day.isoformat(),
        "build_s": round(build_s, 1),
        "day_partitions": len(made),
    }
    with admin.connect() as connection:
        note = json.dumps(data.facts).replace("'", "''")
        connection.execute(text(f"COMMENT ON DATABASE \"{name}\" IS '{note}'"))
    admin.dispose()
    store.dispose()
    return data


def _write_run(store: Store, copier: _Copier, run: PlannedRun) -> None:
    """Start the run, copy all but its last seconds, write those as a batch, end it."""
    with store.session() as session:
        context = start_run(session, _start(run), team_id=DEFAULT_TEAM_ID)
    assert context is not None
    powers = _powers(run)
    bulk = run.seconds - TAIL_S
    offsets = np.arange(1, bulk + 1, dtype=np.float64)
    for device_id, (power, utilization) in zip(context.device_ids, powers, strict=True):
        copier.add(
            copy_rows(
                run.id,
                device_id,
                run.started_at,
                offsets,
                power[:bulk],
                None if utilization is None else utilization[:bulk],
            ),
            bulk,
        )
    bulk_energy = np.sum([power[:bulk] for power, _ in powers], axis=0)
    with store.transaction() as connection:
        add_energy_hours(connection, _hour_rows(run, bulk_energy))
        for device_id, (power, utilization) in zip(context.device_ids, powers, strict=True):
            add_minutes(
                connection,
                _minute_rows(
                    run,
                    device_id,
                    power[:bulk],
                    None if utilization is None else utilization[:bulk],
                ),
            )
        write_batch(connection, context, _tail_batch(run, powers, seq=bulk // 60))
    end = wire.RunEnd(
        run_id=run.id,
        status=run.status,
        ended_at=run.started_at + timedelta(seconds=run.seconds),
        error="CUDA error: out of memory" if run.status == "failed" else None,
    )
    with store.session() as session:
        finish_run(session, end, team_id=DEFAULT_TEAM_ID)


def describe(url: str, data: DataSet) -> dict[str, Any]:
    """Row counts of the data set as stored, for the results."""
    engine = create_engine(url)
    with engine.connect() as connection:

        def count(sql: str, **params: Any) -> int:
            return int(connection.execute(text(sql), params).scalar() or 0)

        facts = {
            "runs": count("SELECT count(*) FROM run WHERE team_id = :t", t=DEFAULT_TEAM_ID),
            "projects": count("SELECT count(*) FROM project WHERE team_id = :t", t=DEFAULT_TEAM_ID),
            "devices": count("SELECT count(*) FROM device"),
            "samples": count("SELECT count(*) FROM sample"),
            "samples_in_default_partition": count("SELECT count(*) FROM sample_default"),
            "run_energy_hour_rows": count("SELECT count(*) FROM run_energy_hour"),
            "big_run_samples": count(
                "SELECT count(*) FROM sample WHERE run_id = :r", r=data.big.id
            ),
            "big_run_days": round(data.big.seconds / 86400, 2),
            "ordinary_run_samples": count(
                "SELECT count(*) FROM sample WHERE run_id = :r", r=data.ordinary.id
            ),
            "day_partitions": len(day_partitions(connection)),
            "database_size_mb": round(count("SELECT pg_database_size(current_database())") / 2**20),
        }
    engine.dispose()
    return facts


# -- timing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    """A view to time: its address, the page's layout arguments and an id it must show."""

    name: str
    pathname: str
    search: str
    kwargs: dict[str, str]
    expect: str


def views(data: DataSet) -> list[View]:
    """The views of the target: Runs (all, one project), Run detail (1M, ordinary), Compare."""
    compared = ",".join(run.id for run in data.compared)
    return [
        View("runs", "/runs", "", {}, "runs-table"),
        View(
            f"runs ?project={FILTER_PROJECT}",
            "/runs",
            f"?project={FILTER_PROJECT}",
            {"project": FILTER_PROJECT},
            "runs-table",
        ),
        View(
            "run detail, 1M samples",
            f"/run/{data.big.id}",
            "",
            {"run_id": data.big.id},
            "run-power",
        ),
        View(
            "run detail, ordinary",
            f"/run/{data.ordinary.id}",
            "",
            {"run_id": data.ordinary.id},
            "run-power",
        ),
        View(
            "compare 3 (with the 1M run)",
            "/compare",
            f"?runs={compared}",
            {"runs": compared},
            "compare-table",
        ),
    ]


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _figures(times_s: list[float]) -> dict[str, float]:
    median_ms = 1000 * statistics.median(times_s)
    p95_ms = 1000 * _percentile(times_s, 95)
    return {
        "median_ms": round(median_ms, 1),
        "p95_ms": round(p95_ms, 1),
        "ratio_to_target": round(p95_ms / TARGET_MS, 3),
    }


def _page_calls(url: str, data: DataSet) -> tuple[Store, dict[str, Callable[[], Any]]]:
    """Per view, a call of its page's ``layout(...)`` in a request context of the dashboard.

    The dashboard is built as ``carbon serve`` builds it, in local mode; a bare request
    context runs no guard, so the call sets the viewer the guard would.
    """
    import dash
    import flask
    from plotly.utils import PlotlyJSONEncoder

    from carbon.server.app import freeze_startup_objects
    from dashboard.app import create_dashboard
    from dashboard.auth import LOCAL_VIEWER
    from dashboard.data import VIEWER_KEY

    store = connect_store(url)
    app = create_dashboard(store, require_auth=False, secret="x" * 40)
    freeze_startup_objects()  # as `carbon serve` does once its app is built
    layouts = {
        page.get("path_template") or page["path"]: page["layout"]
        for page in dash.page_registry.values()
    }
    routes = {"runs": "/runs", "run": "/run/<run_id>", "compare": "/compare"}
    calls: dict[str, Callable[[], Any]] = {}
    for view in views(data):
        kind = "run" if view.pathname.startswith("/run/") else view.pathname.strip("/")
        layout = layouts[routes[kind]]

        def call(view: View = view, layout: Any = layout) -> Any:
            with app.server.test_request_context(view.pathname + view.search):
                setattr(flask.g, VIEWER_KEY, LOCAL_VIEWER)
                return layout(**view.kwargs)

        if f'"{view.expect}"' not in json.dumps(call(), cls=PlotlyJSONEncoder):
            raise SystemExit(f"page {view.name}: no {view.expect!r} in its layout")
        calls[view.name] = call
    return store, calls


def _router_body(dependencies: list[dict[str, Any]], view: View) -> dict[str, Any]:
    """The body Dash's renderer posts when the page router's location changes."""
    router = next(d for d in dependencies if "_pages_content.children" in d["output"])
    outputs = []
    for part in router["output"].strip(".").split("..."):
        component, _, prop = part.rpartition(".")
        outputs.append({"id": component, "property": prop})
    values = {"pathname": view.pathname, "search": view.search, "hash": ""}
    inputs = [
        {
            "id": spec["id"],
            "property": spec["property"],
            "value": values.get(spec["property"]) if spec["id"] == "_pages_location" else None,
        }
        for spec in router["inputs"]
    ]
    return {
        "output": router["output"],
        "outputs": outputs,
        "inputs": inputs,
        "changedPropIds": ["_pages_location.pathname", "_pages_location.search"],
        "state": [],
    }


def _read_key(url: str) -> str:
    """A ``read`` key of the ``default`` team, whose runs the data set holds."""
    from carbon.store.models import Team
    from carbon.store.teams import create_key

    store = connect_store(url)
    with store.session() as session:
        team = session.get(Team, DEFAULT_TEAM_ID)
        assert team is not None
        _, key = create_key(session, team, f"bench-dashboard-{uuid.uuid4().hex[:8]}", "read")
    store.dispose()
    return key


def _http_calls(
    client: httpx.Client, key: str, data: DataSet
) -> tuple[dict[str, Callable[[], Any]], dict[str, list[int]]]:
    """Log in, then per view a call of the page router's callback, and its response sizes."""
    response = client.post("/login", data={"key": key, "next": "/"})
    if response.status_code != 302 or "carbon_session" not in client.cookies:
        raise SystemExit(f"login refused: {response.status_code} {response.text[:200]}")
    client.get("/runs").raise_for_status()  # the page shell, as a browser loads it first
    dependencies = client.get("/_dash-dependencies").json()
    calls: dict[str, Callable[[], Any]] = {}
    sizes: dict[str, list[int]] = {}
    for view in views(data):
        body = _router_body(dependencies, view)
        sizes[view.name] = []

        def call(body: dict[str, Any] = body, sizes: list[int] = sizes[view.name]) -> None:
            response = client.post("/_dash-update-component", json=body)
            response.raise_for_status()
            sizes.append(len(response.content))

        shown = client.post("/_dash-update-component", json=body)
        if shown.status_code != 200 or f'"{view.expect}"' not in shown.text:
            raise SystemExit(f"HTTP {view.name}: {shown.status_code}, no {view.expect!r}")
        calls[view.name] = call
    return calls, sizes


def time_views(url: str, data: DataSet, reps: int, warmups: int) -> dict[str, Any]:
    """Every view in-process and over HTTP, interleaved so both see the same machine.

    Each round calls every view once each way, one after the other; the machine is shared
    (two cores, PostgreSQL included), so whatever else runs meanwhile falls on all views
    and both ways alike rather than on whichever was being timed then.
    """
    from bench._server import serve

    key = _read_key(url)
    store, pages = _page_calls(url, data)
    with (
        serve(url, role="read") as server,
        httpx.Client(base_url=server.url, timeout=120) as client,
    ):
        requests, sizes = _http_calls(client, key, data)
        ways = {"page": pages, "http": requests}
        times_s: dict[str, dict[str, list[float]]] = {how: {} for how in ways}
        for round_ in range(warmups + reps):
            for view in views(data):
                for how, calls in ways.items():
                    begin = time.perf_counter()
                    calls[view.name]()
                    elapsed_s = time.perf_counter() - begin
                    if round_ >= warmups:
                        times_s[how].setdefault(view.name, []).append(elapsed_s)
            if round_ >= warmups and (round_ - warmups) % 10 == 9:
                print(f"  {round_ - warmups + 1} of {reps} rounds", flush=True)
    store.dispose()
    results: dict[str, Any] = {how: {} for how in ways}
    for how in ways:
        for name, values in times_s[how].items():
            results[how][name] = _figures(values)
    for name, counts in sizes.items():
        results["http"][name]["response_kb"] = round(statistics.median(counts) / 1024)
    return results


def _machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs ({model}), Python {platform.python_version()}"
    )


def _postgres_version(url: str) -> str:
    engine = create_engine(url)
    with engine.connect() as connection:
        version = str(connection.execute(text("SHOW server_version")).scalar())
    engine.dispose()
    return version


def _rows(results: dict[str, Any]) -> Iterator[str]:
    yield f"{'view':<30} {'how':<5} {'median ms':>10} {'p95 ms':>8} {'p95 / 300 ms':>13}"
    for how in ("page", "http"):
        for name, figures in results[how].items():
            yield (
                f"{name:<30} {how:<5} {figures['median_ms']:>10.1f} {figures['p95_ms']:>8.1f} "
                f"{figures['ratio_to_target']:>13.2f}"
            )


def main() -> None:
    """Build (or reuse) the data set, time every view both ways, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30, help="timed repetitions per view")
    parser.add_argument("--warmups", type=int, default=3, help="untimed calls first")
    parser.add_argument("--rebuild", action="store_true", help="build the data set anew")
    parser.add_argument("--build-only", action="store_true", help="build, time nothing")
    args = parser.parse_args()

    data = None if args.rebuild else cached(BENCH_URL)
    reused = data is not None
    if data is None:
        print(f"building the data set ({RUNS:,} runs, {SAMPLES:,} samples)", flush=True)
        data = build(BENCH_URL)
        print(f"built in {data.facts['build_s']:.1f} s", flush=True)
    else:
        print(
            f"reusing the data set built {data.facts['build_day']} "
            f"(in {data.facts['build_s']:.1f} s); --rebuild to make it again",
            flush=True,
        )
    stored = describe(BENCH_URL, data)
    print("  " + ", ".join(f"{k} {v:,}" for k, v in stored.items()), flush=True)
    if args.build_only:
        return
    load_before = os.getloadavg()
    results = time_views(BENCH_URL, data, args.reps, args.warmups)
    load_after = os.getloadavg()
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": _machine(),
        "postgresql": _postgres_version(BENCH_URL),
        "data_set": {
            **stored,
            "built": data.facts["build_day"],
            "build_s": data.facts["build_s"],
            "reused": reused,
        },
        "load_average_1min": {
            "before": round(load_before[0], 2),
            "after": round(load_after[0], 2),
        },
        "target_p95_ms": TARGET_MS,
        "reps": args.reps,
        "warmups": args.warmups,
        "views": {view.name: view.pathname + view.search for view in views(data)},
        **results,
    }
    print()
    for row in _rows(results):
        print(row)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
