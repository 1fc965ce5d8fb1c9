"""What every answer tells the browser: no sniffing, no framing, a policy, no CORS, safe cookies.

API answers (successes and refusals alike) and dashboard answers carry
``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy`` and a
Content-Security-Policy: the API's forbids everything, the dashboard's allows its own
scripts and Dash's inline ones by hash (the browser test checks Dash works under it). The
session cookie is ``HttpOnly`` and ``SameSite=Lax``, and ``Secure`` over HTTPS, as is
``Strict-Transport-Security``. No answer carries a CORS header. A server without keys
answers only at a loopback ``Host``, and a cross-site form cannot post a record to it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from carbon.cli import serve
from carbon.server import app as app_module
from carbon.server.app import API_CSP, DOCS_CSP, SECURITY_HEADERS, create_app, is_loopback_host
from carbon.settings import load_settings
from carbon.store import open_store
from dashboard.app import content_security_policy, create_dashboard
from tests.api_helpers import TestClient, api, bearer, body, make_key, row_counts, run_start


def assert_secured(headers: Mapping[str, str], policy: str | None = API_CSP) -> None:
    """The headers of every answer are there (and the policy, unless ``None``); no CORS."""
    found = {name.lower(): value for name, value in headers.items()}
    for name, value in SECURITY_HEADERS:
        assert found.get(name.lower()) == value, name
    if policy is not None:
        assert found.get("content-security-policy") == policy
    assert not [name for name in found if name.startswith("access-control-")]


def test_api_answers_carry_the_headers_whatever_their_status(
    store_url: str, tmp_path: Path
) -> None:
    key = make_key(store_url, "acme", "admin")
    with api(store_url, tmp_path, max_body_mb=0.001, rate_limit_per_s=0.5) as client:
        origin = {"Origin": "https://evil.example"}
        answers = {
            200: client.get("/api/v1/team", headers=bearer(key) | origin),
            429: client.get("/api/v1/team", headers=bearer(key) | origin),
            401: client.get("/api/v1/runs", headers=origin),
            404: client.get("/api/v2/runs", headers=origin),
            413: client.post("/api/v1/runs", content=b"x" * 2000, headers=origin),
            422: client.post(
                "/api/v1/runs", json={}, headers=bearer(make_key(store_url, "acme", "ingest"))
            ),
        }
        for status, answer in answers.items():
            assert answer.status_code == status, answer.text
            assert_secured(answer.headers)
            assert "strict-transport-security" not in answer.headers  # plain HTTP
        assert_secured(client.get("/healthz").headers)
        assert_secured(client.get("/openapi.json").headers)
        for path in ("/docs", "/redoc"):
            assert_secured(client.get(path).headers, DOCS_CSP)
        preflight = client.options(
            "/api/v1/runs",
            headers=origin | {"Access-Control-Request-Method": "POST"},
        )
        assert_secured(preflight.headers)


def test_dashboard_answers_carry_the_headers_and_its_own_policy(
    store_url: str, tmp_path: Path
) -> None:
    key = make_key(store_url, "acme", "read")
    with api(store_url, tmp_path) as client:
        form = client.get("/login")
        dash_app = client.app.routes[-1].app.app  # type: ignore[attr-defined]
        policy = form.headers["content-security-policy"]
        assert_secured(form.headers, policy=None)
        assert policy.startswith("default-src 'self'; script-src 'self' 'sha256-")
        assert "'unsafe-eval'" not in policy
        assert "'unsafe-inline'" not in policy.split("; ")[1]  # scripts: none inline but Dash's
        assert "frame-ancestors 'none'" in policy
        logged_in = client.post(
            "/login", data={"key": key, "next": "/runs"}, follow_redirects=False
        )
        page = client.get("/runs")
        assert page.status_code == 200
        assert_secured(page.headers, policy=None)
        scripts = policy.split("; ")[1].split()[1:]
        assert len(scripts) >= 4  # Dash's renderer, the router's title, two clientside callbacks
        assert set(scripts) <= set(page.headers["content-security-policy"].split("; ")[1].split())
        assert_secured(client.get("/assets/style.css").headers)
        assert "static" not in {rule.endpoint for rule in dash_app.url_map.iter_rules()}
        cookie = logged_in.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback: the browser would drop it


def test_over_https_the_cookie_is_secure_and_transport_security_is_asked(
    store_url: str, tmp_path: Path
) -> None:
    key = make_key(store_url, "acme", "read")
    settings = load_settings(home=tmp_path / "server", database_url=store_url)
    with TestClient(
        create_app(settings, require_auth=True), base_url="https://testserver"
    ) as client:
        logged_in = client.post("/login", data={"key": key, "next": "/"}, follow_redirects=False)
        assert logged_in.status_code == 302
        assert "; Secure" in logged_in.headers["set-cookie"]
        for answer in (logged_in, client.get("/api/v1/team", headers=bearer(key))):
            assert answer.headers["strict-transport-security"] == "max-age=31536000"


def test_the_dashboard_policy_names_each_inline_script_by_its_hash(store_url: str) -> None:
    app = create_dashboard(open_store(store_url), require_auth=False, secret="s" * 40)
    index = app.server.test_client().get("/runs")
    html = index.get_data(as_text=True)
    policy = index.headers["Content-Security-Policy"]
    assert policy == content_security_policy(app)
    html = re.sub(r"<!--.*?-->", "", html, flags=re.S)  # Internet Explorer's, never run
    executable = [
        content
        for attributes, content in re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
        if "src=" not in attributes and "application/json" not in attributes  # config: not run
    ]
    assert len(executable) == 4  # the three clientside callbacks' scripts and the renderer
    for script in executable:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy, script[:80]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:8000", True),
        ("127.8.9.10", True),
        ("localhost:8000", True),
        ("LOCALHOST", True),
        ("[::1]:8000", True),
        ("[::1]", True),
        ("evil.example", False),
        ("evil.example:8000", False),
        ("127.0.0.1.nip.io:8000", False),
        ("10.0.0.5:8000", False),
        ("[::ffff:10.0.0.5]:80", False),
        ("", False),
    ],
)
def test_loopback_host_names(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name and not name.startswith("["):  # a bare name: `carbon serve` decides alike
        assert serve.is_loopback(name) is loopback
    assert serve.LOOPBACK_NAMES == app_module.LOOPBACK_HOST_NAMES


def test_a_server_without_keys_answers_only_at_a_loopback_host(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """DNS rebinding: another site's name pointed at 127.0.0.1 gets nothing from the store."""
    shutil.copy(sqlite_template, tmp_path / "carbon.db")
    url = f"sqlite:///{tmp_path / 'carbon.db'}"
    settings = load_settings(home=tmp_path / "server", database_url=url)
    app = create_app(settings, require_auth=False, loopback_hosts_only=True)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/api/v1/team").json()["team"] == "default"
        assert client.get("/runs").status_code == 200
        for host in ("evil.example", "evil.example:8000", "127.0.0.1.nip.io"):
            for path in ("/api/v1/runs", "/runs", "/_dash-layout", "/healthz"):
                refused = client.get(path, headers={"Host": host})
                assert refused.status_code == 400, (host, path)
                assert "loopback" in refused.json()["detail"]
                assert_secured(refused.headers)
        before = row_counts(url)
        # What a cross-site form can send without asking the browser first: no JSON type.
        for content_type in ("text/plain", "application/x-www-form-urlencoded"):
            posted = client.post(
                "/api/v1/runs",
                content=json.dumps(body(run_start())),
                headers={"Content-Type": content_type},
            )
            assert posted.status_code == 422, content_type
        assert row_counts(url) == before
