"""Logging in to the dashboard with an API key, and the guard in front of every request.

In server mode a person logs in with a key of role ``read`` or ``admin``
(``carbon admin create-key --role read``). The key is checked once; the browser then holds
a signed, HTTP-only session cookie with the key's id, never the key. Every request checks
that the key still exists and is not revoked (cached :data:`KEY_RECHECK_S` seconds, as the
API does), so revoking a key logs its sessions out. In local mode (loopback, SQLite, no
key in the store) every request is the ``default`` team and no login is asked.

Pages, callbacks and the dashboard's JSON require the session; the login form and the
static JavaScript and CSS (the same for everyone) do not. A page load without a session is
sent to the login form; a callback without one answers 401.

The cookie is ``HttpOnly`` and ``SameSite=Lax`` (no other site's page sends it along with a
form or a script's request), and ``Secure`` when the page came over HTTPS. Failed logins
are counted per client address: past :data:`LOGIN_FAILURES_BURST` of them the form
answers 429 for a while (one more try every :data:`LOGIN_RETRY_S` seconds), before any
key is looked up.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import flask
from flask.sessions import SecureCookieSessionInterface
from markupsafe import escape
from werkzeug.wrappers import Response

from carbon.server.cache import LruCache
from carbon.server.limits import RateLimiter, retry_after_header
from carbon.store import Store
from carbon.store.models import DEFAULT_TEAM_ID, ApiKey
from carbon.store.teams import find_key
from dashboard.data import VIEWER_KEY, Viewer, theme

KEY_RECHECK_S = 5.0
"""How long a session's key is trusted before the database is asked again."""

SESSION_LIFETIME = timedelta(hours=12)
"""How long a login lasts."""

READ_ROLES = frozenset({"read", "admin"})
"""Roles whose keys may log in to the dashboard."""

PUBLIC_PREFIXES = ("/login", "/_dash-component-suites/", "/assets/", "/_favicon.ico")
"""Paths served without a session: the form, and static files that hold no data."""

LOCAL_VIEWER = Viewer(team_id=DEFAULT_TEAM_ID, team_name="default")
"""Whom every request is in local mode."""

LOGIN_FAILURES_BURST = 10
"""Failed logins a client address may make at once before it has to wait."""

LOGIN_RETRY_S = 6.0
"""Once past the burst, an address may try again once per this many seconds."""


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookies, marked ``Secure`` whenever the request was HTTPS.

    A fixed ``SESSION_COOKIE_SECURE`` cannot serve both cases: set, a browser on plain
    HTTP (a local server on loopback) drops the cookie and nobody logs in; unset, a cookie
    given over HTTPS may also travel over plain HTTP to the same host. The request's
    scheme (uvicorn takes it from a trusted proxy's ``X-Forwarded-Proto``) says which.
    """

    def get_cookie_secure(self, app: flask.Flask) -> bool:
        """Whether the cookie of this request's answer is sent over HTTPS only."""
        return flask.request.is_secure


def install_login(server: flask.Flask, store: Store, *, require_auth: bool, secret: str) -> None:
    """Add the login form, the log-out action and the guard to the dashboard's Flask app.

    Args:
        server: The Flask application under the Dash app.
        store: Where the keys are.
        require_auth: ``False`` in local mode: no login, the ``default`` team.
        secret: Signs the session cookies (at least 32 characters).
    """
    server.secret_key = secret
    server.config.update(
        SESSION_COOKIE_NAME="carbon_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    server.session_interface = SessionCookies()
    viewers: LruCache[int, Viewer | None] = LruCache(10_000, ttl_s=KEY_RECHECK_S)
    failures = RateLimiter(1.0 / LOGIN_RETRY_S, burst=LOGIN_FAILURES_BURST)

    def lookup(key_id: int) -> Viewer | None:
        if (cached := viewers.get(key_id)) is not None:
            return cached
        with store.session() as session:
            key = session.get(ApiKey, key_id)
            found = (
                Viewer(key.team_id, key.team.name, logged_in=True, key_prefix=key.prefix)
                if key is not None and key.revoked_at is None and key.role in READ_ROLES
                else None
            )
        if found is not None:
            viewers.put(key_id, found)
        return found

    @server.before_request
    def guard() -> Response | None:
        if not require_auth:
            setattr(flask.g, VIEWER_KEY, LOCAL_VIEWER)
            return None
        path = flask.request.path
        if path.startswith(PUBLIC_PREFIXES):
            return None
        key_id = flask.session.get("key_id")
        found = lookup(key_id) if isinstance(key_id, int) else None
        if found is None:
            flask.session.clear()
            if flask.request.method == "GET" and not path.startswith("/_dash-"):
                return flask.redirect(f"/login?next={quote(flask.request.full_path)}")
            return Response('{"detail": "log in first"}', 401, mimetype="application/json")
        setattr(flask.g, VIEWER_KEY, found)
        return None

    @server.route("/login", methods=["GET", "POST"])
    def login() -> Response | str:
        target = _safe_next(flask.request.values.get("next", "/"))
        if not require_auth:
            return flask.redirect(target)
        if flask.request.method == "GET":
            return _login_page(target, message=None)
        address = flask.request.remote_addr or ""
        wait_s = failures.wait_s(address)
        if wait_s is not None:
            retry = retry_after_header(wait_s)
            reason = (
                f"too many failed logins from this address: try again in {retry['Retry-After']} s"
            )
            page = _login_page(target, message=reason)
            return Response(page, 429, headers=retry, mimetype="text/html")
        plaintext = flask.request.form.get("key", "").strip()
        with store.session() as session:
            key = find_key(session, plaintext) if plaintext else None
            key_id = key.id if key is not None and key.revoked_at is None else None
            role = key.role if key is not None else None
        if key_id is None or role not in READ_ROLES:
            failures.acquire(address)
            reason = (
                "this key may only send runs; log in with a read or admin key"
                if key_id is not None
                else "unknown or revoked key"
            )
            return Response(_login_page(target, message=reason), 401, mimetype="text/html")
        flask.session.clear()
        flask.session["key_id"] = key_id
        flask.session.permanent = True
        return flask.redirect(target)

    @server.route("/logout", methods=["POST"])
    def logout() -> Response:
        flask.session.clear()
        return flask.redirect("/login")


def _safe_next(target: str) -> str:
    """Where to go after logging in: a path on this site only, never another origin."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(target: str, *, message: str | None) -> str:
    """The login form; every value written into it is escaped."""
    error = f'<p class="login-error" role="alert">{escape(message)}</p>' if message else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>carbon: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/style.css"></head>
<body class="login-body theme-{theme()}"><main class="login-box">
<h1>carbon</h1>
<p>Log in with an API key of role <code>read</code> or <code>admin</code>
(<code>carbon admin create-key --team TEAM --role read</code>).</p>
{error}
<form method="post" action="/login">
<input type="hidden" name="next" value="{escape(target)}">
<label for="login-key">API key</label>
<input id="login-key" name="key" type="password" autocomplete="current-password" required>
<button id="login-submit" type="submit">Log in</button>
</form></main></body></html>"""
