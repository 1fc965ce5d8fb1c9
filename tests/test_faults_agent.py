"""The agent's own faults: its training process killed, its spool full.

A training process killed with SIGKILL leaves its records in the spool and its run open;
``carbon sync`` delivers exactly what was spooled and ends the run ``interrupted``, where
its last spooled batch ends. A spool past ``CARBON_SPOOL_MAX_MB`` keeps the run's totals but
not its per-second samples: training goes on, the agent says so once, and the run records
the gap. Energy is checked against the exact integral of a constant-power source.
"""

from __future__ import annotations

import logging
import math
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

import carbon
from carbon import wire
from carbon.remote.senders import close_senders, sender_for
from carbon.remote.spool import BYTES_PER_MB, Spool
from carbon.sources.base import Component
from carbon.store import open_store
from carbon.store.queries import get_run
from carbon.store.summary import run_summary
from carbon.testing import ConstantPowerSource
from tests.api_helpers import make_key
from tests.server_process import ServerProcess
from tests.test_cli import cli
from tests.test_remote_faults import (
    POWER_W,
    QUICK_RETRIES,
    agent_settings,
    stored_run,
    wait_for,
)

KILL_SEED = 20261202
DEVICES = 24
"""Devices of the spool-full run: about 3 kB of samples a second, so the bound is met soon."""

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


def _spooled(spool_path: Path, run_id: str) -> list[tuple[str, bytes]]:
    """The run's records in the spool file, in order: what a kill left on disk."""
    with sqlite3.connect(spool_path) as connection:
        rows = connection.execute(
            "SELECT kind, body FROM record WHERE run_id = ? ORDER BY id", (run_id,)
        ).fetchall()
    return [(str(kind), bytes(body)) for kind, body in rows]


def _kill_at(delay_s: float, env: dict[str, str]) -> str:
    """Start a tracked training process, SIGKILL it ``delay_s`` after its run started."""
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED, str(POWER_W)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        assert len(run_id) == 32, "the training process did not start its run"
        time.sleep(delay_s)  # the random point of the kill
    finally:
        child.kill()
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    return run_id


def test_sigkill_at_random_points_then_sync_delivers_exactly_what_was_spooled(
    store_url: str, tmp_path: Path
) -> None:
    ingest_key = make_key(store_url, "acme", "ingest")
    server = ServerProcess(store_url, tmp_path / "server")  # away while the runs are killed
    agent_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CARBON_")},
        "CARBON_HOME": str(tmp_path / "agent"),
        "CARBON_SERVER_URL": server.url,
        "CARBON_API_KEY": ingest_key,
        "CARBON_REGION": "FR",
        "CARBON_SAMPLE_HZ": "20",
    }
    spool_path = tmp_path / "agent" / "spool.db"
    rng = random.Random(KILL_SEED)
    spooled: dict[str, list[wire.Batch]] = {}
    for delay_s in (rng.uniform(0.0, 3.0) for _ in range(3)):
        run_id = _kill_at(delay_s, agent_env)
        records = _spooled(spool_path, run_id)
        assert records[0][0] == "start"
        assert "end" not in [kind for kind, _ in records]  # killed: nobody closed the run
        spooled[run_id] = [wire.Batch.model_validate_json(b) for k, b in records if k == "batch"]

    server.start()
    try:
        result = cli("sync", env={k: v for k, v in agent_env.items() if k != "CARBON_REGION"})
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    # Each new training process takes over the records of those killed before it (closing
    # their runs); sync takes over the rest: between them, every run is closed.
    assert result.stdout.rstrip().endswith("the spool is empty")
    for run_id, batches in spooled.items():
        stored, seqs, sample_j = stored_run(store_url, run_id)
        assert seqs == [b.seq for b in batches] == list(range(len(batches)))
        assert stored.status == "interrupted"
        assert "ended without closing the run" in (stored.error or "")
        if not batches:  # killed before its first batch: nothing measured, nothing invented
            assert (stored.duration_s, stored.energy_j) == (None, None)
            continue
        last = batches[-1].totals
        assert stored.duration_s == last.duration_s
        assert stored.energy_j == pytest.approx(math.fsum(last.device_energy_j), rel=1e-12)
        assert stored.energy_j == pytest.approx(POWER_W * last.duration_s, rel=1e-9)
        assert sample_j == pytest.approx(stored.energy_j, rel=1e-9)
        assert stored.ended_at == stored.started_at + timedelta(seconds=last.duration_s)
    check = Spool(spool_path)
    try:
        assert check.count() == 0
    finally:
        check.close()


def _stripped(spool: Spool, run_id: str) -> list[wire.Batch]:
    """The run's spooled batches that were kept without their samples."""
    batches = [
        wire.Batch.model_validate_json(body)
        for kind, body in _spooled(spool.path, run_id)
        if kind == "batch"
    ]
    return [b for b in batches if b.gaps and not b.sample_device]


def test_a_full_spool_keeps_training_and_totals_and_records_the_gap(
    store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ingest_key = make_key(store_url, "acme", "ingest")
    server = ServerProcess(store_url, tmp_path / "server")  # away: the spool fills up
    home = tmp_path / "agent"
    empty = Spool(home / "spool.db")
    bound_bytes = empty.size_bytes() + 24_000  # the start and a few batches
    empty.close()
    settings = agent_settings(
        tmp_path, server, ingest_key, flush_timeout_s=0.5, spool_max_mb=bound_bytes / BYTES_PER_MB
    )
    sender_for(settings, timing=QUICK_RETRIES)
    caplog.set_level(logging.ERROR, logger="carbon.remote.spool")
    source = ConstantPowerSource(POWER_W, component=Component.GPU, name="test gpu", count=DEVICES)
    watcher = Spool(settings.spool_path)
    steps = 0
    try:
        with carbon.track(project="p", name="full", settings=settings, sources=[source]) as run:
            deadline = time.monotonic() + 30
            while len(_stripped(watcher, run.id)) < 2:  # full, and training still going
                assert time.monotonic() < deadline, "the spool never filled up"
                run.step(samples=1)
                steps += 1
                time.sleep(0.05)
        stripped = _stripped(watcher, run.id)
        server.start()
        wait_for(lambda: watcher.count(run_id=run.id) == 0, 30, "the spool to drain")
    finally:
        watcher.close()
        server.stop()
        close_senders(0, settings.spool_path)

    full_errors = [r for r in caplog.records if "CARBON_SPOOL_MAX_MB" in r.getMessage()]
    assert len(full_errors) == 1  # said once, not once a batch
    gap_start_s = stripped[0].gaps[-1].start_s
    assert {b.gaps[-1].start_s for b in stripped} == {gap_start_s}  # one gap, growing

    stored, seqs, sample_j = stored_run(store_url, run.id)
    assert seqs == list(range(len(seqs)))
    assert stored.status == "completed"
    assert stored.steps == steps  # the training loop never waited
    assert stored.duration_s is not None
    assert stored.energy_j == pytest.approx(POWER_W * DEVICES * stored.duration_s, rel=1e-9)
    # Samples stop where the spool filled: exactly the energy up to the gap.
    assert sample_j == pytest.approx(POWER_W * DEVICES * gap_start_s, rel=1e-9)
    assert any(w.startswith("the agent's spool was full") for w in stored.warnings)
    with open_store(store_url).session() as session:
        summary = run_summary(get_run(session, run.id))
    [gap] = summary["gaps"]
    assert (gap["device"], gap["start_s"]) == (None, gap_start_s)
    assert gap["end_s"] == stored.duration_s  # full until the end: every later batch stripped
    assert gap["reason"].startswith("spool full: per-second samples not kept")
