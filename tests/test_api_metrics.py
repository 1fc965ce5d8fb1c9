"""``/metrics``: the counters equal what was ingested, with bounded labels only."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from carbon.store import open_store
from carbon.store.models import Run
from tests.api_helpers import (
    CPU_MODEL,
    GPU_MODEL,
    POWER_W,
    TestClient,
    api,
    batch,
    bearer,
    body,
    make_key,
    run_start,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient, headers: dict[str, str] | None = None) -> Samples:
    """Every sample of ``/metrics``, by name and sorted labels."""
    answer = client.get("/metrics", headers=headers or {})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_equal_the_energy_co2e_and_batches_ingested(
    store_url: str, tmp_path: Path
) -> None:
    acme = make_key(store_url, "acme", "ingest")
    globex = make_key(store_url, "globex", "ingest")
    sent = {("acme", "bert"): 0, ("acme", "gpt"): 0, ("globex", "bert"): 0}
    run_ids = []
    with api(store_url, tmp_path) as client:
        for (team, project), key in zip(sent, (acme, acme, globex), strict=True):
            start = run_start(project=project)
            run_ids.append(start.id)
            client.post("/api/v1/runs", json=body(start), headers=bearer(key))
            seconds = {"bert": 4, "gpt": 7}[project]
            for seq in range(3):
                record = batch(start.id, seq, seconds=seconds, first_s=seconds * seq)
                path = f"/api/v1/runs/{start.id}/batches"
                assert client.post(path, json=body(record), headers=bearer(key)).status_code == 200
            sent[(team, project)] = 3 * seconds
        retry = batch(run_ids[0], 0, seconds=4)
        client.post(f"/api/v1/runs/{run_ids[0]}/batches", json=body(retry), headers=bearer(acme))
        wrong = body(batch(run_ids[0], 9)) | {"seq": -1}
        client.post(f"/api/v1/runs/{run_ids[0]}/batches", json=wrong, headers=bearer(acme))
        unknown = batch("0" * 32, 0)
        client.post(f"/api/v1/runs/{'0' * 32}/batches", json=body(unknown), headers=bearer(acme))
        samples = scrape(client)

    for (team, project), seconds in sent.items():
        gpu_j = value(
            samples,
            "carbon_energy_joules_total",
            team=team,
            project=project,
            component="gpu",
            device_model=GPU_MODEL,
        )
        cpu_j = value(
            samples,
            "carbon_energy_joules_total",
            team=team,
            project=project,
            component="cpu",
            device_model=CPU_MODEL,
        )
        assert gpu_j == pytest.approx((POWER_W[0] + POWER_W[1]) * seconds, rel=1e-12)
        assert cpu_j == pytest.approx(POWER_W[2] * seconds, rel=1e-12)
    with open_store(store_url).session() as session:
        stored_g = {run_id: session.get(Run, run_id).co2e_g for run_id in run_ids}  # type: ignore[union-attr]
    for (team, project), run_id in zip(sent, run_ids, strict=True):
        counted_g = value(samples, "carbon_co2e_grams_total", team=team, project=project)
        assert counted_g == pytest.approx(stored_g[run_id], rel=1e-9)
        assert counted_g > 0
    assert value(samples, "carbon_ingest_batches_total", outcome="stored") == 9
    assert value(samples, "carbon_ingest_batches_total", outcome="duplicate") == 1
    assert value(samples, "carbon_ingest_batches_total", outcome="rejected") == 2
    assert value(samples, "carbon_ingest_samples_total") == 3 * sum(sent.values())
    assert value(samples, "carbon_ingest_batch_duration_seconds_count") == 10
    batches_route = "/api/v1/runs/{run_id}/batches"
    ok = value(
        samples, "carbon_http_requests_total", route=batches_route, method="POST", status="200"
    )
    assert ok == 10
    labels = [dict(key[1]) for key in samples if key[0] == "carbon_http_requests_total"]
    assert all(run_id not in str(label) for label in labels for run_id in run_ids)
    assert {label["route"] for label in labels} >= {"/api/v1/runs", batches_route}


def test_metrics_ask_for_their_token_when_one_is_set(store_url: str, tmp_path: Path) -> None:
    with api(store_url, tmp_path, metrics_token="s3cret-token") as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=bearer("wrong")).status_code == 401
        assert (
            "carbon_ingest_batches" in client.get("/metrics", headers=bearer("s3cret-token")).text
        )


def test_silent_runs_are_marked_interrupted_and_counted(store_url: str, tmp_path: Path) -> None:
    key = make_key(store_url, "acme", "ingest")
    start = run_start(started_at=datetime.now(UTC) - timedelta(minutes=5))
    with api(store_url, tmp_path, heartbeat_timeout_s=0.3, maintenance_interval_s=0.1) as client:
        client.post("/api/v1/runs", json=body(start), headers=bearer(key))
        deadline = time.monotonic() + 20
        while value(scrape(client), "carbon_runs_interrupted_total") < 1:
            assert time.monotonic() < deadline, "maintenance never marked the silent run"
            time.sleep(0.1)
        assert value(scrape(client), "carbon_runs_interrupted_total") == 1
    with open_store(store_url).session() as session:
        run = session.get(Run, start.id)
        assert run is not None
        assert run.status == "interrupted"
