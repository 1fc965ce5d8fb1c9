"""The server side of ``bench.load``: ``carbon serve`` with teams and keys, and CPU meters.

:func:`load_server` gives a fresh store several teams with an ingest key each (agents of a
team share its key, as a team's training nodes do) and runs ``carbon serve --workers N`` on
loopback with the server's own defaults, rate limit included. :class:`CpuMeter` measures the
CPU time of the server's processes, of PostgreSQL's backends of the benchmark's database
(and its background processes), and of the whole machine, over the load.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from bench._server import free_port

PROFILE_DIR_ENV = "CARBON_BENCH_PROFILE_DIR"
"""Where ``bench._load_profile``'s workers write their profiles."""


@dataclass
class LoadServer:
    """A running server: its URL, one ingest key per team, its process.

    ``log_errors`` holds the lines of its log that report an error or a traceback, read
    once it has stopped (its folder, log included, is removed then).
    """

    url: str
    keys: tuple[str, ...]
    process: subprocess.Popen[bytes]
    log_errors: list[str] = field(default_factory=list)


@contextmanager
def load_server(
    database_url: str,
    *,
    workers: int,
    teams: int,
    rate_limit_per_s: float | None = None,
    profile_dir: Path | None = None,
) -> Iterator[LoadServer]:
    """Give the store ``teams`` teams with an ingest key each and serve it until exit.

    Args:
        database_url: The store, migrated already.
        workers: ``carbon serve --workers``.
        teams: Teams to make, each with one ingest key.
        rate_limit_per_s: ``CARBON_RATE_LIMIT_PER_S``; ``None`` keeps the server's default.
        profile_dir: Serve through ``bench._load_profile`` instead, whose workers write a
            CPU profile each here when they stop.
    """
    from carbon.store import connect_store
    from carbon.store.teams import create_key, create_team

    store = connect_store(database_url)
    keys = []
    with store.session() as session:
        for index in range(teams):
            team = create_team(session, f"load-{index}")
            _, key = create_key(session, team, "training nodes", "ingest")
            keys.append(key)
    store.dispose()
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="carbon-bench-load-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CARBON_")},
        "CARBON_DATABASE_URL": database_url,
        "CARBON_HOME": str(home),
    }
    if rate_limit_per_s is not None:
        env["CARBON_RATE_LIMIT_PER_S"] = str(rate_limit_per_s)
    module = "carbon"
    if profile_dir is not None:
        env[PROFILE_DIR_ENV] = str(profile_dir)
        module = "bench._load_profile"
    command = [sys.executable, "-m", module, "serve", "--port", str(port)]
    log_path = home / "server.log"
    with log_path.open("wb") as log:
        # uvicorn's access log goes to stdout, its other messages to stderr.
        server = subprocess.Popen(
            [*command, "--workers", str(workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=Path(__file__).resolve().parent.parent,
        )
    served = LoadServer(f"http://127.0.0.1:{port}", tuple(keys), server)
    try:
        _wait_healthy(server, served.url, log_path)
        yield served
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        lines = log_path.read_text(errors="replace").splitlines()
        served.log_errors = [line for line in lines if "ERROR" in line or "Traceback" in line]
        shutil.rmtree(home, ignore_errors=True)


def _wait_healthy(server: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    """Wait until ``/healthz`` answers 200 (every worker is up: a few probes in a row)."""
    deadline = time.monotonic() + 90
    healthy = 0
    while healthy < 5:
        if server.poll() is not None:
            raise SystemExit(f"carbon serve exited: {log_path.read_text()[-2000:]}")
        try:
            ok = httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            ok = False
        healthy = healthy + 1 if ok else 0
        if time.monotonic() > deadline:
            raise SystemExit(
                f"carbon serve did not answer /healthz: {log_path.read_text()[-2000:]}"
            )
        time.sleep(0.2)


@dataclass(frozen=True)
class CpuFigures:
    """CPU seconds used over the measured span, by whom.

    Attributes:
        wall_s: The span.
        server_s: ``carbon serve``'s supervisor and workers.
        postgres_s: PostgreSQL's backends connected to the benchmark's database.
        postgres_background_s: PostgreSQL's own processes (WAL writer, checkpointer, ...),
            which serve every database on the machine.
        machine_busy_s: Every core's non-idle time, everyone's (the client's included).
        cores: Logical CPUs of the machine.
        load_average_start: 1-minute load average at the start (others' work included).
        load_average: 1-minute load average at the end.
    """

    wall_s: float
    server_s: float
    postgres_s: float
    postgres_background_s: float
    machine_busy_s: float
    cores: int
    load_average_start: float
    load_average: float


class CpuMeter:
    """Measures CPU time of the server, PostgreSQL and the machine between start and stop.

    PostgreSQL starts a process per connection and the server's pools open and close
    connections under load, so a thread looks at PostgreSQL's processes every 0.5 s and
    keeps each one's latest CPU time (the last fraction of a second of one that ends between
    two looks is lost). A backend belongs to the benchmark when its process title names the
    benchmark's database.

    Args:
        server_pid: The ``carbon serve`` process; its children are its workers.
        database: The benchmark's database name, or ``None`` when it is not PostgreSQL.
    """

    def __init__(self, server_pid: int, database: str | None) -> None:
        self._server = psutil.Process(server_pid)
        self._database = database
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cpu-meter", daemon=True)
        self._postgres: dict[int, tuple[bool, float, float]] = {}  # pid -> ours, first, last
        self._begin = 0.0
        self._server_begin: dict[int, float] = {}
        self._machine_begin = 0.0
        self._load_begin = 0.0

    def start(self) -> None:
        """Take the first readings and start watching PostgreSQL."""
        self._begin = time.monotonic()
        self._server_begin = _process_tree_cpu(self._server)
        self._machine_begin = _machine_busy_s()
        self._load_begin = os.getloadavg()[0]
        self._look()
        self._thread.start()

    def stop(self) -> CpuFigures:
        """Take the last readings and say what each used since :meth:`start`."""
        self._stop.set()
        self._thread.join()
        self._look()
        wall_s = time.monotonic() - self._begin
        server_end = _process_tree_cpu(self._server)
        server_s = sum(cpu - self._server_begin.get(pid, 0.0) for pid, cpu in server_end.items())
        ours = sum(last - first for mine, first, last in self._postgres.values() if mine)
        background = sum(last - first for mine, first, last in self._postgres.values() if not mine)
        return CpuFigures(
            wall_s=wall_s,
            server_s=server_s,
            postgres_s=ours,
            postgres_background_s=background,
            machine_busy_s=_machine_busy_s() - self._machine_begin,
            cores=psutil.cpu_count() or 1,
            load_average_start=self._load_begin,
            load_average=os.getloadavg()[0],
        )

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            self._look()

    def _look(self) -> None:
        if self._database is None:
            return
        started = self._begin
        for process in psutil.process_iter(["name", "cmdline", "create_time", "cpu_times"]):
            info = process.info
            if info["name"] != "postgres" or info["cpu_times"] is None:
                continue
            title = " ".join(info["cmdline"] or ())
            times = info["cpu_times"]
            cpu_s = times.user + times.system
            pid = process.pid
            if pid in self._postgres:
                mine, first, _ = self._postgres[pid]
                self._postgres[pid] = (mine, first, cpu_s)
                continue
            mine = f" {self._database} " in f" {title} "
            # Backends show their client's address: "... db 127.0.0.1(43198) idle".
            background = "(" not in title and "[local]" not in title
            if not mine and not background:
                continue  # another database's backend: someone else's work
            # A process born after the start used all its CPU within the span.
            born_s = time.time() - info["create_time"]
            first = 0.0 if born_s < time.monotonic() - started else cpu_s
            self._postgres[pid] = (mine, first, cpu_s)


def _process_tree_cpu(process: psutil.Process) -> dict[int, float]:
    """User + system CPU seconds of a process and of each of its descendants, by pid."""
    found = {}
    for each in [process, *process.children(recursive=True)]:
        try:
            times = each.cpu_times()
        except psutil.NoSuchProcess:
            continue
        found[each.pid] = times.user + times.system
    return found


def _machine_busy_s() -> float:
    """Non-idle CPU seconds of every core since boot."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))
