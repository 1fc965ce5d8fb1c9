"""Secrets stay secret: keys hashed at rest, none in logs, errors or metrics, compared safely.

- Every table of the store (and, on SQLite, the database's files themselves) is read back
  after keys were made and used: no key is there, nor more of one than its visible prefix.
- A server and agents run at DEBUG with an API key, a database URL with a password, an
  Electricity Maps token (whose fake API echoes it back), a metrics token and a session
  secret; none of them is in any log, error message, ``carbon doctor``'s output, the
  metrics, or the agent's spool.
- Secrets are compared with :func:`hmac.compare_digest`: the test counts its calls on each
  path that compares one (an API key's digest, a session cookie's signature, the metrics
  token), rather than timing anything.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import flask
import httpx
import pytest
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import MetaData, Table, create_engine, inspect, select
from sqlalchemy.engine import make_url

from carbon.errors import ConfigError
from carbon.settings import SECRET_FIELDS, load_settings
from carbon.store import open_store
from carbon.store.teams import VISIBLE_PREFIX_CHARS, hash_key
from dashboard.app import create_dashboard
from tests.api_helpers import api, batch, bearer, body, make_key, run_start
from tests.test_serve import free_port, serving

PASSWORD = "pw-Db-S3cret-7731"
EM_TOKEN = "em-T0ken-S3cret-4410"
METRICS_TOKEN = "metrics-T0ken-S3cret-9902"
SESSION_SECRET = "session-S3cret-" + "q" * 32


def dump_store(url: str) -> str:
    """Every row of every table of the store, as text (partitions and Alembic's too)."""
    engine = create_engine(url)
    try:
        lines = []
        with engine.connect() as connection:
            for name in sorted(inspect(connection).get_table_names()):
                table = Table(name, MetaData(), autoload_with=connection)
                for row in connection.execute(select(table)):
                    lines.append(f"{name}: {tuple(row)!r}")
        return "\n".join(lines)
    finally:
        engine.dispose()


def sqlite_files(url: str) -> str:
    """The bytes of a SQLite database and its write-ahead log, as text."""
    path = Path(str(make_url(url).database))
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return "".join(f.read_bytes().decode("latin-1") for f in files if f.exists())


def key_leaks(key: str, text: str) -> list[str]:
    """The parts of ``key`` found in ``text``: the key, or 8+ characters past its prefix."""
    secret = key[VISIBLE_PREFIX_CHARS:]
    found = [key] if key in text else []
    if key[: VISIBLE_PREFIX_CHARS + 1] in text:
        found.append(key[: VISIBLE_PREFIX_CHARS + 1])
    found += [secret[at : at + 8] for at in range(len(secret) - 7) if secret[at : at + 8] in text]
    return found


def test_the_store_keeps_digests_of_keys_never_the_keys(store_url: str, tmp_path: Path) -> None:
    keys = {role: make_key(store_url, "acme", role) for role in ("ingest", "read", "admin")}
    keys["revoked"] = make_key(store_url, "acme", "read", revoked=True)
    start = run_start()
    with api(store_url, tmp_path) as client:
        ingest = bearer(keys["ingest"])
        assert client.post("/api/v1/runs", json=body(start), headers=ingest).status_code == 201
        sent = client.post(
            f"/api/v1/runs/{start.id}/batches", json=body(batch(start.id, 0)), headers=ingest
        )
        assert sent.status_code == 200
        for role in ("read", "admin", "revoked"):
            client.get("/api/v1/runs", headers=bearer(keys[role]))
        logged_in = client.post(
            "/login", data={"key": keys["read"], "next": "/"}, follow_redirects=False
        )
        assert logged_in.status_code == 302
        assert client.get("/runs", follow_redirects=False).status_code == 200
        near_miss = keys["admin"][:-1] + ("A" if keys["admin"][-1] != "A" else "B")
        assert client.get("/api/v1/team", headers=bearer(near_miss)).status_code == 401
    dumped = dump_store(store_url)
    for role, key in keys.items():
        assert hash_key(key) in dumped, role  # the dump reads the keys' table
        assert key[:VISIBLE_PREFIX_CHARS] in dumped, role  # and the visible prefix, by design
        assert key_leaks(key, dumped) == [], role
    assert key_leaks(near_miss, dumped) == []
    if store_url.startswith("sqlite"):
        raw = sqlite_files(store_url)
        assert hash_key(keys["admin"]) in raw
        for role, key in keys.items():
            assert key_leaks(key, raw) == [], role


class _EchoingElectricityMaps(BaseHTTPRequestHandler):
    """A fake Electricity Maps that refuses the token, quoting it back in its answer."""

    def do_GET(self) -> None:
        token = self.headers.get("auth-token", "")
        answer = json.dumps({"error": f"token {token} is not valid"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads carbon's logs, not this server's."""


@contextmanager
def echoing_electricity_maps() -> Iterator[str]:
    """The fake API on a free loopback port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingElectricityMaps)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


AGENT = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
import carbon
with carbon.track(project="secrets", name="agent-run") as run:
    run.step(samples=8)
print("done", flush=True)
"""
"""An agent's program at DEBUG: one short run sent to the server."""


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CARBON_")}
    return env | extra


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180, check=False)
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


@pytest.mark.postgres
def test_no_secret_reaches_logs_errors_doctor_metrics_or_spool(
    postgres_url: str, tmp_path: Path
) -> None:
    team = f"secrets-{secrets.token_hex(4)}"
    keys = {role: make_key(postgres_url, team, role) for role in ("ingest", "read")}
    keys["revoked"] = make_key(postgres_url, team, "ingest", revoked=True)
    url_with_password = make_url(postgres_url).set(password=PASSWORD)
    database_url = url_with_password.render_as_string(hide_password=False)
    assert PASSWORD in database_url
    unreachable = make_url("postgresql+psycopg://carbon@127.0.0.1:9/carbon").set(password=PASSWORD)
    outputs: dict[str, str] = {}
    with echoing_electricity_maps() as em_url:
        common = {
            "CARBON_ELECTRICITYMAPS_TOKEN": EM_TOKEN,
            "CARBON_ELECTRICITYMAPS_URL": em_url,
            "CARBON_REGION": "FR",
        }
        with serving(
            database_url,
            tmp_path / "server",
            "--log-level",
            "debug",
            CARBON_METRICS_TOKEN=METRICS_TOKEN,
            CARBON_SESSION_SECRET=SESSION_SECRET,
            **common,
        ) as (base, log):
            for name, key, home in (
                ("agent", keys["ingest"], tmp_path / "agent"),
                ("refused agent", keys["revoked"], tmp_path / "refused"),
            ):
                env = _env(
                    CARBON_HOME=str(home),
                    CARBON_SERVER_URL=base,
                    CARBON_API_KEY=key,
                    CARBON_FLUSH_TIMEOUT_S="3",
                    **common,
                )
                outputs[name] = _run([sys.executable, "-c", AGENT], env)
                spool = "".join(
                    path.read_bytes().decode("latin-1") for path in home.glob("spool.db*")
                )
                assert spool, f"{name} spooled nothing"
                outputs[f"{name}'s spool"] = spool
            assert "done" in outputs["agent"]
            assert "refused the API key" in outputs["refused agent"]
            runs = httpx.get(f"{base}/api/v1/runs", headers=bearer(keys["read"])).json()
            assert [run["name"] for run in runs] == ["agent-run"]
            for name, key in (("list", keys["read"]), ("refused list", keys["revoked"])):
                env = _env(
                    CARBON_HOME=str(tmp_path / name), CARBON_SERVER_URL=base, CARBON_API_KEY=key
                )
                outputs[name] = _run([sys.executable, "-m", "carbon", "runs", "list"], env)
            assert "agent-run" in outputs["list"]
            assert "refused" in outputs["refused list"]
            metrics = httpx.get(f"{base}/metrics", headers=bearer(METRICS_TOKEN))
            assert metrics.status_code == 200
            outputs["metrics"] = metrics.text
            refused_metrics = httpx.get(f"{base}/metrics", headers=bearer(METRICS_TOKEN[:-1]))
            assert refused_metrics.status_code == 401
            outputs["refused metrics"] = refused_metrics.text
            with httpx.Client(base_url=base) as browser:
                login = browser.post("/login", data={"key": keys["read"], "next": "/"})
                assert login.status_code == 302
                outputs["dashboard"] = browser.get("/runs").text + str(browser.cookies)
                outputs["refused login"] = browser.post(
                    "/login", data={"key": keys["revoked"], "next": "/"}
                ).text
        outputs["server log"] = log.read_text()
    outputs["doctor"] = _run(
        [sys.executable, "-m", "carbon", "doctor"],
        _env(
            CARBON_HOME=str(tmp_path / "doctor"),
            CARBON_DATABASE_URL=database_url,
            CARBON_API_KEY=keys["ingest"],
            CARBON_SERVER_URL="http://127.0.0.1:9",
            CARBON_METRICS_TOKEN=METRICS_TOKEN,
            CARBON_SESSION_SECRET=SESSION_SECRET,
            **common,
        ),
    )
    outputs["doctor --json"] = _run(
        [sys.executable, "-m", "carbon", "doctor", "--json"],
        _env(CARBON_HOME=str(tmp_path / "doctor"), CARBON_DATABASE_URL=database_url),
    )
    outputs["serve, database away"] = _run(
        [sys.executable, "-m", "carbon", "serve", "--port", str(free_port())],
        _env(
            CARBON_HOME=str(tmp_path / "away"),
            CARBON_DATABASE_URL=unreachable.render_as_string(hide_password=False),
        ),
    )
    assert "exit 1" in outputs["serve, database away"]
    assert "127.0.0.1:9" in outputs["serve, database away"]  # it did name the database
    assert '"POST /login HTTP/1.1" 302' in outputs["server log"]  # the log has the requests
    assert "DEBUG" in outputs["agent"]
    assert "Electricity Maps refused" in outputs["agent"]  # the token's echo was handled
    leaks = {
        (where, secret)
        for where, text in outputs.items()
        for secret in (PASSWORD, EM_TOKEN, METRICS_TOKEN, SESSION_SECRET)
        if secret in text
    } | {
        (where, role)
        for where, text in outputs.items()
        for role, key in keys.items()
        if key_leaks(key, text)
    }
    assert leaks == set()


def test_settings_errors_and_reprs_never_show_a_secret() -> None:
    assert {"api_key", "database_url", "metrics_token", "session_secret"} <= SECRET_FIELDS
    with pytest.raises(ConfigError) as short:
        load_settings(session_secret="too-short-S3cret")
    assert "too-short-S3cret" not in str(short.value)
    assert "session_secret=<hidden>" in str(short.value)
    settings = load_settings(
        database_url=f"postgresql+psycopg://carbon:{PASSWORD}@db/carbon",
        api_key="cbn_" + "k" * 43,
        electricitymaps_token=EM_TOKEN,
        metrics_token=METRICS_TOKEN,
        session_secret=SESSION_SECRET,
    )
    shown = repr(settings) + str(settings)
    for secret in (PASSWORD, "k" * 43, EM_TOKEN, METRICS_TOKEN, SESSION_SECRET):
        assert secret not in shown


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The lengths of the pairs :func:`hmac.compare_digest` compares from now on."""
    calls: list[tuple[int, int]] = []
    real: Callable[[Any, Any], bool] = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    monkeypatch.setattr(secrets, "compare_digest", counting)
    return calls


def test_api_keys_and_the_metrics_token_are_compared_in_constant_time(
    store_url: str, tmp_path: Path, compared: list[tuple[int, int]]
) -> None:
    key = make_key(store_url, "acme", "read")
    with api(store_url, tmp_path, metrics_token=METRICS_TOKEN) as client:
        compared.clear()
        assert client.get("/api/v1/team", headers=bearer(key)).status_code == 200
        assert compared == [(64, 64)]  # the SHA-256 digests, hex
        compared.clear()
        assert client.get("/metrics", headers=bearer(METRICS_TOKEN)).status_code == 200
        assert client.get("/metrics", headers=bearer("x" * 25)).status_code == 401
        assert compared == [(len(METRICS_TOKEN),) * 2, (25, len(METRICS_TOKEN))]


def test_session_cookies_are_checked_in_constant_time(
    store_url: str, compared: list[tuple[int, int]]
) -> None:
    key = make_key(store_url, "acme", "read")
    app = create_dashboard(open_store(store_url), require_auth=True, secret=SESSION_SECRET)
    client = app.server.test_client()
    assert client.post("/login", data={"key": key, "next": "/"}).status_code == 302
    compared.clear()
    assert client.get("/runs").status_code == 200
    assert len(compared) == 1  # the cookie's signature, against the one it should have
    assert compared[0][0] == compared[0][1]
    forger = flask.Flask("forger")
    forger.secret_key = "f" * 40  # a well-formed cookie, signed with another secret
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    assert serializer is not None
    client.set_cookie("carbon_session", str(serializer.dumps({"key_id": 1})))
    compared.clear()
    assert client.get("/runs").status_code == 302
    assert len(compared) == 1
