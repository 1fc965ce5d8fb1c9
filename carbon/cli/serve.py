"""``carbon serve``: run the team server (or a local one) with uvicorn.

It migrates the store first, then decides whether requests need an API key:

- on a loopback address, over SQLite, with no active key in the store: no (local
  single-user mode: every request acts as the ``default`` team with role ``admin``);
- on any other address with no active key at all: it refuses to start, since nobody could
  use it and it must not run open; the message says how to make a team and a key;
- otherwise: yes.

With ``--workers N`` (N > 1) uvicorn runs N processes that import the application by name
(:func:`carbon.server.app.app_from_env`); this command tells them its decision and the
folder where prometheus-client sums their metrics through the environment, the only way
into a process uvicorn spawns.

Uvicorn parses HTTP with h11, which answers 400, before the application sees anything,
to a request whose line and headers are still incomplete past
:data:`MAX_REQUEST_HEAD_BYTES`: a connection holds at most that and one read of its socket.
Uvicorn's other parser, httptools, keeps whatever headers a client sends, so one
connection could fill the server's memory. Bodies are limited by the application
(``CARBON_MAX_BODY_MB``).
``--log-level`` applies to uvicorn's messages and to carbon's own, in every worker.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import secrets
import shutil
import tempfile
from enum import StrEnum
from typing import Annotated, Any

import typer

from carbon.errors import ConfigError
from carbon.settings import load_settings
from carbon.store import connect_store
from carbon.store.teams import count_active_keys

SESSION_SECRET_ENV = "CARBON_SESSION_SECRET"
"""The setting that signs dashboard logins; set for the workers when the user did not."""

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
"""Host names that mean this machine only."""

MAX_REQUEST_HEAD_BYTES = 32 * 1024
"""Bytes of a request's line and headers the server buffers before refusing it."""


class LogLevel(StrEnum):
    """How much the server logs (uvicorn's and carbon's messages alike)."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def log_config(level: LogLevel) -> dict[str, Any]:
    """Uvicorn's logging configuration, with carbon's loggers printed beside its own.

    Uvicorn applies it in each worker process, so carbon's messages (a database that does
    not answer, silent runs marked interrupted) reach the log whatever the worker count.
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["carbon"] = {"handlers": ["default"], "level": level.upper()}
    config["loggers"]["dashboard"] = {"handlers": ["default"], "level": level.upper()}
    return config


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` is reachable only from this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def needs_keys(*, host: str, sqlite: bool, active_keys: int) -> bool:
    """Whether the server must require API keys (see the module's rules).

    Raises:
        ConfigError: A non-loopback host with no key in the store: it would be unusable.
    """
    loopback = is_loopback(host)
    if active_keys == 0 and not loopback:
        raise ConfigError(
            f"refusing to serve on {host}: the store has no API key, so the server would "
            "be unusable (and keys are always required off loopback). Make a team and a key "
            "first: `carbon admin create-team NAME`, then "
            "`carbon admin create-key --team NAME --role ingest`"
        )
    return not (loopback and sqlite and active_keys == 0)


def dashboard_url(host: str, port: int) -> str:
    """The address to open in a browser: a wildcard host is reached on loopback."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (each with its own caches).")
    ] = 1,
    log_level: Annotated[
        LogLevel, typer.Option(help="Least important messages logged (uvicorn's and carbon's).")
    ] = LogLevel.INFO,
) -> None:
    """Serve the dashboard (/) and the team server's API (/api/v1, /healthz, /metrics, /docs)."""
    import uvicorn

    from carbon.server.app import (
        MULTIPROC_DIR_ENV,
        REQUIRE_AUTH_ENV,
        create_app,
        freeze_startup_objects,
    )

    settings = load_settings()
    store = connect_store(settings.resolved_database_url, migrate=True)
    try:
        with store.session() as session:
            active_keys = count_active_keys(session)
        sqlite = store.engine.dialect.name == "sqlite"
        display_url = store.display_url
    finally:
        store.dispose()
    require_auth = needs_keys(host=host, sqlite=sqlite, active_keys=active_keys)
    mode = "API keys required" if require_auth else "local mode: no key needed"
    typer.echo(f"carbon server on http://{host}:{port} over {display_url} ({mode})", err=True)
    typer.echo(f"dashboard: open {dashboard_url(host, port)}", err=True)
    if require_auth and active_keys == 0:
        typer.secho(
            "warning: no API key exists yet, so every request will be refused: "
            "`carbon admin create-team NAME`, then `carbon admin create-key --team NAME ...`",
            err=True,
            fg=typer.colors.YELLOW,
        )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "http": "h11",
        "h11_max_incomplete_event_size": MAX_REQUEST_HEAD_BYTES,
        "log_level": log_level.value,
        "log_config": log_config(log_level),
    }
    if workers == 1:
        app = create_app(settings, require_auth=require_auth, loopback_hosts_only=not require_auth)
        freeze_startup_objects()
        uvicorn.run(app, **options)
        return
    # Workers are fresh processes: what they must know goes through their environment.
    metrics_dir = tempfile.mkdtemp(prefix="carbon-metrics-")
    os.environ[REQUIRE_AUTH_ENV] = "1" if require_auth else "0"
    os.environ[MULTIPROC_DIR_ENV] = metrics_dir
    # Every worker must sign and check dashboard logins with the same secret.
    os.environ.setdefault(SESSION_SECRET_ENV, secrets.token_urlsafe(48))
    try:
        uvicorn.run("carbon.server.app:app_from_env", factory=True, workers=workers, **options)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
