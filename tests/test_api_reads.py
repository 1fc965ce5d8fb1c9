"""Reading runs through the API: the same JSON as the CLI, only the caller's team's runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carbon import wire
from carbon.store import open_store
from carbon.store.queries import list_runs
from carbon.store.summary import run_summary
from carbon.store.teams import get_team
from tests.api_helpers import (
    CPU_MODEL,
    GPU_MODEL,
    INTENSITY_G_PER_KWH,
    POWER_W,
    PUE,
    TestClient,
    api,
    batch,
    bearer,
    body,
    make_key,
    run_end,
    run_start,
)

J_PER_KWH = 3_600_000.0


def _send(
    client: TestClient, key: str, start: wire.RunStart, seconds: int, *, end: bool = True
) -> None:
    assert client.post("/api/v1/runs", json=body(start), headers=bearer(key)).status_code == 201
    sent = batch(start.id, 0, seconds=seconds)
    answer = client.post(f"/api/v1/runs/{start.id}/batches", json=body(sent), headers=bearer(key))
    assert answer.json()["stored"] is True
    if end:
        ended = client.post(
            f"/api/v1/runs/{start.id}/end", json=body(run_end(start.id)), headers=bearer(key)
        )
        assert ended.status_code == 200


def _co2e_g(energy_j: float) -> float:
    return energy_j / J_PER_KWH * PUE * INTENSITY_G_PER_KWH


@pytest.fixture
def two_teams(store_url: str, tmp_path: Path) -> dict[str, Any]:
    """acme: three runs (two projects, two regions); globex: one run."""
    acme = make_key(store_url, "acme", "ingest")
    globex = make_key(store_url, "globex", "ingest")
    now = datetime.now(UTC)
    starts = {
        "old": run_start(project="bert", name="old", started_at=now - timedelta(days=2)),
        "new": run_start(project="bert", name="new", started_at=now - timedelta(hours=1)),
        "nowhere": run_start(project="gpt", name="nowhere", started_at=now, region=None),
        "theirs": run_start(project="bert", name="theirs", started_at=now),
    }
    with api(store_url, tmp_path / "ingest") as client:
        _send(client, acme, starts["old"], 10)
        _send(client, acme, starts["new"], 20, end=False)
        _send(client, acme, starts["nowhere"], 25)
        _send(client, globex, starts["theirs"], 40)
    return {"starts": starts, "reader": make_key(store_url, "acme", "read")}


def test_runs_list_is_the_teams_runs_newest_first_with_filters(
    store_url: str, tmp_path: Path, two_teams: dict[str, Any]
) -> None:
    starts, reader = two_teams["starts"], bearer(two_teams["reader"])
    with api(store_url, tmp_path) as client:
        listed = client.get("/api/v1/runs", headers=reader).json()
        assert [r["name"] for r in listed] == ["nowhere", "new", "old"]  # not globex's
        with open_store(store_url).session() as session:
            acme_id = get_team(session, "acme").id
            expected = [run_summary(run) for run in list_runs(session, team_id=acme_id)]
        assert listed == json.loads(json.dumps(expected))

        def names(**query: Any) -> list[str]:
            answer = client.get("/api/v1/runs", params=query, headers=reader)
            assert answer.status_code == 200, answer.text
            return [run["name"] for run in answer.json()]

        assert names(project="bert") == ["new", "old"]
        assert names(status="running") == ["new"]
        assert names(kind="inference") == []
        assert names(limit=1) == ["nowhere"]
        since = starts["new"].started_at - timedelta(minutes=1)
        assert names(since=since.isoformat()) == ["nowhere", "new"]
        assert names(since=since.replace(tzinfo=None).isoformat()) == ["nowhere", "new"]  # UTC
        too_many = client.get("/api/v1/runs", params={"limit": 1001}, headers=reader)
        assert too_many.status_code == 422
        assert too_many.json()["detail"][0]["loc"] == ["query", "limit"]
        bad_kind = client.get("/api/v1/runs", params={"kind": "eval"}, headers=reader)
        assert bad_kind.json()["detail"][0]["loc"] == ["query", "kind"]


def test_one_run_by_id_or_prefix_and_never_another_teams(
    store_url: str, tmp_path: Path, two_teams: dict[str, Any]
) -> None:
    starts, reader = two_teams["starts"], bearer(two_teams["reader"])
    old = starts["old"]
    with api(store_url, tmp_path) as client:
        full = client.get(f"/api/v1/runs/{old.id}", headers=reader).json()
        assert client.get(f"/api/v1/runs/{old.id[:8]}", headers=reader).json() == full
        assert full["energy_j"] == pytest.approx(sum(POWER_W) * 10, rel=1e-12)
        assert full["co2e_g"] == pytest.approx(_co2e_g(sum(POWER_W) * 10), rel=1e-9)
        assert full["status"] == "completed"
        assert [d["name"] for d in full["devices"]] == [GPU_MODEL, GPU_MODEL, CPU_MODEL]
        for hidden in (starts["theirs"].id, starts["theirs"].id[:8], old.id[:5], "f" * 32):
            answer = client.get(f"/api/v1/runs/{hidden}", headers=reader)
            assert answer.status_code == 404, hidden
            assert "no run" in answer.json()["detail"]


def test_compare_gives_runs_side_by_side_in_the_order_asked(
    store_url: str, tmp_path: Path, two_teams: dict[str, Any]
) -> None:
    starts, reader = two_teams["starts"], bearer(two_teams["reader"])
    ids = [starts["nowhere"].id, starts["old"].id[:7], starts["new"].id]
    with api(store_url, tmp_path) as client:
        answer = client.get("/api/v1/compare", params={"ids": ",".join(ids)}, headers=reader)
        assert answer.status_code == 200
        runs = answer.json()["runs"]
        assert [r["name"] for r in runs] == ["nowhere", "old", "new"]
        assert [r["energy_j"] for r in runs] == pytest.approx(
            [sum(POWER_W) * s for s in (25, 10, 20)]
        )
        for wrong in (ids[0], ",".join([ids[0]] * 21)):
            refused = client.get("/api/v1/compare", params={"ids": wrong}, headers=reader)
            assert refused.status_code == 422
            assert refused.json()["detail"][0]["loc"] == ["query", "ids"]
        theirs = f"{ids[0]},{starts['theirs'].id}"
        assert (
            client.get("/api/v1/compare", params={"ids": theirs}, headers=reader).status_code == 404
        )


def test_projects_hardware_and_regions_total_the_teams_runs(
    store_url: str, tmp_path: Path, two_teams: dict[str, Any]
) -> None:
    reader = bearer(two_teams["reader"])
    watts = sum(POWER_W)
    with api(store_url, tmp_path) as client:
        projects = client.get("/api/v1/projects", headers=reader).json()
        hardware = client.get("/api/v1/hardware", headers=reader).json()
        regions = client.get("/api/v1/regions", headers=reader).json()
        team = client.get("/api/v1/team", headers=reader).json()
    bert_j, gpt_j = watts * 30, watts * 25
    assert projects == [
        {"name": "bert", "runs": 2, "energy_j": bert_j, "co2e_g": pytest.approx(_co2e_g(bert_j))},
        {"name": "gpt", "runs": 1, "energy_j": gpt_j, "co2e_g": None},
    ]
    gpu_j, cpu_j = (POWER_W[0] + POWER_W[1]) * 55, POWER_W[2] * 55
    assert hardware == [
        {"component": "cpu", "name": CPU_MODEL, "runs": 3, "energy_j": pytest.approx(cpu_j)},
        {"component": "gpu", "name": GPU_MODEL, "runs": 3, "energy_j": pytest.approx(gpu_j)},
    ]
    assert regions == [  # most energy first
        {"region": "FR", "runs": 2, "energy_j": bert_j, "co2e_g": pytest.approx(_co2e_g(bert_j))},
        {"region": None, "runs": 1, "energy_j": gpt_j, "co2e_g": None},
    ]
    assert team["team"] == "acme"
    assert team["role"] == "read"
    assert two_teams["reader"].startswith(team["key_prefix"])


def test_local_server_lists_what_the_cli_lists(store_url: str, tmp_path: Path) -> None:
    """In local mode the API's list is, field for field, `carbon runs list --json`."""
    with api(store_url, tmp_path, require_auth=False) as client:
        for seconds in (3, 6):
            _send(client, "unused", run_start(name=f"run-{seconds}"), seconds)
        listed = client.get("/api/v1/runs").json()
    env = {**os.environ, "CARBON_DATABASE_URL": store_url, "CARBON_HOME": str(tmp_path)}
    cli = subprocess.run(
        [sys.executable, "-m", "carbon", "runs", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert listed == json.loads(cli.stdout)
    assert [run["name"] for run in listed] == ["run-6", "run-3"]
