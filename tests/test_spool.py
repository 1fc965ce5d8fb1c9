"""The agent's on-disk spool: order, bound, several processes, dead owners, refused records."""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing
import os
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from carbon import wire
from carbon.errors import StoreError
from carbon.remote.owner import Owner
from carbon.remote.spool import BYTES_PER_MB, Spool

SPAWN = multiprocessing.get_context("spawn")


def run_start(run_id: str, rank: int = 0) -> wire.RunStart:
    return wire.RunStart(
        id=run_id,
        project="digits",
        name="mlp",
        kind="training",
        started_at=datetime(2025, 1, 1, tzinfo=UTC),
        host="node-1",
        region="FR",
        pue=1.0,
        intensity=None,
        sample_hz=10.0,
        carbon_version="0.1.0",
        rank=rank,
        devices=[
            wire.DeviceSpec(
                position=0,
                component="cpu",
                name="cpu",
                method="tdp_estimate",
                provenance="estimated",
                detail="test",
            )
        ],
    )


def batch(run_id: str, seq: int, *, samples: int = 3, rank: int = 0) -> wire.Batch:
    offsets = [seq + (i + 1) / samples for i in range(samples)]
    return wire.Batch(
        run_id=run_id,
        rank=rank,
        seq=seq,
        sample_device=[0] * samples,
        sample_offset_s=offsets,
        sample_interval_s=[1.0 / samples] * samples,
        sample_energy_j=[2.5] * samples,
        sample_utilization=[0.5] * samples,
        work_offset_s=[seq + 1.0],
        work_interval_s=[1.0],
        work_steps=[4],
        work_samples=[128],
        work_tokens=[0],
        work_flops=[1e9],
        windows=[wire.WindowRecord(name="eval", start_s=0.0, duration_s=0.5, steps=1)],
        totals=wire.Totals(
            duration_s=seq + 1.0,
            device_energy_j=[7.5 * (seq + 1)],
            steps=4 * (seq + 1),
            warnings=["no region set"],
        ),
        failed_devices={0: "gone"} if seq == 2 else {},
    )


def run_end(run_id: str, rank: int = 0) -> wire.RunEnd:
    return wire.RunEnd(
        run_id=run_id, rank=rank, status="completed", ended_at=datetime(2025, 1, 1, tzinfo=UTC)
    )


def new_run_id() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool.db", max_bytes=100 * BYTES_PER_MB)


def test_records_come_back_in_order_and_delete_forgets_them(spool: Spool) -> None:
    run_id = new_run_id()
    records: list[Any] = [run_start(run_id), *(batch(run_id, s) for s in range(3)), run_end(run_id)]
    ids = [spool.append(record) for record in records]

    assert ids == sorted(ids)
    pending = spool.pending()
    assert [(r.kind, r.seq) for r in pending] == [
        ("start", None),
        ("batch", 0),
        ("batch", 1),
        ("batch", 2),
        ("end", None),
    ]
    assert [r.id for r in pending] == ids
    assert wire.RunStart.model_validate_json(pending[0].body) == records[0]
    assert wire.Batch.model_validate_json(pending[3].body) == records[3]
    assert wire.RunEnd.model_validate_json(pending[4].body) == records[4]
    assert spool.count(run_id=run_id) == 5
    assert spool.count(run_id=new_run_id()) == 0

    spool.delete(ids[:2])
    assert [r.seq for r in spool.pending(limit=2)] == [1, 2]
    assert spool.count(spool.owner) == 3


def test_open_runs_close_with_their_end_and_are_forgotten_once_it_is_sent(spool: Spool) -> None:
    first, second = new_run_id(), new_run_id()
    spool.append(run_start(first))
    spool.append(run_start(second, rank=1))
    assert {(r.run_id, r.rank) for r in spool.open_runs()} == {(first, 0), (second, 1)}

    end_id = spool.append(run_end(second, rank=1))
    assert [(r.run_id, r.rank) for r in spool.open_runs()] == [(first, 0)]

    with sqlite3.connect(spool.path) as conn:
        assert conn.execute("SELECT count(*) FROM open_run").fetchone()[0] == 2
    spool.delete([end_id])
    with sqlite3.connect(spool.path) as conn:
        assert conn.execute("SELECT run_id FROM open_run").fetchall() == [(first,)]


def _append_many(path: str, run_id: str, count: int, go: Any) -> None:
    """In a child process: append a start, ``count`` batches and an end."""
    go.wait(60)
    spool = Spool(Path(path), max_bytes=100 * BYTES_PER_MB)
    spool.append(run_start(run_id))
    for seq in range(count):
        spool.append(batch(run_id, seq))
    spool.append(run_end(run_id))
    spool.close()


def test_appends_from_several_processes_are_all_kept_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    run_ids = [new_run_id() for _ in range(4)]
    go = SPAWN.Barrier(len(run_ids))  # all start appending at once
    children = [
        SPAWN.Process(target=_append_many, args=(str(path), run_id, 150, go)) for run_id in run_ids
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0

    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT run_id, kind, seq, owner_pid FROM record ORDER BY id"
        ).fetchall()
    assert len(rows) == 4 * 152
    for run_id, child in zip(run_ids, children, strict=True):
        mine = [(kind, seq, pid) for rid, kind, seq, pid in rows if rid == run_id]
        assert [kind for kind, _, _ in mine] == ["start", *["batch"] * 150, "end"]
        assert [seq for kind, seq, _ in mine if kind == "batch"] == list(range(150))
        assert {pid for _, _, pid in mine} == {child.pid}
    # The processes really did write at the same time: their records interleave.
    owners_in_order = [pid for *_, pid in rows]
    changes = sum(1 for a, b in itertools.pairwise(owners_in_order) if a != b)
    assert changes > 3


def test_a_full_spool_keeps_batches_without_samples_and_says_so(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = new_run_id()
    spool.append(run_start(run_id))
    spool.max_bytes = spool.size_bytes() + 100  # the next sizeable batch does not fit
    caplog.set_level(logging.ERROR, logger="carbon.remote.spool")

    full = batch(run_id, 2, samples=400)
    spool.append(full)
    spool.append(batch(run_id, 3, samples=400))

    pending = spool.pending()
    assert [r.kind for r in pending] == ["start", "batch", "batch"]
    kept = wire.Batch.model_validate_json(pending[1].body)
    assert kept.sample_device == kept.sample_energy_j == kept.sample_utilization == []
    assert kept.work_offset_s == kept.work_steps == kept.work_flops == []
    assert kept.totals.device_energy_j == full.totals.device_energy_j == [22.5]
    assert kept.totals.steps == 12
    assert kept.windows == full.windows
    assert kept.failed_devices == {0: "gone"}
    megabytes = f"{spool.max_bytes / BYTES_PER_MB:g}"
    line = (
        f"the agent's spool was full ({megabytes} MB): per-second samples from 2.0 s on were "
        "not all kept; totals are complete"
    )
    assert kept.totals.warnings == ["no region set", line]

    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # once per run, not once per batch
    assert str(spool.path) in errors[0].getMessage()
    assert "CARBON_SPOOL_MAX_MB" in errors[0].getMessage()

    # Each batch kept without samples carries the gap, from the first one's start on.
    def reason() -> str:
        return (
            "spool full: per-second samples not kept (the agent's spool reached "
            f"CARBON_SPOOL_MAX_MB={spool.max_bytes / BYTES_PER_MB:g})"
        )

    next_kept = wire.Batch.model_validate_json(pending[2].body)
    assert kept.gaps == [wire.Gap(start_s=2.0, end_s=3.0, reason=reason())]
    assert next_kept.gaps == [wire.Gap(start_s=2.0, end_s=4.0, reason=reason())]

    # Room again: samples are kept, and the run's warnings still say what was lost.
    spool.delete([r.id for r in pending])
    spool.max_bytes = 100 * BYTES_PER_MB
    spool.append(batch(run_id, 4))
    later = wire.Batch.model_validate_json(spool.pending()[-1].body)
    assert len(later.sample_energy_j) == 3
    assert later.totals.warnings == ["no region set", line]
    assert later.gaps == []  # the gap ended with the last batch kept without samples

    # Full again: a new gap, from this batch on.
    spool.max_bytes = spool.size_bytes() + 100
    spool.append(batch(run_id, 5, samples=400))
    again = wire.Batch.model_validate_json(spool.pending()[-1].body)
    assert again.gaps == [wire.Gap(start_s=5.0, end_s=6.0, reason=reason())]

    # Starts and ends are kept however full the spool is.
    spool.max_bytes = 1
    spool.append(run_end(run_id))
    spool.append(run_start(new_run_id()))
    assert [r.kind for r in spool.pending()] == ["batch", "batch", "end", "start"]


def _leave_a_run_open(path: str, run_id: str) -> None:
    """In a child process: start a run, spool two batches and die without ending it."""
    spool = Spool(Path(path), max_bytes=100 * BYTES_PER_MB)
    spool.append(run_start(run_id))
    spool.append(batch(run_id, 0))
    spool.append(batch(run_id, 1))
    spool.close()


def test_adopt_orphans_takes_over_a_dead_process_and_closes_its_run(spool: Spool) -> None:
    run_id = new_run_id()
    child = SPAWN.Process(target=_leave_a_run_open, args=(str(spool.path), run_id))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert spool.pending() == []

    adoption = spool.adopt_orphans()

    assert adoption.records == 4
    assert adoption.interrupted == [(run_id, 0)]
    pending = spool.pending()
    assert [(r.kind, r.seq) for r in pending] == [
        ("start", None),
        ("batch", 0),
        ("batch", 1),
        ("end", None),
    ]
    end = wire.RunEnd.model_validate_json(pending[-1].body)
    assert end.status == "interrupted"
    assert end.error == (
        f"the agent process {child.pid} on {spool.owner.host} ended without closing the run"
    )
    assert spool.open_runs() == []
    assert spool.adopt_orphans().records == 0


def test_adopt_orphans_leaves_live_processes_and_catches_reused_pids(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    parent = psutil.Process(os.getppid())
    alive = Owner(Owner.current().host, parent.pid, parent.create_time())
    reused = Owner(Owner.current().host, os.getpid(), Owner.current().started_s - 100.0)
    elsewhere = Owner("another-host", 1, 0.0)
    for owner in (alive, reused, elsewhere):
        Spool(path, max_bytes=BYTES_PER_MB, owner=owner).append(run_start(new_run_id()))
    me = Spool(path, max_bytes=BYTES_PER_MB)

    assert alive.is_alive()
    assert not reused.is_alive()
    adoption = me.adopt_orphans()

    assert adoption.records == 2  # the reused pid's start and the interrupted end
    assert me.count(alive) == 1
    assert me.count(elsewhere) == 1
    assert me.count(me.owner) == 2


def test_refused_records_move_to_the_rejected_table(spool: Spool) -> None:
    run_id = new_run_id()
    spool.append(run_start(run_id))
    bad = spool.append(batch(run_id, 0))
    spool.append(batch(run_id, 1))

    spool.reject(bad, "HTTP 422: body.totals: bad", 422)

    assert [r.seq for r in spool.pending()] == [None, 1]
    (rejected,) = spool.rejected()
    assert (rejected.id, rejected.kind, rejected.seq) == (bad, "batch", 0)
    assert rejected.status_code == 422
    assert rejected.reason == "HTTP 422: body.totals: bad"
    assert json.loads(rejected.body)["seq"] == 0


class _BrokenConnection:
    def execute(self, *args: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error")


def test_a_failing_disk_raises_store_error_naming_the_spool(spool: Spool) -> None:
    spool._file._conn = _BrokenConnection()  # type: ignore[assignment]
    with pytest.raises(StoreError, match=r"spool at .*spool\.db cannot store a record: disk I/O"):
        spool.append(run_start(new_run_id()))


def test_a_spool_that_cannot_be_created_raises_store_error(tmp_path: Path) -> None:
    (tmp_path / "spool.db").mkdir()
    with pytest.raises(StoreError, match=r"spool\.db"):
        Spool(tmp_path / "spool.db", max_bytes=BYTES_PER_MB)
