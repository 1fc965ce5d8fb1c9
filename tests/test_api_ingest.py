"""Ingest through the API: starts, batches, ends and heartbeats, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from sqlalchemy import select

from carbon.store import open_store
from carbon.store.models import DEFAULT_TEAM_ID, BatchReceipt, Run, RunRank
from carbon.store.queries import sample_energy_by_device
from tests.api_helpers import (
    INTENSITY_G_PER_KWH,
    POWER_W,
    PUE,
    api,
    batch,
    batch_energy_j,
    bearer,
    body,
    make_key,
    new_run_id,
    row_counts,
    run_end,
    run_start,
)

J_PER_KWH = 3_600_000.0


def _stored_run(store_url: str, run_id: str) -> Run:
    with open_store(store_url).session() as session:
        run = session.get(Run, run_id)
        assert run is not None
        session.expunge(run)
    return run


def test_a_run_sent_through_the_api_is_stored_exactly_once(store_url: str, tmp_path: Path) -> None:
    key = make_key(store_url, "acme", "ingest")
    start = run_start()
    with api(store_url, tmp_path) as client:
        first = client.post("/api/v1/runs", json=body(start), headers=bearer(key))
        again = client.post("/api/v1/runs", json=body(start), headers=bearer(key))
        assert (first.status_code, first.json()) == (
            201,
            {"run_id": start.id, "rank": 0, "created": True},
        )
        assert (again.status_code, again.json()["created"]) == (200, False)

        sent = [batch(start.id, seq, seconds=4, first_s=4 * seq) for seq in range(3)]
        for record in sent:
            answer = client.post(
                f"/api/v1/runs/{start.id}/batches", json=body(record), headers=bearer(key)
            )
            assert answer.status_code == 200
            assert answer.json() == {
                "run_id": start.id,
                "rank": 0,
                "seq": record.seq,
                "stored": True,
            }
        retried = client.post(
            f"/api/v1/runs/{start.id}/batches", json=body(sent[1]), headers=bearer(key)
        )
        assert retried.json()["stored"] is False

        ended = client.post(
            f"/api/v1/runs/{start.id}/end", json=body(run_end(start.id)), headers=bearer(key)
        )
        assert ended.json() == {"run_id": start.id, "status": "completed"}

    sent_j = math.fsum(batch_energy_j(record) for record in sent)
    assert sent_j == pytest.approx(sum(POWER_W) * 12)
    run = _stored_run(store_url, start.id)
    assert run.status == "completed"
    assert run.energy_j == pytest.approx(sent_j, rel=1e-12)
    assert run.energy_gpu_j == pytest.approx((POWER_W[0] + POWER_W[1]) * 12, rel=1e-12)
    assert run.energy_cpu_j == pytest.approx(POWER_W[2] * 12, rel=1e-12)
    assert run.co2e_g == pytest.approx(sent_j / J_PER_KWH * PUE * INTENSITY_G_PER_KWH, rel=1e-9)
    assert run.steps == 12
    with open_store(store_url).session() as session:
        samples_j = sum(sample_energy_by_device(session, start.id).values())
        seqs = list(
            session.scalars(select(BatchReceipt.seq).where(BatchReceipt.run_id == start.id))
        )
    assert samples_j == pytest.approx(sent_j, rel=1e-12)  # the retry added nothing
    assert sorted(seqs) == [0, 1, 2]
    assert row_counts(store_url)["sample"] == 3 * 3 * 4


def test_another_replica_writes_a_rank_it_did_not_start(store_url: str, tmp_path: Path) -> None:
    """Replicas share nothing but the database: the rank's facts are read back on a miss."""
    key = make_key(store_url, "acme", "ingest")
    start = run_start()
    with api(store_url, tmp_path / "a") as replica_a:
        assert (
            replica_a.post("/api/v1/runs", json=body(start), headers=bearer(key)).status_code == 201
        )
    with api(store_url, tmp_path / "b") as replica_b:
        answer = replica_b.post(
            f"/api/v1/runs/{start.id}/batches", json=body(batch(start.id, 0)), headers=bearer(key)
        )
        assert answer.json()["stored"] is True
    assert _stored_run(store_url, start.id).energy_j == pytest.approx(sum(POWER_W) * 5)


def test_ranks_of_a_job_add_up_and_the_run_ends_with_its_last_rank(
    store_url: str, tmp_path: Path
) -> None:
    key = make_key(store_url, "acme", "ingest")
    run_id = new_run_id()
    with api(store_url, tmp_path) as client:
        for rank in (0, 1):
            start = run_start(run_id, rank=rank, world_size=2)
            assert (
                client.post("/api/v1/runs", json=body(start), headers=bearer(key)).status_code
                == 201
            )
            sent = batch(run_id, 0, seconds=3 + rank, rank=rank)
            answer = client.post(
                f"/api/v1/runs/{run_id}/batches", json=body(sent), headers=bearer(key)
            )
            assert answer.json()["stored"] is True
        first = client.post(
            f"/api/v1/runs/{run_id}/end", json=body(run_end(run_id, rank=0)), headers=bearer(key)
        )
        assert first.json()["status"] == "running"
        last = client.post(
            f"/api/v1/runs/{run_id}/end",
            json=body(run_end(run_id, rank=1, status="failed")),
            headers=bearer(key),
        )
        assert last.json()["status"] == "failed"
    run = _stored_run(store_url, run_id)
    assert run.energy_j == pytest.approx(sum(POWER_W) * (3 + 4), rel=1e-12)
    assert run.status == "failed"


def test_a_heartbeat_keeps_a_rank_alive_and_answers_its_status(
    store_url: str, tmp_path: Path
) -> None:
    key = make_key(store_url, "acme", "ingest")
    start = run_start()
    with api(store_url, tmp_path) as client:
        client.post("/api/v1/runs", json=body(start), headers=bearer(key))
        with open_store(store_url).session() as session:
            before = session.get(RunRank, (start.id, 0))
            assert before is not None
            seen_before = before.last_seen_at
        answer = client.post(
            f"/api/v1/runs/{start.id}/heartbeat", json={"rank": 0}, headers=bearer(key)
        )
        assert answer.json() == {"run_id": start.id, "status": "running"}
        missing = client.post(
            f"/api/v1/runs/{start.id}/heartbeat", json={"rank": 3}, headers=bearer(key)
        )
        assert missing.status_code == 404
    with open_store(store_url).session() as session:
        after = session.get(RunRank, (start.id, 0))
        assert after is not None
        assert seen_before is not None
        assert after.last_seen_at is not None
        assert after.last_seen_at > seen_before


def test_a_run_id_of_another_team_or_project_is_a_conflict(store_url: str, tmp_path: Path) -> None:
    ours = make_key(store_url, "acme", "ingest")
    theirs = make_key(store_url, "globex", "ingest")
    start = run_start(project="bert")
    with api(store_url, tmp_path) as client:
        assert (
            client.post("/api/v1/runs", json=body(start), headers=bearer(ours)).status_code == 201
        )
        counts = row_counts(store_url)
        stolen = client.post("/api/v1/runs", json=body(start), headers=bearer(theirs))
        assert stolen.status_code == 409
        assert start.id in stolen.json()["detail"]
        moved = run_start(start.id, project="other", rank=1, world_size=2)
        assert (
            client.post("/api/v1/runs", json=body(moved), headers=bearer(ours)).status_code == 409
        )
    assert row_counts(store_url) == counts  # neither left a project, rank or device behind


def test_local_mode_needs_no_key_and_writes_the_default_team(
    store_url: str, tmp_path: Path
) -> None:
    start = run_start()
    with api(store_url, tmp_path, require_auth=False) as client:
        assert client.post("/api/v1/runs", json=body(start)).status_code == 201
        stored = client.post(
            f"/api/v1/runs/{start.id}/batches",
            json=body(batch(start.id, 0)),
            headers=bearer("cbn_not-a-key-of-this-store"),  # ignored in local mode
        )
        assert stored.json()["stored"] is True
        assert client.get("/api/v1/team").json() == {
            "team": "default",
            "role": "admin",
            "key_prefix": None,
        }
    run = _stored_run(store_url, start.id)
    assert run.team_id == DEFAULT_TEAM_ID
    assert run.energy_j == pytest.approx(sum(POWER_W) * 5)
