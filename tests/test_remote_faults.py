"""The remote agent against a live ``carbon serve``: nothing lost, nothing doubled.

Each test runs a real server in a child process and a real tracked run, then breaks
something on the way: the server is down for the whole run, the training process is killed
with SIGKILL, the database goes away during ingest. Energy is checked against the exact
integral of a constant-power source (power x duration), and batches against their receipts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

import carbon
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
from tests.test_cli import cli

POWER_W = 250.0


@pytest.fixture
def ingest_key(store_url: str) -> str:
    """An ingest key of a new team in the test's store (so the server requires keys)."""
    with open_store(store_url).session() as session:
        team = create_team(session, "acme")
        _, key = create_key(session, team, "agents", "ingest")
    return key


def _agent_settings(tmp_path: Path, server: ServerProcess, key: str, **extra: object) -> Settings:
    return load_settings(
        home=tmp_path / "agent",
        server_url=server.url,
        api_key=key,
        region="FR",
        sample_hz=20,
        **extra,
    )


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _stored(store_url: str, run_id: str) -> tuple[Run, list[int], float]:
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
    settings = _agent_settings(tmp_path, server, ingest_key, flush_timeout_s=0.5)
    source = ConstantPowerSource(POWER_W, component=Component.GPU, name="test gpu")
    with carbon.track(project="p", name="offline", settings=settings, sources=[source]) as run:
        time.sleep(2.0)
        run.step(samples=64)
    spool = Spool(settings.spool_path)
    spooled = spool.count(run_id=run.id)
    assert spooled >= 4  # the start, at least two batches, the end: all kept on disk
    server.start()
    try:
        _wait_for(lambda: spool.count(run_id=run.id) == 0, 60, "the spool to drain")
    finally:
        spool.close()
        server.stop()
    stored, seqs, sample_j = _stored(store_url, run.id)
    assert seqs == list(range(len(seqs)))
    assert len(seqs) == spooled - 2
    assert stored.status == "completed"
    assert stored.samples == 64
    assert stored.duration_s is not None
    assert stored.energy_j == pytest.approx(POWER_W * stored.duration_s, rel=1e-9)
    assert sample_j == pytest.approx(stored.energy_j, rel=1e-9)


_KILLED = textwrap.dedent(
    """
    import sys, time
    import carbon
    from carbon.sources.base import Component
    from carbon.testing import ConstantPowerSource

    source = ConstantPowerSource(float(sys.argv[1]), component=Component.GPU, name="test gpu")
    with carbon.track(project="p", name="killed", sources=[source]) as run:
        print(run.id, flush=True)
        while True:
            time.sleep(0.05)
            run.step(samples=1)
    """
)


def test_sigkill_mid_run_loses_nothing_spooled_and_sync_ends_it_interrupted(
    store_url: str, ingest_key: str, tmp_path: Path
) -> None:
    server = ServerProcess(store_url, tmp_path / "server")
    agent_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CARBON_")},
        "CARBON_HOME": str(tmp_path / "agent"),
        "CARBON_SERVER_URL": server.url,
        "CARBON_API_KEY": ingest_key,
        "CARBON_REGION": "FR",
        "CARBON_SAMPLE_HZ": "20",
    }
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED, str(POWER_W)],
        env=agent_env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    spool = Spool(tmp_path / "agent" / "spool.db")
    try:
        _wait_for(lambda: spool.count(run_id=run_id) >= 4, 30, "three batches in the spool")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        spooled = spool.count(run_id=run_id)
    finally:
        spool.close()
        child.kill()
        child.wait(timeout=10)
        child.stdout.close()
    server.start()
    try:
        result = cli("sync", env={k: v for k, v in agent_env.items() if k != "CARBON_REGION"})
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    stored, seqs, sample_j = _stored(store_url, run_id)
    assert seqs == list(range(spooled - 1))  # every spooled batch (all but the start)
    assert stored.status == "interrupted"
    assert "ended without closing the run" in (stored.error or "")
    assert stored.duration_s is not None
    assert stored.energy_j == pytest.approx(POWER_W * stored.duration_s, rel=1e-9)
    assert sample_j == pytest.approx(stored.energy_j, rel=1e-9)
    check = Spool(tmp_path / "agent" / "spool.db")
    try:
        assert check.count() == 0
    finally:
        check.close()


@pytest.mark.postgres
def test_database_restart_during_ingest_loses_and_doubles_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE run, project, api_key CASCADE"))
        connection.execute(text("DELETE FROM team WHERE id <> 1"))
    engine.dispose()
    with open_store(postgres_url).session() as session:
        _, key = create_key(session, create_team(session, "acme"), "agents", "ingest")
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

    settings = _agent_settings(tmp_path, server, key, flush_timeout_s=60)
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
    stored, seqs, sample_j = _stored(postgres_url, run.id)
    assert len(seqs) >= 6
    assert seqs == list(range(len(seqs)))  # each batch once, none missing
    assert stored.status == "completed"
    assert stored.duration_s is not None
    assert stored.energy_j == pytest.approx(POWER_W * stored.duration_s, rel=1e-9)
    assert sample_j == pytest.approx(stored.energy_j, rel=1e-9)  # a doubled batch would show
