"""Time of the yearly sustainability report over 10,000 runs, and the proof it reads no samples.

The product's target: a yearly report over 10,000 runs is built and rendered as HTML in
under 10 s, and it does not read raw samples. Per store, in a process of its own (so its
first report pays for its imports and first connection, as ``carbon report`` does):

1. ``build_report(session, ReportRequest(since=2025-12-01, until=2026-11-30))``: the
   report document (every section, the 10,000-run appendix included);
2. ``render_report(report, "html")``: the HTML file; its total with (1) over 10 s is the
   figure (below 1 meets the target), for the slowest of the repetitions;
3. every SQL statement the engine sends while (1) and (2) run, counted by a
   ``before_cursor_execute`` listener: those that name the ``sample`` table (or one of
   its partitions) must be none;
4. the same report rendered as JSON, CSV and Markdown (and PDF with ``--pdf``), timed and
   sized beside it, with no limit of their own; the process's peak RSS over the rounds
   (every format but PDF) and the Python heap's peak while one report is built and
   rendered as HTML (``tracemalloc``, in an untimed pass).

The data set (built once per store and kept while its version, schema revision and row
counts match; ``--rebuild`` makes it again) is 10,000 runs started over one year
(2025-12-01 to 2026-11-30), in 8 projects of 2 teams, training and inference, on NVIDIA
H100, A100 80GB and L4 GPUs (1 to 8 per run, with a CPU and RAM), in 9 regions priced with
carbon's static factors (countries, US states, cloud regions), one project and one zone
with a market-based factor, one zone with an hourly intensity series, FLOPs and precision
on every run (so MFU and J/FLOP exist), compression settings and accuracy on inference
runs, and one-second samples of every device (a few hundred per run) that the report must
not read. Every run goes through the store's write path: ``start_run``, one
``write_batch`` with all its samples and totals, ``finish_run``.

Run: ``python -m bench.report [--quick] [--store sqlite|postgresql|both] [--pdf]
[--reps N] [--rebuild] [--build-only] [--profile DIR]``. SQLite: a file at
``CARBON_BENCH_REPORT_SQLITE`` (default ``~/.cache/carbon-bench/report.sqlite``);
PostgreSQL: ``CARBON_BENCH_REPORT_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/carbon_bench_report``, trust auth; the
database is dropped and made again when (re)built). ``--quick`` uses 1,000 runs in their
own file and database (``report-quick.sqlite``, ``carbon_bench_report_quick``). Results of
a full run go to ``bench/results/report.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import random
import re
import resource
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from carbon import wire
from carbon.store import Store, connect_store
from carbon.store.context import start_run
from carbon.store.ingest import write_batch
from carbon.store.lifecycle import finish_run
from carbon.store.migrate import HEAD_REVISION
from carbon.store.models import DEFAULT_TEAM_ID

RESULTS = Path(__file__).parent / "results" / "report.json"
PG_URL = os.environ.get(
    "CARBON_BENCH_REPORT_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/carbon_bench_report",
)
SQLITE_PATH = Path(
    os.environ.get(
        "CARBON_BENCH_REPORT_SQLITE",
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "carbon-bench"
        / "report.sqlite",
    )
)
LIMIT_S = 10.0
"""The product's limit on building the yearly report and rendering it as HTML."""

SPEC = 1
"""Version of the data set below: a cached store of another version is rebuilt."""
SEED = 20261201
RUNS = 10_000
QUICK_RUNS = 1_000
FIRST_DAY = date(2025, 12, 1)
LAST_DAY = date(2026, 11, 30)
"""The report's period: one year of UTC days, both ends included; every run starts in it."""

H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-80GB"
L4 = "NVIDIA L4"
CPU = "AMD EPYC 7763 64-Core Processor"
RAM = "512.0 GiB RAM"
GPU_POWER_W = {H100: (300.0, 650.0), A100: (180.0, 380.0), L4: (35.0, 70.0)}
"""Range of a GPU's mean power while a run goes, per model (drawn per device)."""
GPU_LIMIT_W = {H100: 700.0, A100: 400.0, L4: 72.0}
GPU_MEMORY_GIB = {H100: 80, A100: 80, L4: 24}
PEAK_FLOPS_PER_S = {
    H100: {"bf16": 989.4e12, "fp16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12},
    A100: {"bf16": 312e12, "fp16": 312e12, "tf32": 156e12, "fp32": 19.5e12},
    L4: {"bf16": 121e12, "fp16": 121e12, "tf32": 60e12, "fp32": 30.3e12, "int8": 242.5e12},
}
"""Dense peaks as ``carbon.accounting.catalog`` holds them: FLOPs are drawn at an MFU."""

SECOND_TEAM = "vision"
MARKET_PROJECT = ("llama-serve", 0.6)
"""A project whose energy is covered by a renewable share, from 2026-03-01."""
MARKET_ZONE = ("FRA", 20.0)
"""A zone with a supplier's factor (g/kWh) for the default team, the whole year."""
HOURLY_ZONE = "DEU"
SERIES_CHUNK_HOURS = 744
"""The zone with an hourly intensity series (so runs there are priced hour by hour)."""
NO_REGION = 0.04
"""Share of runs without a region (no CO2e)."""
STATUSES = (("completed", 0.88), ("failed", 0.07), ("interrupted", 0.05))
TRAINING_PRECISIONS = (("bf16", 0.6), ("tf32", 0.2), ("fp16", 0.1), ("fp32", 0.1))


@dataclass(frozen=True)
class Setting:
    """An inference compression setting and what it does to power, throughput, accuracy."""

    compression: dict[str, Any]
    power_factor: float
    throughput_factor: float
    accuracy_delta: float


INFERENCE_SETTINGS = (
    Setting({"precision": "fp16"}, 1.0, 1.0, 0.0),
    Setting({"precision": "bf16"}, 1.0, 1.0, -0.001),
    Setting({"precision": "int8", "quantization": "dynamic"}, 0.85, 1.6, -0.004),
    Setting({"precision": "fp16", "pruning": "l1_unstructured", "sparsity": 0.5}, 0.9, 1.3, -0.02),
    Setting({"precision": "fp16", "distillation": "student"}, 0.8, 2.0, -0.015),
)


@dataclass(frozen=True)
class Project:
    """A project of the data set: its team, kind, hardware, regions and share of runs.

    Attributes:
        hardware: GPU models it runs on, each with the GPU counts a run may have.
        regions: Where its runs are (one drawn per run).
        share: Its share of the data set's runs.
        items_per_gpu_s: Training samples, or inferences, per GPU-second (before a
            compression setting's throughput factor).
        flops_per_item: FLOPs of one inference; training FLOPs come from the run's MFU.
        accuracy: The uncompressed setting's accuracy (inference projects).
    """

    name: str
    team: str
    kind: wire.RunKind
    hardware: tuple[tuple[str, tuple[int, ...]], ...]
    regions: tuple[str, ...]
    share: float
    items_per_gpu_s: float
    flops_per_item: float
    accuracy: float


PROJECTS = (
    Project("llm-pretrain", "default", "training", ((H100, (4, 8)),), ("gcp:us-central1", "US-TX"),
            0.08, 64.0, 0.0, 0.0),
    Project("bert-ft", "default", "training", ((A100, (1, 2, 4)), (H100, (1, 2))),
            ("FRA", "DEU"), 0.16, 512.0, 0.0, 0.0),
    Project("rec-ranker", "default", "training", ((A100, (1, 2)),), ("US-VA", "aws:us-east-1"),
            0.10, 4096.0, 0.0, 0.0),
    Project("llama-serve", "default", "inference", ((H100, (1, 2)), (L4, (1,))),
            ("DEU", "gcp:europe-west4", "FRA"), 0.22, 40.0, 2.5e12, 0.712),
    Project("whisper-asr", "default", "inference", ((L4, (1,)), (A100, (1,))),
            ("US-CA", "SWE"), 0.14, 25.0, 1.2e12, 0.921),
    Project("resnet50", SECOND_TEAM, "training", ((A100, (1, 2, 4)), (L4, (1,))),
            ("DEU", "SWE"), 0.12, 1024.0, 0.0, 0.0),
    Project("vit-distill", SECOND_TEAM, "training", ((H100, (1, 2)),),
            ("FRA", "gcp:europe-west4"), 0.08, 768.0, 0.0, 0.0),
    Project("sd-serve", SECOND_TEAM, "inference", ((L4, (1, 2)), (A100, (1,))),
            ("US-CA", "DEU", "US-TX"), 0.10, 2.0, 1.0e13, 0.874),
)  # fmt: skip
SECONDS_MEDIAN = 120.0
SECONDS_RANGE = (30, 600)
"""Runs last 30 s to 10 min, so each has a few hundred one-second samples per device."""


# -- the data set -------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedRun:
    """One run of the data set: everything needed to write it, drawn from the seed."""

    id: str
    project: Project
    name: str
    status: wire.FinalStatus
    started_at: datetime
    seconds: int
    gpu: str
    gpus: int
    region: str | None
    setting: Setting
    mfu: float
    seed: int

    @property
    def components(self) -> list[str]:
        """The run's devices by position: its GPUs, then a CPU and RAM."""
        return ["gpu"] * self.gpus + ["cpu", "ram"]

    @property
    def samples(self) -> int:
        """Samples stored for the run: one per device per second."""
        return len(self.components) * self.seconds


def plan(runs: int) -> list[PlannedRun]:
    """The data set's runs, oldest first: the same runs for the same count, every time."""
    rng = random.Random(SEED)
    period_s = int((LAST_DAY - FIRST_DAY).days + 1) * 86400
    first = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC)
    statuses, status_weights = zip(*STATUSES, strict=True)
    precisions, precision_weights = zip(*TRAINING_PRECISIONS, strict=True)
    planned = []
    for n in range(runs):
        project = rng.choices(PROJECTS, [p.share for p in PROJECTS])[0]
        gpu, counts = rng.choice(project.hardware)
        low, high = SECONDS_RANGE
        seconds = min(high, max(low, round(rng.lognormvariate(math.log(SECONDS_MEDIAN), 0.6))))
        if project.kind == "inference":
            setting = rng.choice(INFERENCE_SETTINGS)
        else:
            precision = rng.choices(precisions, precision_weights)[0]
            setting = Setting({"precision": precision}, 1.0, 1.0, 0.0)
        planned.append(
            PlannedRun(
                id=f"{rng.getrandbits(128):032x}",
                project=project,
                name=f"{project.name.split('-')[0]}-{n:05d}",
                status=rng.choices(statuses, status_weights)[0],
                started_at=first + timedelta(seconds=rng.randrange(period_s - high)),
                seconds=seconds,
                gpu=gpu,
                gpus=rng.choice(counts),
                region=None if rng.random() < NO_REGION else rng.choice(project.regions),
                setting=setting,
                mfu=rng.uniform(0.12, 0.55),
                seed=rng.getrandbits(32),
            )
        )
    return sorted(planned, key=lambda run: run.started_at)


def _powers(run: PlannedRun) -> list[np.ndarray]:
    """Each device's mean power in each second of the run (W)."""
    rng = np.random.default_rng(run.seed)
    ticks = np.arange(run.seconds, dtype=np.float64)
    out = []
    for component in run.components:
        low, high = {"gpu": GPU_POWER_W[run.gpu], "cpu": (60.0, 160.0), "ram": (15.0, 40.0)}[
            component
        ]
        level = rng.uniform(low, high) * (run.setting.power_factor if component == "gpu" else 1)
        wave = np.sin(2 * np.pi * ticks / rng.uniform(20.0, 120.0) + rng.uniform(0, 6.28))
        power = level * (1.0 + 0.1 * wave + rng.normal(0.0, 0.04, run.seconds))
        out.append(np.maximum(power, 0.05 * level))
    return out


def _start(run: PlannedRun, pricing: dict[str, Any]) -> wire.RunStart:
    """The run's start record, priced as the tracker prices it (``resolve``)."""
    intensity = None
    region, pue, pue_source = None, 1.0, None
    warnings = ["no region set (CARBON_REGION or region=...): CO2e is unknown"]
    if run.region is not None:
        priced = pricing[run.region]
        factor = priced.intensity
        region, pue, pue_source = priced.region.code, priced.pue.pue, priced.pue.source
        intensity = wire.IntensityInfo(
            intensity_g_per_kwh=factor.intensity_g_per_kwh,
            source=factor.source,
            zone=factor.zone,
            year=factor.year,
            factor_type=factor.factor_type,
        )
        warnings = []
    gpu = {
        "component": "gpu",
        "name": run.gpu,
        "method": "nvml_counter",
        "provenance": "measured",
        "detail": "NVML total energy counter",
        "power_limit_w": GPU_LIMIT_W[run.gpu],
        "memory_bytes": GPU_MEMORY_GIB[run.gpu] * 2**30,
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
        project=run.project.name,
        name=run.name,
        kind=run.project.kind,
        started_at=run.started_at,
        host=f"node-{int(run.id[:4], 16) % 16 + 1:02d}",
        region=region,
        pue=pue,
        pue_source=pue_source,
        intensity=intensity,
        sample_hz=1,
        carbon_version="bench",
        compression=dict(run.setting.compression),
        tags={"owner": ("alice", "bob", "chen", "dana")[int(run.id[-2:], 16) % 4]},
        warnings=warnings,
        devices=[wire.DeviceSpec(position=p, **spec) for p, spec in enumerate(specs)],
    )


def _batch(run: PlannedRun, powers: list[np.ndarray]) -> wire.Batch:
    """All the run's one-second samples, its work and its totals, as one batch."""
    ends_s = np.arange(1, run.seconds + 1, dtype=np.float64).tolist()
    devices: list[int] = []
    offsets_s: list[float] = []
    energies_j: list[float] = []
    utilizations: list[float | None] = []
    for position, (component, power) in enumerate(zip(run.components, powers, strict=True)):
        devices += [position] * run.seconds
        offsets_s += ends_s
        energies_j += power.tolist()  # 1-second intervals: energy (J) = mean power (W) x 1 s
        if component == "ram":
            utilizations += [None] * run.seconds
        else:
            utilizations += np.clip(power / power.max(), 0.0, 1.0).tolist()
    project = run.project
    precision = str(run.setting.compression["precision"])
    gpu_seconds = run.gpus * run.seconds
    if project.kind == "training":
        items = round(project.items_per_gpu_s * gpu_seconds)
        flops = run.mfu * PEAK_FLOPS_PER_S[run.gpu][precision] * gpu_seconds
        metrics = {"val_loss": round(2.5 - 1.5 * run.mfu, 4)}
    else:
        items = round(project.items_per_gpu_s * run.setting.throughput_factor * gpu_seconds)
        flops = project.flops_per_item * items
        noise = random.Random(run.seed).gauss(0.0, 0.002)
        metrics = {"accuracy": round(project.accuracy + run.setting.accuracy_delta + noise, 4)}
    steps = run.seconds * 4
    tokens = items * 180 if project.name == "llama-serve" else None
    return wire.Batch(
        run_id=run.id,
        seq=0,
        sample_device=devices,
        sample_offset_s=offsets_s,
        sample_interval_s=[1.0] * len(devices),
        sample_energy_j=energies_j,
        sample_utilization=utilizations,
        work_offset_s=[float(run.seconds)],
        work_interval_s=[float(run.seconds)],
        work_steps=[steps],
        work_samples=[items],
        work_tokens=[tokens or 0],
        work_flops=[flops],
        totals=wire.Totals(
            duration_s=float(run.seconds),
            device_energy_j=[math.fsum(power) for power in powers],
            steps=steps,
            samples=items,
            tokens=tokens,
            flops=flops,
            flops_method="analytic",
            precision=precision,
            metrics=metrics,
        ),
    )


def _write_run(store: Store, run: PlannedRun, team_id: int, pricing: dict[str, Any]) -> None:
    """Start the run, write all its samples and totals as one batch, end it."""
    with store.session() as session:
        context = start_run(session, _start(run, pricing), team_id=team_id)
    assert context is not None
    powers = _powers(run)
    with store.transaction() as connection:
        write_batch(connection, context, _batch(run, powers))
    end = wire.RunEnd(
        run_id=run.id,
        status=run.status,
        ended_at=run.started_at + timedelta(seconds=run.seconds),
        error="CUDA error: out of memory" if run.status == "failed" else None,
    )
    with store.session() as session:
        finish_run(session, end, team_id=team_id)


def _hourly_series() -> list[Any]:
    """A diurnal hourly series for :data:`HOURLY_ZONE` around its static factor.

    Covers the period and 13 hours either side (the report's hours recommendation shifts
    runs by up to 12 h). Synthetic: the static yearly factor x (1 + 0.25 sin) with its low
    at 14:00 UTC, plus noise, so the report has a zone to price and shift hour by hour.
    """
    from carbon.accounting.hourly import HourlyIntensity
    from carbon.accounting.resolve import resolve

    static = resolve(HOURLY_ZONE).intensity
    rng = np.random.default_rng(SEED)
    first = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC) - timedelta(
        hours=13
    )
    hours = ((LAST_DAY - FIRST_DAY).days + 1) * 24 + 26
    starts = [first + timedelta(hours=h) for h in range(hours)]
    phase = np.array([(s.hour - 14 - 6) / 24 * 2 * np.pi for s in starts])
    values = static.intensity_g_per_kwh * (1 + 0.25 * np.sin(phase) + rng.normal(0, 0.03, hours))
    return [
        HourlyIntensity(
            zone=static.zone,
            hour_start=start,
            intensity_g_per_kwh=float(max(value, 1.0)),
            source=f"bench: synthetic diurnal series around {static.source}",
            factor_type=static.factor_type,
        )
        for start, value in zip(starts, values, strict=True)
    ]


def _factors(store: Store) -> dict[str, int]:
    """The second team, the market factors and the hourly series; the teams' ids by name."""
    from carbon.store.factors import add_market_factor, import_series
    from carbon.store.teams import create_team

    with store.session() as session:
        second = create_team(session, SECOND_TEAM)
        session.flush()
        teams = {"default": DEFAULT_TEAM_ID, SECOND_TEAM: second.id}
        project, share = MARKET_PROJECT
        add_market_factor(
            session,
            source="bench: PPA covering 60% of the project's consumption",
            project=project,
            renewable_share=share,
            valid_from=datetime(2026, 3, 1, tzinfo=UTC),
        )
        zone, supplier_g = MARKET_ZONE
        add_market_factor(
            session,
            source="bench: supplier's residual-mix-adjusted factor",
            zone=zone,
            intensity_g_per_kwh=supplier_g,
        )
        series = _hourly_series()
        # A month at a time: one call with the year's 8,786 hours fails on PostgreSQL
        # ("stack depth limit exceeded", the overlap check's IN list of (zone, hour) pairs).
        for first in range(0, len(series), SERIES_CHUNK_HOURS):
            import_series(session, series[first : first + SERIES_CHUNK_HOURS])
    return teams


@dataclass
class Target:
    """A store to build and time: its kind, URL and how a complete build is recognised."""

    kind: str
    url: str
    runs: int
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def expected(self) -> dict[str, Any]:
        """What a cached build must say of itself to be reused."""
        return {"spec": SPEC, "revision": HEAD_REVISION, "runs": self.runs}


def _sqlite_url(quick: bool) -> str:
    path = SQLITE_PATH.with_name("report-quick.sqlite") if quick else SQLITE_PATH
    return f"sqlite:///{path}"


def _pg_url(quick: bool) -> str:
    url = make_url(PG_URL)
    return (url.set(database=f"{url.database}_quick") if quick else url).render_as_string(False)


def _count(url: str, sql: str) -> int:
    """One integer of a query, on a connection of its own."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar() or 0)
    finally:
        engine.dispose()


def _read_facts(target: Target) -> dict[str, Any]:
    """The facts a finished build recorded: a file beside SQLite's, PostgreSQL's comment."""
    if target.kind == "sqlite":
        note = Path(str(make_url(target.url).database) + ".json")
        return dict(json.loads(note.read_text())) if note.exists() else {}
    note = _scalar_text(
        target.url,
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
        "WHERE datname = current_database()",
    )
    return dict(json.loads(note or "{}"))


def _scalar_text(url: str, sql: str) -> str | None:
    """One value of a query, as text (``None`` for NULL)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            value = connection.execute(text(sql)).scalar()
            return None if value is None else str(value)
    finally:
        engine.dispose()


def _write_facts(target: Target) -> None:
    note = json.dumps(target.facts)
    if target.kind == "sqlite":
        Path(str(make_url(target.url).database) + ".json").write_text(note + "\n")
        return
    name = make_url(target.url).database
    admin = _admin_engine(target.url)
    with admin.connect() as connection:
        escaped = note.replace("'", "''")
        connection.execute(text(f"COMMENT ON DATABASE \"{name}\" IS '{escaped}'"))
    admin.dispose()


def _admin_engine(url: str) -> Any:
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def cached(target: Target) -> bool:
    """Whether the store holds a complete build of this version; sets ``target.facts``."""
    try:
        facts = _read_facts(target)
        if any(facts.get(key) != value for key, value in target.expected.items()):
            return False
        runs = _count(target.url, "SELECT count(*) FROM run")
        samples = _count(target.url, "SELECT count(*) FROM sample")
    except Exception:  # no file, no database, no schema: build it
        return False
    if runs != target.runs or samples != facts.get("samples"):
        return False
    target.facts = facts
    return True


def build(target: Target) -> None:
    """Make the store anew (file or database), migrate it and write the data set."""
    from carbon.accounting.resolve import resolve

    began = time.perf_counter()
    if target.kind == "sqlite":
        path = Path(str(make_url(target.url).database))
        for stale in (
            path,
            *(path.with_name(path.name + end) for end in ("-wal", "-shm", ".json")),
        ):
            stale.unlink(missing_ok=True)
    else:
        name = make_url(target.url).database
        admin = _admin_engine(target.url)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    store = connect_store(target.url, migrate=True)
    partitions = 0
    if target.kind == "postgresql":
        from carbon.store.partitions import ensure_day_partitions

        with store.transaction() as connection:
            # A partition for every day of the period and the day after (runs that end
            # after midnight), so no sample waits in the default partition.
            partitions = len(
                ensure_day_partitions(
                    connection,
                    today=LAST_DAY,
                    days_behind=(LAST_DAY - FIRST_DAY).days,
                    days_ahead=1,
                )
            )
    teams = _factors(store)
    runs = plan(target.runs)
    pricing = {region: resolve(region) for region in {r.region for r in runs} if region}
    samples = 0
    for n, run in enumerate(runs):
        _write_run(store, run, teams[run.project.team], pricing)
        samples += run.samples
        if n % 1000 == 999:
            print(
                f"  {target.kind}: {n + 1:,} runs, {samples:,} samples, "
                f"{time.perf_counter() - began:.0f} s",
                flush=True,
            )
    if target.kind == "postgresql":
        print("  VACUUM ANALYZE", flush=True)
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    store.dispose()
    target.facts = {
        **target.expected,
        "samples": samples,
        "built": datetime.now(UTC).strftime("%Y-%m-%d"),
        "build_s": round(time.perf_counter() - began, 1),
        "day_partitions": partitions,
    }
    _write_facts(target)


def describe(target: Target) -> dict[str, Any]:
    """Row counts and size of the store as built, for the results."""
    tables = ("run", "project", "team", "device", "sample", "sample_minute", "run_energy_hour")
    facts: dict[str, Any] = {
        f"{table}_rows": _count(target.url, f"SELECT count(*) FROM {table}") for table in tables
    }
    facts["market_factors"] = _count(target.url, "SELECT count(*) FROM market_factor")
    facts["intensity_hours"] = _count(target.url, "SELECT count(*) FROM intensity_hour")
    if target.kind == "sqlite":
        path = Path(str(make_url(target.url).database))
        facts["size_mb"] = round(path.stat().st_size / 2**20)
    else:
        facts["samples_in_default_partition"] = _count(
            target.url, "SELECT count(*) FROM sample_default"
        )
        facts["size_mb"] = round(
            _count(target.url, "SELECT pg_database_size(current_database())") / 2**20
        )
    return facts


# -- timing -------------------------------------------------------------------------------

SAMPLE_TABLE = re.compile(r"\bsample(?:_default|_p\d{8})?\b", re.IGNORECASE)
"""A statement that names the raw samples' table or one of its partitions (not
``sample_minute``, not a ``samples`` column)."""
SAMPLE_MINUTE_TABLE = re.compile(r"\bsample_minute\b", re.IGNORECASE)
FORMATS = ("html", "json", "csv", "md")


class _Statements:
    """Counts every statement the engine sends, per phase, and those naming ``sample``."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.counts: dict[str, dict[str, int]] = {}
        self.sample_sql: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        counts = self.counts.setdefault(
            self.phase, {"statements": 0, "sample": 0, "sample_minute": 0}
        )
        counts["statements"] += 1
        if SAMPLE_TABLE.search(statement):
            counts["sample"] += 1
            self.sample_sql.append(statement[:300])
        if SAMPLE_MINUTE_TABLE.search(statement):
            counts["sample_minute"] += 1


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(url: str, reps: int, pdf: bool, profile: str | None) -> dict[str, Any]:
    """In this (fresh) process: the report ``reps`` times, each built and rendered anew.

    Every repetition opens its own session, builds the report, renders it as HTML, then
    as the other formats; PDF, when asked, once after the last. Statements are counted
    through all of it. A last, untimed pass under ``tracemalloc`` gives the Python heap's
    peak; with ``profile``, one more under cProfile is dumped there.
    """
    began = time.perf_counter()
    from carbon.reports.build import build_report
    from carbon.reports.render import render_report
    from carbon.reports.request import ReportRequest

    import_s = time.perf_counter() - began
    store = connect_store(url)
    statements = _Statements()
    event.listen(store.engine, "before_cursor_execute", statements)
    request = ReportRequest(since=FIRST_DAY, until=LAST_DAY)
    rss_before_mb = _rss_mb()
    rounds: list[dict[str, Any]] = []
    sizes: dict[str, int] = {}
    report: dict[str, Any] = {}
    for rep in range(reps):
        statements.phase = f"build {rep}"
        begin = time.perf_counter()
        with store.session() as session:
            report = build_report(session, request, source=store.display_url)
        build_s = time.perf_counter() - begin
        times: dict[str, float] = {"build_s": build_s}
        for fmt in FORMATS:
            statements.phase = f"render {fmt} {rep}"
            begin = time.perf_counter()
            body = render_report(report, fmt)
            times[f"{fmt}_s"] = time.perf_counter() - begin
            sizes[fmt] = len(body)
        times["total_s"] = build_s + times["html_s"]
        rounds.append(times)
    rss_peak_mb = _peak_rss_mb()
    if pdf:
        statements.phase = "render pdf"
        begin = time.perf_counter()
        sizes["pdf"] = len(render_report(report, "pdf"))
        rounds[-1]["pdf_s"] = time.perf_counter() - begin

    import tracemalloc

    statements.phase = "tracemalloc"
    tracemalloc.start()
    with store.session() as session:
        traced = build_report(session, request, source=store.display_url)
    render_report(traced, "html")
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del traced
    if profile:
        import cProfile

        statements.phase = "profile"
        profiler = cProfile.Profile()
        profiler.enable()
        with store.session() as session:
            profiled = build_report(session, request, source=store.display_url)
        render_report(profiled, "html")
        profiler.disable()
        profiler.dump_stats(profile)
    store.dispose()
    return {
        "import_s": import_s,
        "rounds": rounds,
        "sizes": sizes,
        "report_runs": len(report.get("runs", [])),
        "recommendations": len(report.get("recommendations", [])),
        "statements": statements.counts,
        "sample_sql": statements.sample_sql[:5],
        "rss_before_mb": rss_before_mb,
        "rss_peak_mb": rss_peak_mb,
        "heap_peak_mb": heap_peak / 2**20,
    }


def _in_child(url: str, reps: int, pdf: bool, profile: str | None) -> dict[str, Any]:
    """:func:`measure` in a spawned process: a cold start, and a peak RSS of its own."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return dict(pool.apply(measure, (url, reps, pdf, profile)))


def figures(raw: dict[str, Any]) -> dict[str, Any]:
    """The results of one store: per figure its median and worst over the rounds."""
    rounds = raw["rounds"]
    out: dict[str, Any] = {"limit_s": LIMIT_S}
    for key in dict.fromkeys(key for r in rounds for key in r):  # pdf_s: the last round's
        values = [r[key] for r in rounds if key in r]
        out[key] = {
            "first": round(values[0], 3),
            "median": round(statistics.median(values), 3),
            "max": round(max(values), 3),
        }
    out["ratio_to_limit"] = round(out["total_s"]["max"] / LIMIT_S, 3)
    out["ratio_to_limit_median"] = round(out["total_s"]["median"] / LIMIT_S, 3)
    out["size_mb"] = {fmt: round(size / 1e6, 2) for fmt, size in raw["sizes"].items()}
    phases = raw["statements"]
    timed = {k: v for k, v in phases.items() if k.startswith(("build", "render"))}
    first_build = phases.get("build 0", {})
    out["statements"] = {
        "per_build": first_build.get("statements", 0),
        "renders": sum(v["statements"] for k, v in timed.items() if k.startswith("render")),
        "all_timed": sum(v["statements"] for v in timed.values()),
        "sample": sum(v["sample"] for v in phases.values()),
        "sample_minute": sum(v["sample_minute"] for v in phases.values()),
    }
    out["sample_sql"] = raw["sample_sql"]
    out["report_runs"] = raw["report_runs"]
    out["recommendations"] = raw["recommendations"]
    out["import_s"] = round(raw["import_s"], 3)
    out["rss_before_mb"] = round(raw["rss_before_mb"])
    out["rss_peak_mb"] = round(raw["rss_peak_mb"])
    out["heap_peak_mb"] = round(raw["heap_peak_mb"])
    return out


def _rows(results: dict[str, dict[str, Any]]) -> Iterator[str]:
    yield (
        f"{'store':<11} {'build s':>8} {'html s':>7} {'total s':>8} {'/ 10 s':>7} "
        f"{'html MB':>8} {'sample stmts':>13} {'stmts':>6} {'RSS MB':>7} {'heap MB':>8}"
    )
    for kind, r in results.items():
        yield (
            f"{kind:<11} {r['build_s']['max']:>8.2f} {r['html_s']['max']:>7.2f} "
            f"{r['total_s']['max']:>8.2f} {r['ratio_to_limit']:>7.3f} {r['size_mb']['html']:>8.2f} "
            f"{r['statements']['sample']:>13} {r['statements']['per_build']:>6} "
            f"{r['rss_peak_mb']:>7} {r['heap_peak_mb']:>8}"
        )
    yield ""
    yield "other formats (median s, size), and the first round's total:"
    for kind, r in results.items():
        parts = [
            f"{fmt} {r[f'{fmt}_s']['median']:.2f} s {r['size_mb'][fmt]:.2f} MB"
            for fmt in (*FORMATS[1:], "pdf")
            if f"{fmt}_s" in r
        ]
        yield (f"{kind:<11} " + ", ".join(parts) + f"; first total {r['total_s']['first']:.2f} s")


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


def _code_version() -> str:
    """The commit the measured code is at, marked when ``carbon/`` differs from it."""
    import subprocess

    root = Path(__file__).parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "carbon"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{commit}{' with uncommitted changes in carbon/' if changed else ''}" or "unknown"


def _postgres_reachable(url: str) -> bool:
    try:
        _count(make_url(url).set(database="postgres").render_as_string(False), "SELECT 1")
    except Exception:
        return False
    return True


def main() -> None:
    """Build (or reuse) each store's data set, time the report on each, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS:,} runs, 2 rounds")
    parser.add_argument(
        "--store", choices=("sqlite", "postgresql", "both"), default="both", help="which stores"
    )
    parser.add_argument("--pdf", action="store_true", help="also render PDF (may be slow)")
    parser.add_argument("--reps", type=int, default=None, help="rounds per store (default 3)")
    parser.add_argument("--rebuild", action="store_true", help="build the data sets anew")
    parser.add_argument("--build-only", action="store_true", help="build, time nothing")
    parser.add_argument("--profile", metavar="DIR", help="dump a cProfile of one round here")
    args = parser.parse_args()
    runs = QUICK_RUNS if args.quick else RUNS
    reps = args.reps or (2 if args.quick else 3)

    targets = []
    if args.store in ("sqlite", "both"):
        targets.append(Target("sqlite", _sqlite_url(args.quick), runs))
    if args.store in ("postgresql", "both"):
        url = _pg_url(args.quick)
        if _postgres_reachable(url):
            targets.append(Target("postgresql", url, runs))
        elif args.store == "postgresql":
            raise SystemExit(f"PostgreSQL at {make_url(url).set(database=None)} does not answer")
        else:
            print("PostgreSQL does not answer: SQLite only", flush=True)

    for target in targets:
        if not args.rebuild and cached(target):
            print(
                f"{target.kind}: reusing the data set built {target.facts['built']} "
                f"(in {target.facts['build_s']:.1f} s); --rebuild to make it again",
                flush=True,
            )
        else:
            print(f"{target.kind}: building the data set ({runs:,} runs)", flush=True)
            build(target)
            print(f"{target.kind}: built in {target.facts['build_s']:.1f} s", flush=True)
        target.facts.update(describe(target))
        print(
            "  "
            + ", ".join(f"{k} {v:,}" for k, v in target.facts.items() if k.endswith(("rows", "mb")))
        )
    if args.build_only:
        return

    results: dict[str, dict[str, Any]] = {}
    code = _code_version()
    load_before = os.getloadavg()
    for target in targets:
        print(f"{target.kind}: {reps} rounds of the yearly report", flush=True)
        profile = None
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            profile = str(Path(args.profile) / f"report-{target.kind}.prof")
        results[target.kind] = figures(_in_child(target.url, reps, args.pdf, profile))
    print()
    for row in _rows(results):
        print(row)
    for kind, r in results.items():
        if r["statements"]["sample"]:
            print(f"{kind}: {r['statements']['sample']} statement(s) read samples, e.g.")
            for sql in r["sample_sql"]:
                print("   ", sql.replace("\n", " "))
    if not args.quick:
        report = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "machine": _machine(),
            "code": code,
            "period": [FIRST_DAY.isoformat(), LAST_DAY.isoformat()],
            "limit_s": LIMIT_S,
            "reps": reps,
            "load_average_1min": {
                "before": round(load_before[0], 2),
                "after": round(os.getloadavg()[0], 2),
            },
            "data_set": {t.kind: t.facts for t in targets},
            **results,
        }
        for target in targets:
            if target.kind == "postgresql":
                report["postgresql_version"] = _scalar_text(target.url, "SHOW server_version")
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
