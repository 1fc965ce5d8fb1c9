"""What the server refuses: large bodies, floods, bad JSON and records that make no sense.

Every refusal is a 4xx naming what is wrong (a 422's ``loc`` names the field), and leaves
the database as it was: row counts are compared before and after.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carbon import wire
from carbon.server.app import create_app
from carbon.settings import load_settings
from tests.api_helpers import (
    TestClient,
    api,
    batch,
    bearer,
    body,
    make_key,
    new_run_id,
    row_counts,
    run_end,
    run_start,
)


@pytest.fixture
def started(store_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, str, wire.RunStart]]:
    """A server, an ingest key, and a run started (rank 0) with one batch stored."""
    key = make_key(store_url, "acme", "ingest")
    start = run_start()
    with api(store_url, tmp_path, max_body_mb=0.05) as client:
        assert client.post("/api/v1/runs", json=body(start), headers=bearer(key)).status_code == 201
        first = client.post(
            f"/api/v1/runs/{start.id}/batches", json=body(batch(start.id, 0)), headers=bearer(key)
        )
        assert first.status_code == 200
        yield client, key, start


def _post_raw(client: TestClient, path: str, key: str, content: bytes | str) -> Any:
    headers = bearer(key) | {"Content-Type": "application/json"}
    return client.post(path, content=content, headers=headers)


def _loc(answer: Any) -> list[Any]:
    return list(answer.json()["detail"][0]["loc"])


def test_a_body_over_the_limit_is_refused_whether_its_length_is_given_or_not(
    store_url: str, started: tuple[TestClient, str, wire.RunStart]
) -> None:
    client, key, start = started
    large = json.dumps(body(batch(start.id, 1, seconds=1000))).encode()
    assert len(large) > 50_000
    path = f"/api/v1/runs/{start.id}/batches"
    before = row_counts(store_url)
    declared = _post_raw(client, path, key, large)
    assert declared.status_code == 413
    assert "0.05 MB" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for at in range(0, len(large), 4096):
            yield large[at : at + 4096]

    streamed = client.post(
        path, content=chunks(), headers=bearer(key) | {"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert row_counts(store_url) == before
    small = _post_raw(client, path, key, json.dumps(body(batch(start.id, 1, seconds=5))))
    assert small.status_code == 200


def test_a_key_over_its_rate_waits_for_retry_after(store_url: str, tmp_path: Path) -> None:
    key = make_key(store_url, "acme", "read")
    other = make_key(store_url, "acme", "read")
    with api(store_url, tmp_path, rate_limit_per_s=0.5) as client:  # a bucket of 1
        assert client.get("/api/v1/team", headers=bearer(key)).status_code == 200
        limited = client.get("/api/v1/team", headers=bearer(key))
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 2
        assert "requests a second" in limited.json()["detail"]
        assert client.get("/api/v1/team", headers=bearer(other)).status_code == 200  # own bucket


INVALID_BATCHES = [
    # (what is wrong, text replaced in the batch's JSON, its replacement, the 422's loc)
    ("nan-energy", '"sample_energy_j":[300.0', '"sample_energy_j":[NaN', ["body"]),
    ("infinite-duration", '"duration_s":5.0', '"duration_s":Infinity', ["body"]),
    ("minus-infinity", '"failed_devices":{}', '"failed_devices":{"0":-Infinity}', ["body"]),
    ("truncated", '"gaps":[]}', '"gaps":[]', ["body"]),
    ("seq-type", '"seq":1', '"seq":"one"', ["body", "seq"]),
    ("negative-energy", '"sample_energy_j":[300.0', '"sample_energy_j":[-300.0', ["body"]),
    ("no-such-device", '"sample_device":[0', '"sample_device":[7', ["body", "sample_device"]),
    (
        "energy-columns",
        '"device_energy_j":[1500.0,',
        '"device_energy_j":[',
        ["body", "totals", "device_energy_j"],
    ),
    ("out-of-order", '"sample_offset_s":[1.0,2.0', '"sample_offset_s":[2.0,1.0', ["body"]),
    ("negative-steps", '"steps":5', '"steps":-5', ["body", "totals", "steps"]),
    ("unknown-field", '"rank":0', '"rank":0,"extra":1', ["body", "extra"]),
]


@pytest.mark.parametrize(
    ("old", "new", "loc_start"),
    [pytest.param(old, new, loc, id=name) for name, old, new, loc in INVALID_BATCHES],
)
def test_an_invalid_batch_is_refused_naming_the_field_and_stores_nothing(
    store_url: str,
    started: tuple[TestClient, str, wire.RunStart],
    old: str,
    new: str,
    loc_start: list[Any],
) -> None:
    client, key, start = started
    text = json.dumps(body(batch(start.id, 1)), separators=(",", ":"))
    assert old in text
    before = row_counts(store_url)
    answer = _post_raw(client, f"/api/v1/runs/{start.id}/batches", key, text.replace(old, new, 1))
    assert answer.status_code == 422, answer.text
    if "NaN" in new or "Infinity" in new:  # refused by the parser, not by a model
        assert answer.json()["detail"][0]["type"] == "json_invalid"
    assert _loc(answer)[: len(loc_start)] == loc_start
    assert row_counts(store_url) == before


def test_nan_in_a_free_form_field_is_refused_too(
    store_url: str, started: tuple[TestClient, str, wire.RunStart]
) -> None:
    """``hardware`` takes any JSON: the literal NaN is refused by the parser itself."""
    client, key, _ = started
    start = body(run_start())
    text = json.dumps(start).replace('"hardware": {}', '"hardware": {"tdp_w": NaN}')
    before = row_counts(store_url)
    answer = _post_raw(client, "/api/v1/runs", key, text)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "json_invalid"
    assert "NaN" in answer.json()["detail"][0]["ctx"]["error"]
    assert row_counts(store_url) == before


def test_far_future_times_are_refused(
    store_url: str, started: tuple[TestClient, str, wire.RunStart]
) -> None:
    client, key, start = started
    before = row_counts(store_url)
    future = run_start(started_at=datetime.now(UTC) + timedelta(hours=1))
    answer = client.post("/api/v1/runs", json=body(future), headers=bearer(key))
    assert answer.status_code == 422
    assert _loc(answer) == ["body", "started_at"]
    late = batch(start.id, 1, seconds=5, first_s=3600)  # the run started just now
    answer = client.post(f"/api/v1/runs/{start.id}/batches", json=body(late), headers=bearer(key))
    assert answer.status_code == 422
    assert _loc(answer) == ["body", "totals", "duration_s"]
    assert row_counts(store_url) == before
    soon = run_start(started_at=datetime.now(UTC) + timedelta(minutes=5))  # clock skew: fine
    assert client.post("/api/v1/runs", json=body(soon), headers=bearer(key)).status_code == 201


def test_an_oversized_batch_is_refused(store_url: str, tmp_path: Path) -> None:
    key = make_key(store_url, "acme", "ingest")
    rows = wire.MAX_BATCH_ROWS + 1
    record = body(batch(new_run_id(), 0, seconds=1))
    record |= {
        "sample_device": [0] * rows,
        "sample_offset_s": [1.0] * rows,
        "sample_interval_s": [1.0] * rows,
        "sample_energy_j": [1.0] * rows,
        "sample_utilization": [None] * rows,
    }
    before = row_counts(store_url)
    with api(store_url, tmp_path) as client:
        answer = client.post(
            f"/api/v1/runs/{record['run_id']}/batches", json=record, headers=bearer(key)
        )
    assert answer.status_code == 422
    assert _loc(answer) == ["body", "sample_device"]
    assert row_counts(store_url) == before


def test_unknown_runs_and_ranks_are_not_found(
    store_url: str, started: tuple[TestClient, str, wire.RunStart]
) -> None:
    client, key, start = started
    unknown = new_run_id()
    before = row_counts(store_url)
    records: list[tuple[str, dict[str, Any]]] = [
        (f"/api/v1/runs/{unknown}/batches", body(batch(unknown, 0))),
        (f"/api/v1/runs/{unknown}/end", body(run_end(unknown))),
        (f"/api/v1/runs/{unknown}/heartbeat", {"rank": 0}),
        (f"/api/v1/runs/{start.id}/batches", body(batch(start.id, 0, rank=1))),
        (f"/api/v1/runs/{start.id}/end", body(run_end(start.id, rank=1))),
    ]
    for path, record in records:
        answer = client.post(path, json=record, headers=bearer(key))
        assert answer.status_code == 404, path
        assert "run" in answer.json()["detail"]
    assert row_counts(store_url) == before


def test_the_path_and_the_body_must_name_the_same_run(
    store_url: str, started: tuple[TestClient, str, wire.RunStart]
) -> None:
    client, key, start = started
    other = new_run_id()
    before = row_counts(store_url)
    for path, record in (
        (f"/api/v1/runs/{other}/batches", body(batch(start.id, 1))),
        (f"/api/v1/runs/{other}/end", body(run_end(start.id))),
    ):
        answer = client.post(path, json=record, headers=bearer(key))
        assert answer.status_code == 422
        assert _loc(answer) == ["body", "run_id"]
    assert row_counts(store_url) == before


def test_an_unreachable_database_is_503_with_retry_after(tmp_path: Path) -> None:
    """The agent retries 5xx: a database away must never be a 500 (or a lost record)."""
    url = "postgresql+psycopg://carbon@127.0.0.1:9/carbon"  # nothing listens on port 9
    for require_auth in (True, False):
        settings = load_settings(home=tmp_path, database_url=url)
        with TestClient(create_app(settings, require_auth=require_auth)) as client:
            health = client.get("/healthz")
            assert health.status_code == 503
            assert health.json()["database"] == "unreachable"
            start = run_start()
            answers = [
                client.post("/api/v1/runs", json=body(start), headers=bearer("cbn_x")),
                client.get("/api/v1/runs", headers=bearer("cbn_y")),
            ]
            for answer in answers:
                assert answer.status_code == 503, answer.text
                assert int(answer.headers["Retry-After"]) >= 1
                assert "unavailable" in answer.json()["detail"]


def test_a_value_too_long_for_its_column_is_refused_not_retried(
    store_url: str, started: tuple[TestClient, str, wire.RunStart]
) -> None:
    """A 300-character host is refused by the wire format (a 422: retrying cannot help).

    The bound is the column's, so SQLite (which would keep it) and PostgreSQL (which would
    refuse it at insert) answer alike, and nothing is stored.
    """
    client, key, _ = started
    long_host = run_start().model_copy(update={"host": "h" * 300})
    before = row_counts(store_url)
    answer = client.post("/api/v1/runs", json=body(long_host), headers=bearer(key))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "host"]
    assert row_counts(store_url) == before


@pytest.mark.parametrize("path", ["/_dash-update-component", "/login", "/api/v1/runs"])
def test_the_body_limit_holds_for_the_dashboard_too(
    store_url: str, tmp_path: Path, path: str
) -> None:
    """Chunked or not, a large body gets the same 413 from the API and the dashboard."""
    key = make_key(store_url, "acme", "admin")
    large = b'{"output": "' + b"a" * 20_000 + b'"}'

    def chunks() -> Iterator[bytes]:
        for at in range(0, len(large), 4096):
            yield large[at : at + 4096]

    headers = bearer(key) | {"Content-Type": "application/json"}
    before = row_counts(store_url)
    with api(store_url, tmp_path, max_body_mb=0.01) as client:
        for content in (large, chunks()):
            answer = client.post(path, content=content, headers=headers)
            assert answer.status_code == 413, answer.text
            assert "0.01 MB" in answer.json()["detail"]
        small = client.post("/api/v1/runs", json=body(run_start()), headers=bearer(key))
        assert small.status_code == 201
    assert row_counts(store_url)["run"] == before["run"] + 1
