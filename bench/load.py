"""Many agents sending to one team server at once: latency, errors, and every batch stored once.

200 simulated agents (``--agents``), each one training process with 8 GPUs, a CPU and RAM,
start a run each and send one batch a second (10 samples, a row of work, the run's totals)
for 60 s (``--duration-s``) to one ``carbon serve --workers 2`` (``--workers``) on loopback,
over a fresh PostgreSQL database (``--backend sqlite`` for a SQLite file), then end their
runs. Agents belong to 4 teams (``--teams``), each team's agents sharing its ingest key, and
send as the real agent's sender does (``bench/_load_agents.py``): one record at a time, in
order, retrying on network errors, 429 and 5xx with back-off and ``Retry-After``. The server
runs with its own defaults, rate limit included.

Measured in the same run, each against its limit:

- the latency of every request (client side, each try), p50/p95/p99/max, with p99 against
  the 1 s between two batches of an agent;
- how late each batch was acknowledged after it was due (the agent keeping up), p99
  against the same 1 s;
- batches acknowledged per second against the rate offered; requests retried (not errors)
  and errors (records refused, or never acknowledged): limit 0;
- in the database afterwards, run by run: receipts, sample rows and work rows exactly once
  for the batches acknowledged, energy equal to what the agents sent (samples, devices, run,
  minutes, hours; relative 1e-9), each run ``completed``;
- CPU over the load: the client process(es), the server's workers, PostgreSQL's backends of
  the database, the whole machine; the client's event loop lag (is the client the
  bottleneck?); the server's own time to store a batch (its Prometheus histogram).

Run: ``python -m bench.load [--quick] [--agents N] [--duration-s S] [--workers N]
[--backend postgresql|sqlite] [--profile DIR]``; needs PostgreSQL at
``CARBON_BENCH_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``,
trust auth) for the default backend; a database is made for the run and dropped after.
``--quick`` is 20 agents for 10 s. Results go to ``bench/results/load.json``
(``load-sqlite.json``; other sizes ``load-<agents>x<seconds>s-w<workers>.json``; ``-quick``
before ``.json`` with ``--quick``). ``--profile DIR`` serves through ``bench._load_profile``
(``carbon serve`` itself, a CPU profile of every thread of every worker written to DIR) and
adds where the server's CPU time went to its results (``load-profile[-<size>].json``);
profiling slows the server, so that run's latencies are not the server's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench._load_agents import DEVICES, ClientReport, LoadPlan, client_main
from bench._load_profile import cumulative, summarize
from bench._load_server import CpuFigures, CpuMeter, load_server
from bench._load_verify import REL_TOL, Verification, verify
from carbon import wire

RESULTS_DIR = Path(__file__).parent / "results"
ADMIN_URL = os.environ.get(
    "CARBON_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
FULL = {"agents": 200, "duration_s": 60, "workers": 2}
QUICK = {"agents": 20, "duration_s": 10, "workers": 2}
PHASES = {
    "event loop: HTTP parsing (uvicorn's protocol)": ("uvicorn/protocols/http/", "data_received"),
    "event loop: the application (middleware, routing, ...)": (
        "uvicorn/protocols/http/",
        "run_asgi",
    ),
    "  dependencies and body validation": ("fastapi/dependencies/utils.py", "solve_dependencies"),
    "  access log": ("logging/__init__.py", "callHandlers"),
    "thread pool: POST .../batches": ("server/routes/ingest.py", "post_batch"),
    "  write_batch": ("carbon/store/ingest.py", "write_batch"),
    "    add_minutes (sample_minute upsert)": ("carbon/store/minutes.py", "add_minutes"),
    "    add_energy_hours (run_energy_hour upsert)": (
        "carbon/store/pricing.py",
        "add_energy_hours",
    ),
    "    insert_samples (COPY)": ("carbon/store/bulk.py", "insert_samples"),
    "  connection checkout": ("sqlalchemy/pool/base.py", "_checkout"),
    "    new connections (pool overflow)": ("sqlalchemy/pool/base.py", "_create_connection"),
    "  commit": ("sqlalchemy/engine/base.py", "_commit_impl"),
    "  metrics": ("carbon/server/metrics.py", "record_batch"),
    "thread pool: POST /runs": ("server/routes/ingest.py", "post_run"),
    "thread pool: POST .../end": ("server/routes/ingest.py", "post_end"),
}
"""Functions whose cumulative CPU time ``--profile`` reports: ``(part of the file, name)``."""


def main(argv: list[str] | None = None) -> int:
    """Run the load, check the store, print the figures and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 agents for 10 s")
    parser.add_argument("--agents", type=int, help="simulated agents (200; quick 20)")
    parser.add_argument("--duration-s", type=int, help="batches per agent, one a period (60)")
    parser.add_argument("--workers", type=int, help="carbon serve --workers (2)")
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--teams", type=int, default=4, help="teams (one ingest key each)")
    parser.add_argument("--period-s", type=float, default=1.0, help="time between batches")
    parser.add_argument("--ramp-s", type=float, default=1.0, help="spread of the agents' starts")
    parser.add_argument("--client-processes", type=int, default=1, help="processes of agents")
    parser.add_argument(
        "--rate-limit", type=float, help="CARBON_RATE_LIMIT_PER_S (default: the server's)"
    )
    parser.add_argument("--drain-s", type=float, default=60.0, help="retrying past the schedule")
    parser.add_argument("--profile", metavar="DIR", help="profile the server's workers into DIR")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    agents = args.agents or sizes["agents"]
    duration_s = args.duration_s or sizes["duration_s"]
    workers = args.workers or sizes["workers"]
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        for old in profile_dir.glob("worker-*.*"):
            old.unlink()

    with _database(args.backend) as (url, database):
        print(
            f"{agents} agents x {duration_s} batches ({DEVICES} samples each), one every "
            f"{args.period_s:g} s, {args.teams} teams; carbon serve --workers {workers} over "
            f"{args.backend}{' (profiled)' if profile_dir else ''}",
            flush=True,
        )
        outcome = _load(args, url, database, agents, duration_s, workers, profile_dir)
        engine = create_engine(url)
        try:
            outcome["verification"] = verify(engine, outcome["client"].agents)
        finally:
            engine.dispose()

    result = _figures(args, agents, duration_s, workers, outcome)
    if profile_dir is not None:
        result["profile"] = summarize(profile_dir)
        result["profile"]["phases_cumulative_s"] = cumulative(profile_dir, PHASES)
    _print(result)
    path = RESULTS_DIR / _results_name(args, agents, duration_s, workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {path.relative_to(RESULTS_DIR.parent.parent)}")
    # Not keeping up is a figure; a batch lost, stored twice or mis-summed is a failure.
    check = result["verification"]
    return 0 if check["exactly_once"] and check["energy_exact"] else 1


@contextmanager
def _database(backend: str) -> Iterator[tuple[str, str | None]]:
    """A fresh, migrated database for the run (its URL and PostgreSQL name), gone after."""
    from carbon.settings import load_settings
    from carbon.store import connect_store
    from carbon.store.maintenance import run_maintenance

    name = f"carbon_load_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    folder = Path(tempfile.mkdtemp(prefix="carbon-bench-load-db-"))
    database: str | None = None
    try:
        if backend == "sqlite":
            url = f"sqlite:///{folder / 'load.db'}"
        else:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            database = name
            url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        store = connect_store(url, migrate=True)
        run_maintenance(store, load_settings(database_url=url))  # today's partitions
        store.dispose()
        yield url, database
    finally:
        if database is not None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(folder, ignore_errors=True)


def _load(
    args: argparse.Namespace,
    url: str,
    database: str | None,
    agents: int,
    duration_s: int,
    workers: int,
    profile_dir: Path | None,
) -> dict[str, Any]:
    """Serve the store, run the agents in their processes, measure CPU; the raw outcome."""
    from carbon.accounting.resolve import resolve

    factor = resolve("FRA").intensity
    intensity = wire.IntensityInfo(
        intensity_g_per_kwh=factor.intensity_g_per_kwh,
        source=factor.source,
        zone=factor.zone,
        year=factor.year,
        factor_type=factor.factor_type,
    )
    with load_server(
        url,
        workers=workers,
        teams=args.teams,
        rate_limit_per_s=args.rate_limit,
        profile_dir=profile_dir,
    ) as server:
        context = multiprocessing.get_context("spawn")
        processes = []
        pipes = []
        shares = [agents // args.client_processes] * args.client_processes
        for i in range(agents % args.client_processes):
            shares[i] += 1
        first = 0
        for share in shares:
            plan = LoadPlan(
                base_url=server.url,
                keys=server.keys,
                first_agent=first,
                agents=share,
                batches=duration_s,
                period_s=args.period_s,
                ramp_s=args.ramp_s,
                timeout_s=10.0,
                drain_s=args.drain_s,
                intensity=intensity,
            )
            first += share
            ours, theirs = context.Pipe()
            process = context.Process(target=client_main, args=(plan, theirs), daemon=True)
            process.start()
            processes.append(process)
            pipes.append(ours)
        for pipe in pipes:
            if not pipe.poll(120) or pipe.recv() != "ready":
                raise SystemExit("a client process did not get ready")
        meter = CpuMeter(server.process.pid, database)
        go_at = time.monotonic() + 0.5
        meter.start()
        for pipe in pipes:
            pipe.send(go_at)
        deadline_s = args.ramp_s + (duration_s + 1) * args.period_s + args.drain_s + 120
        reports: list[ClientReport] = []
        for pipe in pipes:
            if not pipe.poll(max(1.0, go_at + deadline_s - time.monotonic())):
                raise SystemExit("a client process did not finish")
            try:
                reports.append(pipe.recv())
            except EOFError:  # it died; its traceback is on stderr
                raise SystemExit("a client process failed") from None
        cpu = meter.stop()
        metrics = _server_metrics(server.url)
        for process in processes:
            process.join(timeout=30)
        client = _merge(reports)
    # Read after the server stopped: a worker's last words are in the log by then.
    return {
        "client": client,
        "cpu": cpu,
        "metrics": metrics,
        "server_errors": server.log_errors,
    }


def _merge(reports: list[ClientReport]) -> ClientReport:
    """One report from every client process's (CPU added, spans the widest)."""
    merged = ClientReport()
    for report in reports:
        merged.agents.extend(report.agents)
        for kind, values in report.latency_s.items():
            merged.latency_s[kind].extend(values)
        merged.lag_s.extend(report.lag_s)
        merged.requests += report.requests
        merged.retries.update(report.retries)
        merged.errors.update(report.errors)
        merged.error_examples.extend(report.error_examples)
        merged.cpu_s += report.cpu_s
        merged.wall_s = max(merged.wall_s, report.wall_s)
        merged.loop_lag_s.extend(report.loop_lag_s)
        merged.go_at = report.go_at
        merged.last_ack_at = max(merged.last_ack_at, report.last_ack_at)
    return merged


def _server_metrics(url: str) -> dict[str, float]:
    """The server's own counts and its time to store a batch, from ``/metrics``."""
    found: dict[str, float] = {}
    try:
        body = httpx.get(f"{url}/metrics", timeout=10).text
    except httpx.HTTPError:
        return found
    statuses: Counter[str] = Counter()
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "carbon_ingest_batches_total":
                found[f"batches_{labels['outcome']}"] = sample.value
            elif sample.name == "carbon_ingest_batch_duration_seconds_sum":
                found["store_batch_s_sum"] = sample.value
            elif sample.name == "carbon_ingest_batch_duration_seconds_count":
                found["store_batch_count"] = sample.value
            elif sample.name == "carbon_http_requests_total":
                statuses[labels.get("status", "?")] += int(sample.value)
    found.update({f"http_{status}": float(n) for status, n in sorted(statuses.items())})
    return found


def _pct(values: list[float], q: float) -> float:
    """The q-th percentile (inclusive method), or 0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(1000 * _pct(values, 50), 1),
        "p95_ms": round(1000 * _pct(values, 95), 1),
        "p99_ms": round(1000 * _pct(values, 99), 1),
        "max_ms": round(1000 * max(values, default=0.0), 1),
        "count": len(values),
    }


def _figures(
    args: argparse.Namespace, agents: int, duration_s: int, workers: int, outcome: dict[str, Any]
) -> dict[str, Any]:
    """The results: what was asked, what was measured, each figure against its limit."""
    client: ClientReport = outcome["client"]
    cpu: CpuFigures = outcome["cpu"]
    check: Verification = outcome["verification"]
    period_s = args.period_s
    batches_offered = agents * duration_s
    batches_acked = sum(len(agent.acked) for agent in client.agents)
    span_s = max(client.last_ack_at - client.go_at - period_s, 1e-9)
    offered_per_s = agents / period_s
    acked_per_s = batches_acked / span_s if batches_acked else 0.0
    errors = sum(client.errors.values())
    batch = _ms(client.latency_s["batch"])
    every = _ms([v for values in client.latency_s.values() for v in values])
    lag = _ms(client.lag_s)
    wall_s = cpu.wall_s
    store_count = outcome["metrics"].get("store_batch_count", 0.0)
    store_mean_ms = (
        1000 * outcome["metrics"]["store_batch_s_sum"] / store_count if store_count else None
    )
    held = (
        errors == 0
        and batches_acked == batches_offered
        and lag["p99_ms"] < 1000 * period_s
        and check.exactly_once
        and check.energy_exact
        and check.completed
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        ),
        "code": _commit(),
        "load_average_1min": [round(cpu.load_average_start, 2), round(cpu.load_average, 2)],
        "quick": args.quick,
        "profiled": args.profile is not None,
        "backend": args.backend,
        "agents": agents,
        "batches_per_agent": duration_s,
        "period_s": period_s,
        "samples_per_batch": DEVICES,
        "teams": args.teams,
        "server_workers": workers,
        "client_processes": args.client_processes,
        "rate_limit_per_s": args.rate_limit or "server default",
        "held": held,
        "requests": client.requests,
        "requests_per_s": round(client.requests / max(client.wall_s, 1e-9), 1),
        "batches_offered": batches_offered,
        "batches_acked": batches_acked,
        "batches_acked_per_s": round(acked_per_s, 1),
        "batches_offered_per_s": round(offered_per_s, 1),
        "retries": sum(client.retries.values()),
        "retries_by_cause": dict(client.retries),
        "errors": errors,
        "errors_by_cause": dict(client.errors),
        "error_examples": client.error_examples,
        "repeats_acknowledged": sum(not s for a in client.agents for s in a.acked.values()),
        "latency_batch": batch,
        "latency_start": _ms(client.latency_s["start"]),
        "latency_end": _ms(client.latency_s["end"]),
        "latency_all_requests": every,
        "ack_lag_after_due": lag,
        "client_event_loop_lag": _ms(client.loop_lag_s),
        "cpu": {
            "wall_s": round(wall_s, 1),
            "client_s": round(client.cpu_s, 1),
            "client_cores": round(client.cpu_s / max(client.wall_s, 1e-9), 3),
            "server_s": round(cpu.server_s, 1),
            "server_cores": round(cpu.server_s / wall_s, 3),
            "server_ms_per_request": round(1000 * cpu.server_s / max(client.requests, 1), 2),
            "postgres_s": round(cpu.postgres_s, 1),
            "postgres_cores": round(cpu.postgres_s / wall_s, 3),
            "postgres_ms_per_request": round(1000 * cpu.postgres_s / max(client.requests, 1), 2),
            "postgres_background_s": round(cpu.postgres_background_s, 1),
            "machine_busy_cores": round(cpu.machine_busy_s / wall_s, 3),
            "machine_cores": cpu.cores,
        },
        "server": {
            "store_batch_mean_ms": None if store_mean_ms is None else round(store_mean_ms, 2),
            **{k: v for k, v in outcome["metrics"].items() if not k.startswith("store_")},
            "log_errors": outcome["server_errors"][:10],
        },
        "verification": check.as_dict(),
        "ratios": {
            "batch_latency_p99_to_period": round(batch["p99_ms"] / (1000 * period_s), 3),
            "ack_lag_p99_to_period": round(lag["p99_ms"] / (1000 * period_s), 3),
            "acked_to_offered_rate": round(acked_per_s / offered_per_s, 3),
            "acked_to_offered_batches": round(batches_acked / batches_offered, 4),
            "energy_error_to_tolerance": round(check.worst_energy_rel_error / REL_TOL, 6),
        },
    }


def _print(result: dict[str, Any]) -> None:
    check = result["verification"]
    batch, lag, cpu = result["latency_batch"], result["ack_lag_after_due"], result["cpu"]
    ratios = result["ratios"]
    rows = [
        (
            "batch latency p99",
            f"{batch['p99_ms']:.1f} ms",
            "1000 ms (period)",
            ratios["batch_latency_p99_to_period"],
        ),
        (
            "ack after due, p99",
            f"{lag['p99_ms']:.1f} ms",
            "1000 ms (period)",
            ratios["ack_lag_p99_to_period"],
        ),
        (
            "batches acked / s",
            f"{result['batches_acked_per_s']:.1f}",
            f"{result['batches_offered_per_s']:.1f} offered",
            ratios["acked_to_offered_rate"],
        ),
        (
            "batches acked",
            f"{result['batches_acked']:,}",
            f"{result['batches_offered']:,} sent",
            ratios["acked_to_offered_batches"],
        ),
        ("errors", str(result["errors"]), "0", ""),
        ("exactly once", str(check["exactly_once"]), "True", ""),
        (
            "energy, worst rel. error",
            f"{check['worst_energy_rel_error']:.1e}",
            f"{REL_TOL:.0e}",
            ratios["energy_error_to_tolerance"],
        ),
    ]
    print(f"\n{'figure':<26} {'value':>14} {'limit':>18} {'ratio':>7}")
    for name, value, limit, ratio in rows:
        print(f"{name:<26} {value:>14} {limit:>18} {ratio!s:>7}")
    print(
        f"\nlatency per batch request: p50 {batch['p50_ms']} / p95 {batch['p95_ms']} / "
        f"p99 {batch['p99_ms']} / max {batch['max_ms']} ms over {batch['count']:,}; all "
        f"requests p99 {result['latency_all_requests']['p99_ms']} ms; starts p99 "
        f"{result['latency_start']['p99_ms']} ms"
    )
    print(
        f"requests {result['requests']:,} ({result['requests_per_s']}/s), retries "
        f"{result['retries']} {result['retries_by_cause']}, errors {result['errors']} "
        f"{result['errors_by_cause']}, repeats acknowledged {result['repeats_acknowledged']}"
    )
    print(
        f"stored: {check['receipts']:,} receipts for {check['batches_acked']:,} batches, "
        f"{check['samples_stored']:,} samples for {check['samples_expected']:,} "
        f"({check['repeated_samples']} repeated), {check['work_rows_stored']:,} work rows; "
        f"runs {check['runs_found']}/{check['runs_expected']}, completed {check['completed']}"
    )
    for problem in check["problems"][:5]:
        print(f"  problem: {problem}")
    for example in result["error_examples"][:5]:
        print(f"  error: {example}")
    print(
        f"CPU over {cpu['wall_s']} s, in cores: client {cpu['client_cores']} (event loop lag "
        f"p99 {result['client_event_loop_lag']['p99_ms']} ms), server {cpu['server_cores']} "
        f"({cpu['server_ms_per_request']} ms/request), PostgreSQL {cpu['postgres_cores']} "
        f"({cpu['postgres_ms_per_request']} ms/request, + {cpu['postgres_background_s']} s "
        f"background), machine {cpu['machine_busy_cores']} of {cpu['machine_cores']}; load "
        f"average {result['load_average_1min'][0]} at the start, {result['load_average_1min'][1]} "
        "at the end"
    )
    server = result["server"]
    stored, repeated, rejected = (
        server.get(f"batches_{outcome}", 0) for outcome in ("stored", "duplicate", "rejected")
    )
    print(
        f"server: {server.get('store_batch_mean_ms')} ms mean to store a batch (its histogram); "
        f"stored {stored:.0f}, duplicate {repeated:.0f}, rejected {rejected:.0f}"
    )
    for line in server["log_errors"][:5]:
        print(f"  server log: {line}")
    profile = result.get("profile")
    if profile and profile.get("workers"):
        print(
            f"\nprofile of {profile['workers']} workers: {profile['total_cpu_s']} s CPU, of which "
            f"the event loop's thread {profile['event_loop_cpu_s']} s, the others "
            f"{profile['other_threads_cpu_s']} s"
        )
        for package, seconds in list(profile["by_package"].items())[:15]:
            print(f"  {seconds:8.2f} s  {package}")
        total_s = profile["total_cpu_s"]
        print("cumulative (seconds, share of the profiled CPU, ms per request):")
        for name, seconds in profile["phases_cumulative_s"].items():
            per_request_ms = 1000 * seconds / max(result["requests"], 1)
            print(f"  {seconds:8.2f} s {seconds / total_s:6.1%} {per_request_ms:7.2f} ms  {name}")
        print("own time, top functions:")
        for row in profile["top_functions"][:20]:
            print(f"  {row['own_s']:8.2f} s  {row['calls']:>9,}  {row['function']}")
    print(f"\nheld: {result['held']}")


def _commit() -> str | None:
    """The code's commit, for the results (``None`` outside a git checkout)."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return found.stdout.strip() or None


def _results_name(args: argparse.Namespace, agents: int, duration_s: int, workers: int) -> str:
    name = "load"
    if args.backend == "sqlite":
        name += "-sqlite"
    if args.profile:
        name += "-profile"
    sizes = QUICK if args.quick else FULL
    if (agents, duration_s, workers) != (sizes["agents"], sizes["duration_s"], sizes["workers"]):
        name += f"-{agents}x{duration_s}s-w{workers}"
    return name + ("-quick.json" if args.quick else ".json")


if __name__ == "__main__":
    raise SystemExit(main())
