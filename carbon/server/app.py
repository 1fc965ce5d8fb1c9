"""The application: :func:`create_app` for code and tests, :func:`app_from_env` for uvicorn.

The app opens its own engine on the settings' database (pinging pooled connections, so a
restarted PostgreSQL is reconnected to instead of answering errors) and, while it runs, a
background task does the store's upkeep every ``CARBON_MAINTENANCE_INTERVAL_S``: marks runs
whose agent went silent ``interrupted``, makes sample partitions, applies retention. A
failing round is logged and tried again next time; the server never stops for it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, status
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

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

DESCRIPTION = """
Agents post their runs here (`POST /api/v1/runs...`, key role `ingest`); people and
dashboards read them back (`GET /api/v1/...`, role `read`); `admin` keys may do both.
Every key belongs to one team and sees only that team's runs.

Authenticate with `Authorization: Bearer <key>` (keys come from `carbon admin create-key`).
Errors answer `{"detail": ...}`; a 422's `detail` lists the fields refused.
"""


def create_app(
    settings: Settings, *, require_auth: bool, multiprocess_dir: Path | None = None
) -> FastAPI:
    """Build the team server's application over the settings' database.

    Args:
        settings: The settings (database, body and rate limits, timeouts, metrics token).
        require_auth: Whether requests need an API key. ``False`` is local single-user
            mode: every request acts as the ``default`` team with role ``admin``;
            ``carbon serve`` chooses it only on loopback over SQLite with no key stored.
        multiprocess_dir: prometheus-client's multiprocess folder, when several worker
            processes serve together (``carbon serve --workers N``).

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
    app.add_middleware(RequestMetrics, metrics=state.metrics)  # outermost: counts 413s too
    return app


def _mount_dashboard(app: FastAPI, state: ServerState) -> None:
    """Serve the Dash dashboard at ``/``, after the API's routes so they keep precedence.

    Dash runs on Flask (WSGI); a2wsgi runs it in a thread pool beside the event loop, so
    a slow page never holds up ingest. Unknown paths under ``/api/`` answer a JSON 404
    rather than the dashboard's page.
    """
    from a2wsgi import WSGIMiddleware

    from dashboard.app import create_dashboard

    @app.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
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
    required (:data:`REQUIRE_AUTH_ENV`, a choice of the command rather than a setting)
    and prometheus-client's folder (:data:`MULTIPROC_DIR_ENV`). This and
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
