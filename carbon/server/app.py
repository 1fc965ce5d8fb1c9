"""The application: :func:`create_app` for code and tests, :func:`app_from_env` for uvicorn.

The app opens its own engine on the settings' database (pinging pooled connections, so a
restarted PostgreSQL is reconnected to instead of answering errors) and, while it runs, a
background task does the store's upkeep every ``CARBON_MAINTENANCE_INTERVAL_S``: marks runs
whose agent went silent ``interrupted``, makes sample partitions, applies retention. A
failing round is logged and tried again next time; the server never stops for it.

Every answer carries the headers a browser needs to keep a page of this server out of
another site's frames and to read it as the type it says (:class:`SecurityHeaders`); the
dashboard sets its own Content-Security-Policy, the API's forbids everything. No CORS
header is ever sent, so no other origin's script reads an answer. In local mode (no key)
the server answers only requests addressed to a loopback name (:class:`LoopbackHostOnly`),
so a web page cannot reach the store by pointing its own domain at 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, status
from fastapi.responses import JSONResponse
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carbon._version import __version__
from carbon.errors import StoreError
from carbon.server.errors import install_error_handlers
from carbon.server.limits import BYTES_PER_MB, BodySizeLimit
from carbon.server.metrics import RequestMetrics
from carbon.server.routes import API_ROUTERS, OPEN_ROUTERS
from carbon.server.state import ServerState
from carbon.settings import Settings, load_settings
from carbon.store import Store
from carbon.store.engine import create_store_engine
from carbon.store.migrate import HEAD_REVISION, current_revision

log = logging.getLogger(__name__)

REQUIRE_AUTH_ENV = "CARBON_SERVER_REQUIRE_AUTH"
"""How ``carbon serve`` tells its workers whether keys are required (``1``/``0``)."""

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's folder for the metrics of several worker processes."""

CONNECT_TIMEOUT_S = 10
"""How long a new PostgreSQL connection may take before the request answers 503."""

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
"""Headers of every answer: no type sniffing, no framing, no address leaked in a Referer."""

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""The Content-Security-Policy of every answer that sets none itself (JSON needs nothing)."""

DOCS_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
"""The policy of ``/docs`` and ``/redoc``: FastAPI's pages load Swagger UI and ReDoc from
a CDN and start them with an inline script. They show the API's schema, never data."""

DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})

HSTS = "max-age=31536000"
"""``Strict-Transport-Security`` of answers given over HTTPS: a year."""

LOOPBACK_HOST_NAMES = frozenset({"localhost", "localhost.localdomain"})
"""Host names that mean this machine (``carbon serve`` uses the same list)."""

DESCRIPTION = """
Agents post their runs here (`POST /api/v1/runs...`, key role `ingest`); people and
dashboards read them back (`GET /api/v1/...`, role `read`); `admin` keys may do both.
Every key belongs to one team and sees only that team's runs.

Authenticate with `Authorization: Bearer <key>` (keys come from `carbon admin create-key`).
Errors answer `{"detail": ...}`; a 422's `detail` lists the fields refused.
"""


def create_app(
    settings: Settings,
    *,
    require_auth: bool,
    multiprocess_dir: Path | None = None,
    loopback_hosts_only: bool = False,
) -> FastAPI:
    """Build the team server's application over the settings' database.

    Args:
        settings: The settings (database, body and rate limits, timeouts, metrics token).
        require_auth: Whether requests need an API key. ``False`` is local single-user
            mode: every request acts as the ``default`` team with role ``admin``;
            ``carbon serve`` chooses it only on loopback over SQLite with no key stored.
        multiprocess_dir: prometheus-client's multiprocess folder, when several worker
            processes serve together (``carbon serve --workers N``).
        loopback_hosts_only: Answer only requests whose ``Host`` names this machine
            (:class:`LoopbackHostOnly`); ``carbon serve`` asks it in local mode.

    Returns:
        The application; its lifespan checks the schema and runs the upkeep task.
    """
    url = settings.resolved_database_url
    engine_args: dict[str, Any] = {"pool_pre_ping": True}
    if make_url(url).get_backend_name() == "postgresql":
        engine_args["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    store = Store(create_store_engine(url, **engine_args))
    state = ServerState.build(
        settings, store, require_auth=require_auth, multiprocess_dir=multiprocess_dir
    )
    app = FastAPI(
        title="carbon team server",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan,
    )
    app.state.server = state
    install_error_handlers(app, state.metrics.record_rejected_batch)
    for router in (*API_ROUTERS, *OPEN_ROUTERS):
        app.include_router(router)
    _mount_dashboard(app, state)
    app.add_middleware(BodySizeLimit, max_bytes=int(settings.max_body_mb * BYTES_PER_MB))
    if loopback_hosts_only:
        app.add_middleware(LoopbackHostOnly)
    app.add_middleware(SecurityHeaders)  # on every answer, refusals included
    app.add_middleware(RequestMetrics, metrics=state.metrics)  # outermost: counts 413s too
    return app


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` and a policy to every answer.

    A header the answer sets itself is kept: the dashboard sends its own
    Content-Security-Policy (:mod:`dashboard.app`). Answers given over HTTPS (as the
    request reached uvicorn, or as a trusted proxy's ``X-Forwarded-Proto`` says) also
    carry ``Strict-Transport-Security``.

    Args:
        app: The application whose answers get the headers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to the start of the answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = DOCS_CSP if scope["path"] in DOCS_PATHS else API_CSP
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", policy)
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, with_headers)


def is_loopback_host(host: str) -> bool:
    """Whether a ``Host`` header (``127.0.0.1:8000``, ``[::1]``, ``localhost``) is this machine."""
    name = host.strip().lower()
    if name.startswith("["):  # an IPv6 address, maybe with a port
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    if name in LOOPBACK_HOST_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class LoopbackHostOnly:
    """ASGI middleware answering 400 to a request whose ``Host`` is not this machine.

    A server without keys listens on loopback only, but a browser would still let a web
    page reach it: the page's own domain, resolved anew to 127.0.0.1 (DNS rebinding), is
    the same origin to the browser, which then sends the server that domain as ``Host``.
    Refusing every other ``Host`` closes that way in; people reach the server at
    ``localhost`` or ``127.0.0.1`` as before.

    Args:
        app: The application to guard.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request on only when its ``Host`` names a loopback address."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        if is_loopback_host(host):
            await self.app(scope, receive, send)
            return
        detail = (
            f"this server runs without API keys and answers only at a loopback address "
            f"(localhost, 127.0.0.1, [::1]), not at Host {host[:100]!r}"
        )
        await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)


def _mount_dashboard(app: FastAPI, state: ServerState) -> None:
    """Serve the Dash dashboard at ``/``, after the API's routes so they keep precedence.

    Dash runs on Flask (WSGI); a2wsgi runs it in a thread pool beside the event loop, so
    a slow page never holds up ingest. Unknown paths under ``/api/`` answer a JSON 404
    rather than the dashboard's page.
    """
    from a2wsgi import WSGIMiddleware

    from dashboard.app import create_dashboard

    @app.api_route(
        "/api/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,  # not an operation; one per method would clash in the schema
    )
    async def unknown_api_path(path: str) -> None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no API route /api/{path}")

    secret = state.settings.session_secret
    dashboard = create_dashboard(
        state.store,
        require_auth=state.require_auth,
        secret=secret.get_secret_value() if secret is not None else secrets.token_urlsafe(48),
    )
    app.mount("/", WSGIMiddleware(dashboard.server))  # type: ignore[arg-type]


def app_from_env() -> FastAPI:
    """The application as ``carbon serve --workers N`` runs it in each worker process.

    Uvicorn imports workers' apps by name and calls this factory with no arguments, so
    the two decisions of ``carbon serve`` travel in the environment: whether keys are
    required (:data:`REQUIRE_AUTH_ENV`, a choice of the command rather than a setting;
    without keys, only loopback ``Host`` names are answered) and prometheus-client's
    folder (:data:`MULTIPROC_DIR_ENV`). This and
    ``carbon/cli/serve.py`` are the only places that read ``os.environ`` for them; the
    settings come from :func:`~carbon.settings.load_settings` as everywhere else. Keys are
    required unless the variable says ``0``.
    """
    settings = load_settings()
    require_auth = os.environ.get(REQUIRE_AUTH_ENV, "1") != "0"
    multiprocess_dir = os.environ.get(MULTIPROC_DIR_ENV)
    app = create_app(
        settings,
        require_auth=require_auth,
        multiprocess_dir=Path(multiprocess_dir) if multiprocess_dir else None,
        loopback_hosts_only=not require_auth,
    )
    freeze_startup_objects()
    return app


def freeze_startup_objects() -> None:
    """Keep the objects made at start-up out of every later garbage collection.

    Imports and the app leave about 160,000 objects that live as long as the process; each
    full collection walked them all, 70-100 ms in the middle of a dashboard page now and
    then. Called once the application is built, before it serves.
    """
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServerState = app.state.server
    await run_in_threadpool(_check_schema, state.store)
    stop = asyncio.Event()
    upkeep = asyncio.create_task(_maintenance_loop(state, stop), name="carbon-maintenance")
    try:
        yield
    finally:
        # Let a round in progress finish (it holds a connection in a worker thread) before
        # the pool is closed; cancelling would leave that thread writing to a closed pool.
        stop.set()
        await upkeep
        state.store.dispose()


def _check_schema(store: Store) -> None:
    """Refuse to serve a database at another schema revision; start if it does not answer.

    A database that is down at start is not fatal: ``/healthz`` answers 503 and requests
    503 until it is back, as when it goes away later.

    Raises:
        StoreError: The database answers with another revision than this code needs.
    """
    try:
        with store.engine.connect() as connection:
            revision = current_revision(connection)
    except SQLAlchemyError as exc:
        log.warning("the database %s does not answer yet: %s", store.display_url, exc)
        return
    if revision != HEAD_REVISION:
        state = "empty" if revision is None else f"at revision {revision}"
        raise StoreError(
            f"database {store.display_url!r} is {state}; this server needs revision "
            f"{HEAD_REVISION}: run `carbon db upgrade`"
        )


async def _maintenance_loop(state: ServerState, stop: asyncio.Event) -> None:
    """At start (today's sample partition) and then every interval, until ``stop`` is set."""
    interval_s = state.settings.maintenance_interval_s
    while not stop.is_set():
        try:
            interrupted = await run_in_threadpool(_maintain, state)
        except Exception:  # the server outlives a failed round; the next one tries again
            log.exception("store maintenance failed; next try in %g s", interval_s)
            interrupted = 0
        if interrupted:
            state.metrics.runs_interrupted.inc(interrupted)
            log.info("marked %d silent run(s) interrupted", interrupted)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


def _maintain(state: ServerState) -> int:
    """One round of upkeep; returns how many runs it marked interrupted."""
    from carbon.store.maintenance import run_maintenance

    report = run_maintenance(state.store, state.settings)
    return len(report.interrupted)
