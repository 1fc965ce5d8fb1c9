"""Logging in to the dashboard: who may, what a session sees, and what is public."""

from __future__ import annotations

import json

import pytest

import dashboard.auth
from carbon.store import open_store
from carbon.store.teams import VISIBLE_PREFIX_CHARS, get_team, revoke_key
from dashboard.app import create_dashboard
from tests.api_helpers import make_key

SECRET = "s" * 40


def _client(store_url: str, *, require_auth: bool = True):  # type: ignore[no-untyped-def]
    app = create_dashboard(open_store(store_url), require_auth=require_auth, secret=SECRET)
    return app.server.test_client()


def _layout_text(client) -> str:  # type: ignore[no-untyped-def]
    response = client.get("/_dash-layout")
    assert response.status_code == 200
    return json.dumps(response.get_json())


def test_server_mode_sends_page_loads_to_the_login_form(store_url: str) -> None:
    client = _client(store_url)
    response = client.get("/runs?project=bert")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/runs%3Fproject%3Dbert"
    assert client.post("/_dash-update-component", json={}).status_code == 401
    assert client.get("/_dash-layout").status_code == 401
    form = client.get("/login?next=/runs")
    assert form.status_code == 200
    assert b'name="key"' in form.data


def test_static_files_need_no_login(store_url: str) -> None:
    client = _client(store_url)
    response = client.get("/assets/style.css")
    response.close()
    assert response.status_code == 200


def test_a_read_key_logs_in_and_sees_its_team(store_url: str) -> None:
    key = make_key(store_url, "vision", "read")
    client = _client(store_url)
    response = client.post("/login", data={"key": key, "next": "/compare?runs=abc"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/compare?runs=abc"
    cookie = response.headers["Set-Cookie"]
    assert "carbon_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert key not in cookie
    assert client.get("/runs").status_code == 200
    layout = _layout_text(client)
    assert "team vision" in layout
    assert "Log out" in layout
    assert client.post("/logout").status_code == 302
    assert client.get("/runs").status_code == 302


@pytest.mark.parametrize(
    ("role", "revoked", "reason"),
    [
        ("ingest", False, b"may only send runs"),
        ("read", True, b"unknown or revoked key"),
    ],
)
def test_keys_that_cannot_read_are_refused(
    store_url: str, role: str, revoked: bool, reason: bytes
) -> None:
    key = make_key(store_url, "vision", role, revoked=revoked)
    client = _client(store_url)
    response = client.post("/login", data={"key": key, "next": "/"})
    assert response.status_code == 401
    assert reason in response.data
    assert client.get("/").status_code == 302


def test_unknown_key_is_refused(store_url: str) -> None:
    response = _client(store_url).post("/login", data={"key": "cbn_nothing", "next": "/"})
    assert response.status_code == 401
    assert b"unknown or revoked key" in response.data


def test_revoking_the_key_ends_its_sessions(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard.auth, "KEY_RECHECK_S", 0.0)
    key = make_key(store_url, "vision", "read")
    client = _client(store_url)
    client.post("/login", data={"key": key, "next": "/"})
    assert client.get("/").status_code == 200
    with open_store(store_url).session() as session:
        team = get_team(session, "vision")
        revoke_key(session, team, key[:VISIBLE_PREFIX_CHARS])
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil", "runs"])
def test_login_never_redirects_off_site(store_url: str, target: str) -> None:
    key = make_key(store_url, "vision", "read")
    response = _client(store_url).post("/login", data={"key": key, "next": target})
    assert response.headers["Location"] == "/"


def test_login_form_escapes_what_the_address_carries(store_url: str) -> None:
    response = _client(store_url).get('/login?next=/"><script>alert(1)</script>')
    assert b"<script>alert(1)" not in response.data
    assert b"&lt;script&gt;" in response.data


def test_local_mode_opens_directly_as_the_default_team(store_url: str) -> None:
    client = _client(store_url, require_auth=False)
    assert client.get("/runs").status_code == 200
    layout = _layout_text(client)
    assert "team default" in layout
    assert "Log out" not in layout
    assert client.get("/login?next=/runs").headers["Location"] == "/runs"


def test_failed_logins_are_limited_per_address(store_url: str) -> None:
    """Past the burst of failures, the form answers 429 before looking any key up."""
    key = make_key(store_url, "vision", "read")
    client = _client(store_url)
    for _ in range(dashboard.auth.LOGIN_FAILURES_BURST):
        refused = client.post("/login", data={"key": "cbn_guess", "next": "/"})
        assert refused.status_code == 401
    limited = client.post("/login", data={"key": "cbn_guess", "next": "/"})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= dashboard.auth.LOGIN_RETRY_S
    assert b"too many failed logins from this address" in limited.data
    # A right key from the same address waits too: the limit is on the address.
    assert client.post("/login", data={"key": key, "next": "/"}).status_code == 429
    other = client.post(
        "/login", data={"key": key, "next": "/"}, environ_base={"REMOTE_ADDR": "10.0.0.7"}
    )
    assert other.status_code == 302


def test_successful_logins_are_not_limited(store_url: str) -> None:
    key = make_key(store_url, "vision", "read")
    client = _client(store_url)
    for _ in range(2 * dashboard.auth.LOGIN_FAILURES_BURST):
        assert client.post("/login", data={"key": key, "next": "/"}).status_code == 302
