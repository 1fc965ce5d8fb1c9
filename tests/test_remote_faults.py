"""The remote agent against a live ``carbon serve``: nothing lost, nothing doubled.

Each test runs a real server in a child process and a real tracked run, then breaks
something on the server's side: the server is down for the whole run, it is killed with
SIGKILL and restarted several times mid-run, the database goes away during ingest or has its
connections cut again and again. Energy is checked against the exact integral of a
constant-power source (power x duration), and batches against their receipts: sequence
numbers 0..n-1, each once. The agent's own faults are in ``test_faults_agent.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

import carbon
from carbon.remote.sender import SenderTiming
from carbon.remote.senders import close_senders, sender_for
from carbon.remote.spool import Spool
from carbon.settings import Settings, load_settings
from carbon.sources.base import Component
from carbon.store import close_stores, open_store
from carbon.store.models import BatchReceipt, Run
from carbon.store.queries import sample_energy_by_device
from carbon.store.teams import create_key, create_team
from carbon.testing import ConstantPowerSource
from tests.conftest import ADMIN_URL
from tests.server_process import ServerProcess

POWER_W = 250.0
QUICK_RETRIES = SenderTiming(initial_backoff_s=0.1, max_backoff_s=0.5)
"""Back-off of the agents here: a server back up is tried again within half a second."""


@pytest.fixture
def ingest_key(store_url: str) -> str:
    """An ingest key of a new team in the test's store (so the server requires keys)."""
    with open_store(store_url).session() as session:
        team = create_team(session, "acme")
        _, key = create_key(session, team, "agents", "ingest")
    return key


def agent_settings(tmp_path: Path, server: ServerProcess, key: str, **extra: object) -> Settings:
    return load_settings(
        home=tmp_path / "agent",
        server_url=server.url,
        api_key=key,
        region="FR",
        sample_hz=20,
        **extra,
    )


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def stored_run(store_url: str, run_id: str) -> tuple[Run, list[int], float]:
    """The run as the server stored it, the seqs it acknowledged, and its samples' energy."""
    with open_store(store_url).session() as session:
        run = session.get(Run, run_id)
        assert run is not None, "the run never reached the server"
        seqs = list(
            session.scalars(
                select(BatchReceipt.seq)
                .where(BatchReceipt.run_id == run_id)
                .order_by(BatchReceipt.seq)
            )
        )
        sample_j = sum(sample_energy_by_device(session, run_id).values())
        session.expunge(run)
    return run, seqs, sample_j


def test_server_down_for_the_whole_run_then_up_gets_every_sample_once(
    store_url: str, ingest_key: str, tmp_path: Path
) -> None:
    server = ServerProcess(store_url, tmp_path / "server")  # not started yet
    settings = agent_settings(tmp_path, server, ingest_key, flush_timeout_s=0.5)
    sender_for(settings, timing=QUICK_RETRIES)
    source = ConstantPowerSource(POWER_W, component=Component.GPU, name="test gpu")
    with carbon.track(project="p", name="offline", settings=settings, sources=[source]) as run:
        time.sleep(2.0)
        run.step(samples=64)
    spool = Spool(settings.spool_path)
    spooled = spool.count(run_id=run.id)
    assert spooled >= 4  # the start, at least two batches, the end: all kept on disk
    server.start()
    try:
        wait_for(lambda: spool.count(run_id=run.id) == 0, 60, "the spool to drain")
    finally:
        spool.close()
        server.stop()
        close_senders(0, settings.spool_path)
    stored, seqs, sample_j = stored_run(store_url, run.id)
    assert seqs == list(range(len(seqs)))
    assert len(seqs) == spooled - 2
    assert stored.status == "completed"
    assert stored.samples == 64
    assert stored.duration_s is not None
    assert stored.energy_j == pytest.approx(POWER_W * stored.duration_s, rel=1e-9)
    assert sample_j == pytest.approx(stored.energy_j, rel=1e-9)


def receipts(store_url: str, run_id: str) -> int:
    """How many batches of the run the store holds."""
    with open_store(store_url).session() as session:
        count = session.scalar(
            select(func.count()).select_from(BatchReceipt).where(BatchReceipt.run_id == run_id)
        )
    return int(count or 0)


def _wait_for_more_receipts(store_url: str, run_id: str, than: int) -> None:
    wait_for(lambda: receipts(store_url, run_id) > than, 30, "the server to store a batch")


def test_server_killed_and_restarted_three_times_mid_run_loses_and_doubles_nothing(
    store_url: str, ingest_key: str, tmp_path: Path
) -> None:
    server = ServerProcess(store_url, tmp_path / "server")
    server.start()
    settings = agent_settings(tmp_path, server, ingest_key, flush_timeout_s=60)
    sender_for(settings, timing=QUICK_RETRIES)
    source = ConstantPowerSource(POWER_W, component=Component.GPU, name="test gpu")
    try:
        with carbon.track(project="p", name="killed", settings=settings, sources=[source]) as run:
            for _ in range(3):
                _wait_for_more_receipts(store_url, run.id, receipts(store_url, run.id))
                run.step(samples=1)
                server.kill()  # mid-run: a request may be cut between commit and answer
                time.sleep(0.5)  # batches go on being spooled while it is away
                server.start()
            _wait_for_more_receipts(store_url, run.id, receipts(store_url, run.id))
            run.step(samples=1)
    finally:
        server.stop()
        close_senders(0, settings.spool_path)
    stored, seqs, sample_j = stored_run(store_url, run.id)
    assert len(seqs) >= 4
    assert seqs == list(range(len(seqs)))  # each batch once, none missing
    assert stored.status == "completed"
    assert stored.samples == 4
    assert stored.duration_s is not None
    assert stored.energy_j == pytest.approx(POWER_W * stored.duration_s, rel=1e-9)
    assert sample_j == pytest.approx(stored.energy_j, rel=1e-9)  # a doubled batch would show


def _postgres_ingest_key(postgres_url: str) -> str:
    """An ingest key of a new team in the session's PostgreSQL store, emptied first."""
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE run, project, api_key CASCADE"))
        connection.execute(text("DELETE FROM team WHERE id <> 1"))
    engine.dispose()
    with open_store(postgres_url).session() as session:
        _, key = create_key(session, create_team(session, "acme"), "agents", "ingest")
    return key


@pytest.mark.postgres
def test_database_restart_during_ingest_loses_and_doubles_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    key = _postgres_ingest_key(postgres_url)
    server = ServerProcess(postgres_url, tmp_path / "server")
    server.start()
    database = make_url(postgres_url).database
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")

    def outage() -> None:
        time.sleep(1.5)
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            )
            time.sleep(3.0)
            connection.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))

    settings = agent_settings(tmp_path, server, key, flush_timeout_s=60)
    source = ConstantPowerSource(POWER_W, component=Component.GPU, name="test gpu")
    breaker = threading.Thread(target=outage)
    try:
        with carbon.track(project="p", name="outage", settings=settings, sources=[source]) as run:
            breaker.start()
            time.sleep(6.0)
            run.step(samples=10)
        breaker.join()
    finally:
        server.stop()
        admin.dispose()
    close_stores()  # this process's pooled connections were cut by the outage too
    stored, seqs, sample_j = stored_run(postgres_url, run.id)
    assert len(seqs) >= 6
    assert seqs == list(range(len(seqs)))  # each batch once, none missing
    assert stored.status == "completed"
    assert stored.duration_s is not None
    assert stored.energy_j == pytest.approx(POWER_W * stored.duration_s, rel=1e-9)
    assert sample_j == pytest.approx(stored.energy_j, rel=1e-9)  # a doubled batch would show


@pytest.mark.postgres
def test_connections_killed_mid_ingest_again_and_again_need_no_server_restart(
    postgres_url: str, tmp_path: Path
) -> None:
    """Four times, a batch's transaction is caught in flight and its connection killed.

    A lock on ``batch_receipt`` holds the server's next batch inside its transaction; its
    connection is then terminated (``pg_terminate_backend``), so the request fails mid-way
    every time, not only between requests (which the pool's pre-ping would hide).
    """
    key = _postgres_ingest_key(postgres_url)
    server = ServerProcess(postgres_url, tmp_path / "server")
    server.start()
    assert server.process is not None
    server_pid = server.process.pid
    database = make_url(postgres_url).database
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    locker = create_engine(postgres_url)
    killed: list[int] = []

    def blocked_on_the_lock() -> bool:
        with admin.connect() as connection:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
                    "AND wait_event_type = 'Lock'"
                ),
                {"db": database},
            )
            return int(waiting.one()[0]) > 0

    def cut_in_flight() -> None:
        for _ in range(4):
            with locker.begin() as holding:
                holding.execute(text("LOCK TABLE batch_receipt IN ACCESS EXCLUSIVE MODE"))
                holder = holding.execute(text("SELECT pg_backend_pid()")).scalar()
                wait_for(blocked_on_the_lock, 30, "a batch to wait inside its transaction")
                with admin.connect() as connection:
                    cut = connection.execute(
                        text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = :db AND pid <> :holder"
                        ),
                        {"db": database, "holder": holder},
                    )
                    killed.append(int(cut.one()[0]))

    settings = agent_settings(tmp_path, server, key, flush_timeout_s=60)
    sender_for(settings, timing=QUICK_RETRIES)
    source = ConstantPowerSource(POWER_W, component=Component.GPU, name="test gpu")
    breaker = threading.Thread(target=cut_in_flight)
    try:
        with carbon.track(project="p", name="cut", settings=settings, sources=[source]) as run:
            breaker.start()
            breaker.join(150)
            time.sleep(1.5)  # batches after the last cut
            run.step(samples=10)
        assert server.process.poll() is None  # the same server process all along
        assert server.process.pid == server_pid
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    finally:
        server.stop()
        locker.dispose()
        admin.dispose()
        close_senders(0, settings.spool_path)
    assert len(killed) == 4
    assert min(killed) >= 1
    refused = server.log.read_text().count(f"POST /api/v1/runs/{run.id}/batches: answered 503")
    assert refused >= 4  # each cut failed a batch mid-way; the agent sent it again
    close_stores()  # this process's pooled connections were cut too
    stored, seqs, sample_j = stored_run(postgres_url, run.id)
    assert len(seqs) >= 4
    assert seqs == list(range(len(seqs)))  # each batch once, none missing
    assert stored.status == "completed"
    assert stored.duration_s is not None
    assert stored.energy_j == pytest.approx(POWER_W * stored.duration_s, rel=1e-9)
    assert sample_j == pytest.approx(stored.energy_j, rel=1e-9)
