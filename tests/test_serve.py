"""``carbon serve`` as users run it: a real process on a free port, over SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from carbon.cli.serve import MAX_REQUEST_HEAD_BYTES, is_loopback, needs_keys
from carbon.errors import ConfigError
from tests.api_helpers import POWER_W, batch, bearer, body, make_key, run_start


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(database_url: str, home: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CARBON_")}
    return env | {"CARBON_DATABASE_URL": database_url, "CARBON_HOME": str(home), **extra}


@contextmanager
def serving(database_url: str, home: Path, *args: str, **env: str) -> Iterator[tuple[str, Path]]:
    """``carbon serve`` on loopback until the block ends; yields its URL and its log."""
    port = free_port()
    log = home / "serve.log"
    home.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "carbon", "serve", "--port", str(port), *args],
            env=_env(database_url, home, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers too are stopped with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url, log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)


def test_loopback_and_address_rules() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "10.0.0.5", "carbon.example.org"):
        assert not is_loopback(host), host
    assert needs_keys(host="127.0.0.1", sqlite=True, active_keys=0) is False
    assert needs_keys(host="127.0.0.1", sqlite=False, active_keys=0) is True
    assert needs_keys(host="127.0.0.1", sqlite=True, active_keys=1) is True
    assert needs_keys(host="0.0.0.0", sqlite=True, active_keys=1) is True
    with pytest.raises(ConfigError, match="carbon admin create-team"):
        needs_keys(host="0.0.0.0", sqlite=True, active_keys=0)


def test_serve_answers_health_and_decides_about_keys(store_url: str, tmp_path: Path) -> None:
    """Over SQLite with no key it is a local server; over PostgreSQL keys are required."""
    sqlite = store_url.startswith("sqlite")
    with serving(store_url, tmp_path) as (url, log):
        health = httpx.get(f"{url}/healthz").json()
        assert health == {"status": "ok", "database": "ok", "revision": "0005"}
        start = run_start()
        answer = httpx.post(f"{url}/api/v1/runs", json=body(start))
        assert answer.status_code == (201 if sqlite else 401)
        assert httpx.get(f"{url}/openapi.json").json()["info"]["title"] == "carbon team server"
    text = log.read_text()
    assert ("local mode: no key needed" in text) is sqlite
    assert ("no API key exists yet" in text) is not sqlite


def test_serve_migrates_a_new_sqlite_store_and_requires_keys_once_one_exists(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'carbon.db'}"
    with serving(url, tmp_path / "first") as (base, _):
        assert httpx.get(f"{base}/api/v1/team").json()["team"] == "default"
    key = make_key(url, "acme", "admin")
    with serving(url, tmp_path / "second", CARBON_MAX_BODY_MB="0.01") as (base, log):
        assert httpx.get(f"{base}/api/v1/team").status_code == 401
        assert httpx.get(f"{base}/api/v1/team", headers=bearer(key)).json()["team"] == "acme"
        large = (b'{"x": "' + b"a" * 20_000 + b'"}',)

        def chunks() -> Iterator[bytes]:
            yield from large

        streamed = httpx.post(
            f"{base}/api/v1/runs",
            content=chunks(),
            headers=bearer(key) | {"Content-Type": "application/json"},
        )
        assert streamed.status_code == 413
        assert "API keys required" in log.read_text()
        assert key not in log.read_text()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1"])
def test_a_public_address_without_keys_refuses_to_start(
    store_url: str, tmp_path: Path, host: str
) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "carbon", "serve", "--host", host, "--port", str(free_port())],
        env=_env(store_url, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 1
    assert f"refusing to serve on {host}" in refused.stderr
    assert "carbon admin create-team" in refused.stderr
    assert "carbon admin create-key" in refused.stderr


@pytest.mark.postgres
def test_two_workers_on_postgresql_sum_their_metrics(postgres_url: str, tmp_path: Path) -> None:
    key = make_key(postgres_url, f"workers-{uuid.uuid4().hex[:8]}", "ingest")
    starts = [run_start() for _ in range(8)]
    with serving(postgres_url, tmp_path, "--workers", "2") as (url, _):

        def send(index: int) -> int:
            start = starts[index]
            with httpx.Client(base_url=url, headers=bearer(key)) as client:
                assert client.post("/api/v1/runs", json=body(start)).status_code == 201
                for seq in range(3):
                    record = body(batch(start.id, seq, seconds=2, first_s=2 * seq))
                    answer = client.post(f"/api/v1/runs/{start.id}/batches", json=record)
                    assert answer.json()["stored"] is True
            return 3

        with ThreadPoolExecutor(max_workers=8) as pool:
            sent = sum(pool.map(send, range(len(starts))))
        scraped = []
        for _ in range(10):  # a new connection each time: either worker may answer
            families = text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
            values = {
                (sample.name, sample.labels.get("outcome"), sample.labels.get("component")): (
                    sample.value
                )
                for family in families
                for sample in family.samples
            }
            scraped.append(
                (
                    values[("carbon_ingest_batches_total", "stored", None)],
                    values[("carbon_energy_joules_total", None, "cpu")],
                )
            )
    cpu_j = POWER_W[2] * 6 * len(starts)
    assert scraped == [(float(sent), pytest.approx(cpu_j, rel=1e-12))] * len(scraped)


def _raw_request(url: str, head: bytes) -> bytes:
    """Send a request's head as it is and return the first line of the answer."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head)
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


def test_a_request_head_over_the_limit_is_refused_before_the_app(tmp_path: Path) -> None:
    """A megabyte of headers or address is refused; the server serves on.

    h11 refuses a head still incomplete past MAX_REQUEST_HEAD_BYTES, so a connection holds
    at most that plus one read of the socket (64 KiB), never what the client sends.
    """
    url = f"sqlite:///{tmp_path / 'carbon.db'}"
    key = make_key(url, "acme", "read")
    over = 2**20
    assert over > MAX_REQUEST_HEAD_BYTES + 2**16
    with serving(url, tmp_path / "home") as (base, _):
        heads = {
            "one large header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
            + b"a" * over
            + b"\r\n\r\n",
            "many headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-H%d: v\r\n" % n for n in range(over // 8))
            + b"\r\n",
            "a long address": b"GET /api/v1/runs?project="
            + b"p" * over
            + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            "many parameters": b"GET /api/v1/runs?"
            + b"&".join(b"p%d=1" % n for n in range(over // 6))
            + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        }
        for what, head in heads.items():
            assert _raw_request(base, head) == b"HTTP/1.1 400 Bad Request", what
        within = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n"
        assert _raw_request(base, within) == b"HTTP/1.1 200 OK"
        assert httpx.get(f"{base}/api/v1/team", headers=bearer(key)).json()["team"] == "acme"


def test_a_local_server_answers_only_at_a_loopback_host(tmp_path: Path) -> None:
    """Without keys: a page of another site, its name pointed at 127.0.0.1, gets a 400."""
    url = f"sqlite:///{tmp_path / 'carbon.db'}"
    with serving(url, tmp_path / "home", "--log-level", "warning") as (base, log):
        port = base.rsplit(":", 1)[1]
        assert httpx.get(f"{base}/api/v1/team").json()["team"] == "default"
        local = httpx.get(f"{base}/api/v1/team", headers={"Host": f"localhost:{port}"})
        assert local.status_code == 200
        for path in ("/api/v1/runs", "/runs"):
            rebound = httpx.get(f"{base}{path}", headers={"Host": f"evil.example:{port}"})
            assert rebound.status_code == 400, path
            assert "loopback" in rebound.json()["detail"]
    assert '"GET /api/v1/team HTTP/1.1" 200' not in log.read_text()  # warnings only
