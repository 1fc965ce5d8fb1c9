"""Ingest through the team server's HTTP API into PostgreSQL, against raw COPY of the same table.

In one run, on one fresh PostgreSQL database:

1. ``carbon serve`` (``--workers`` processes) takes batches of 1,000 samples (8 GPUs x 125
   seconds) from several concurrent agents on loopback, each agent posting its run's batches
   one after the other as the agent's sender does; the figure is samples stored per second of
   wall time, with the latency of each POST (p50, p99);
2. the same number of concurrent writers ``COPY`` the same rows into the same ``sample``
   table, 1,000 rows and one commit per batch, with no API, no validation, no totals.

The target is an API rate of at least half the raw COPY rate. The agents, the server and
PostgreSQL share this machine's cores, as they would on a single-host install.

Run: ``python -m bench.ingest [--quick] [--agents N] [--workers N]``; needs PostgreSQL at
``CARBON_BENCH_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``,
trust auth). Results go to ``bench/results/ingest.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import socket
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench._server import serve
from carbon import wire
from carbon.store.bulk import COPY_SAMPLE_SQL, SAMPLE_PG_TYPES

RESULTS = Path(__file__).parent / "results" / "ingest.json"
ADMIN_URL = os.environ.get(
    "CARBON_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
GPUS = 8
SECONDS_PER_BATCH = 125  # 8 GPUs x 125 s = 1,000 samples


def _start(run_id: str, started_at: datetime) -> wire.RunStart:
    return wire.RunStart(
        id=run_id,
        project="bench",
        name="ingest",
        kind="training",
        started_at=started_at,
        host=socket.gethostname(),
        region=None,
        pue=1.0,
        intensity=None,
        sample_hz=10,
        carbon_version="bench",
        simulated=True,
        devices=[
            wire.DeviceSpec(
                position=i,
                component="gpu",
                name="NVIDIA H100 80GB HBM3",
                method="nvml_energy_counter",
                provenance="measured",
                detail="bench",
            )
            for i in range(GPUS)
        ],
    )


def _batch(run_id: str, seq: int) -> wire.Batch:
    first_s = seq * SECONDS_PER_BATCH
    ends = [float(first_s + k + 1) for k in range(SECONDS_PER_BATCH)]
    duration_s = float(first_s + SECONDS_PER_BATCH)
    return wire.Batch(
        run_id=run_id,
        seq=seq,
        sample_device=[g for g in range(GPUS) for _ in ends],
        sample_offset_s=ends * GPUS,
        sample_interval_s=[1.0] * (GPUS * SECONDS_PER_BATCH),
        sample_energy_j=[400.0 + g for g in range(GPUS) for _ in ends],
        sample_utilization=[0.9] * (GPUS * SECONDS_PER_BATCH),
        totals=wire.Totals(
            duration_s=duration_s,
            device_energy_j=[(400.0 + g) * duration_s for g in range(GPUS)],
            steps=0,
        ),
    )


def _agent(base_url: str, key: str, batches: int, started_at: datetime, go: Any, out: Any) -> None:
    """One agent: its run's start, then its batches one after the other."""
    run_id = uuid.uuid4().hex
    bodies = [_batch(run_id, seq).model_dump_json() for seq in range(batches)]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies_s = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        response = client.post("/api/v1/runs", content=_start(run_id, started_at).model_dump_json())
        response.raise_for_status()
        out.put(("ready", run_id))
        go.wait()
        for body in bodies:
            begin = time.perf_counter()
            response = client.post(f"/api/v1/runs/{run_id}/batches", content=body)
            latencies_s.append(time.perf_counter() - begin)
            response.raise_for_status()
    out.put(("done", latencies_s))


def _copier(
    url: str,
    run_id: str,
    device_ids: list[int],
    batches: int,
    started_at: datetime,
    go: Any,
    out: Any,
) -> None:
    """One raw writer: binary COPY of 1,000 rows and a commit per batch, nothing else."""
    import psycopg

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    rows_per_batch = []
    for seq in range(batches):
        batch = _batch(run_id, seq)
        rows_per_batch.append(
            [
                (
                    run_id,
                    device_ids[device],
                    started_at + timedelta(seconds=end_s),
                    end_s,
                    interval_s,
                    energy_j,
                    energy_j / interval_s,
                    utilization,
                )
                for device, end_s, interval_s, energy_j, utilization in zip(
                    batch.sample_device,
                    batch.sample_offset_s,
                    batch.sample_interval_s,
                    batch.sample_energy_j,
                    batch.sample_utilization,
                    strict=True,
                )
            ]
        )
    latencies_s = []
    with psycopg.connect(conninfo) as connection:
        out.put(("ready", run_id))
        go.wait()
        for rows in rows_per_batch:
            begin = time.perf_counter()
            with connection.cursor() as cursor, cursor.copy(COPY_SAMPLE_SQL) as copy:
                copy.set_types(list(SAMPLE_PG_TYPES))
                for row in rows:
                    copy.write_row(row)
            connection.commit()
            latencies_s.append(time.perf_counter() - begin)
    out.put(("done", latencies_s))


def _run_parallel(targets: list[tuple[Any, tuple[Any, ...]]]) -> tuple[float, list[float]]:
    """Start every process, wait until all are ready, time them from a common start."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    go = context.Event()
    barrier_free = []
    for target, args in targets:
        process = context.Process(target=target, args=(*args, go, queue))
        barrier_free.append(process)
        process.start()
    # Each process prepares its bodies, reports "ready" and waits for the go: preparation
    # is never timed, and every writer starts at once.
    ready = 0
    while ready < len(targets):
        kind, _ = queue.get(timeout=300)
        ready += kind == "ready"
    begin = time.perf_counter()
    go.set()
    latencies_s: list[float] = []
    done = 0
    while done < len(targets):
        kind, value = queue.get(timeout=600)
        if kind == "done":
            latencies_s.extend(value)
            done += 1
    wall_s = time.perf_counter() - begin
    for process in barrier_free:
        process.join(timeout=30)
    return wall_s, latencies_s


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches, for a smoke run")
    parser.add_argument("--agents", type=int, default=4, help="concurrent agents / writers")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    args = parser.parse_args()
    batches = 10 if args.quick else 60

    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"carbon_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        from carbon.settings import load_settings
        from carbon.store import connect_store
        from carbon.store.maintenance import run_maintenance

        store = connect_store(url, migrate=True)
        run_maintenance(store, load_settings(database_url=url))  # today's partitions
        with serve(url, workers=args.workers) as server:
            base_url, key = server.url, server.key
            started_at = datetime.now(UTC) - timedelta(hours=2)
            api_wall_s, api_latencies_s = _run_parallel(
                [(_agent, (base_url, key, batches, started_at)) for _ in range(args.agents)]
            )
        api_samples = args.agents * batches * GPUS * SECONDS_PER_BATCH

        # Raw COPY into the same table: runs and devices made through the same store.
        from carbon.store.sink import LocalSink

        sink = LocalSink(store)
        copy_targets = []
        for _ in range(args.agents):
            run_id = uuid.uuid4().hex
            sink.start_run(_start(run_id, started_at))
            with store.session() as session:
                device_ids = [
                    row[0]
                    for row in session.execute(
                        text("SELECT id FROM device WHERE run_id = :r ORDER BY position"),
                        {"r": run_id},
                    )
                ]
            copy_targets.append((_copier, (url, run_id, device_ids, batches, started_at)))
        copy_wall_s, copy_latencies_s = _run_parallel(copy_targets)
        copy_samples = args.agents * batches * GPUS * SECONDS_PER_BATCH
        with store.session() as session:
            stored = session.execute(text("SELECT count(*) FROM sample")).scalar()
        store.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    api_rate = api_samples / api_wall_s
    copy_rate = copy_samples / copy_wall_s
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        ),
        "agents": args.agents,
        "server_workers": args.workers,
        "batches_per_agent": batches,
        "samples_per_batch": GPUS * SECONDS_PER_BATCH,
        "samples_stored": stored,
        "samples_expected": api_samples + copy_samples,
        "api_samples_per_s": round(api_rate),
        "api_batch_latency_p50_ms": round(1000 * statistics.median(api_latencies_s), 1),
        "api_batch_latency_p99_ms": round(1000 * _percentile(api_latencies_s, 99), 1),
        "copy_samples_per_s": round(copy_rate),
        "copy_batch_latency_p50_ms": round(1000 * statistics.median(copy_latencies_s), 1),
        "copy_batch_latency_p99_ms": round(1000 * _percentile(copy_latencies_s, 99), 1),
        "ratio_api_to_copy": round(api_rate / copy_rate, 3),
        "target_ratio": 0.5,
    }
    print(f"{'path':<10} {'samples/s':>12} {'p50 ms':>8} {'p99 ms':>8}")
    print(
        f"{'HTTP API':<10} {api_rate:>12,.0f} {result['api_batch_latency_p50_ms']:>8} "
        f"{result['api_batch_latency_p99_ms']:>8}"
    )
    print(
        f"{'raw COPY':<10} {copy_rate:>12,.0f} {result['copy_batch_latency_p50_ms']:>8} "
        f"{result['copy_batch_latency_p99_ms']:>8}"
    )
    print(
        f"API / COPY = {result['ratio_api_to_copy']:.2f} (target >= 0.5); "
        f"stored {stored:,} of {api_samples + copy_samples:,} samples"
    )
    if not args.quick:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
