"""What one application holds between requests: settings, the store, caches and counters.

Nothing here is the truth about any run: the database is. Caches may be dropped at any
time (a restart, another replica answering), which is what lets several replicas serve one
database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from carbon.server.auth import KeyAuthenticator
from carbon.server.cache import LruCache
from carbon.server.limits import RateLimiter
from carbon.server.metrics import ServerMetrics
from carbon.settings import Settings
from carbon.store import Store
from carbon.store.context import RunContext

MAX_CACHED_CONTEXTS = 10_000
"""Ranks whose write facts are cached (about 1 kB each)."""

ContextKey = tuple[int, str, int]
"""``(team_id, run_id, rank)``: a context is cached per team, so no team reads another's."""


@dataclass
class ServerState:
    """The application's long-lived objects, reached by the routes through dependencies.

    Attributes:
        settings: The settings the server was started with.
        store: The database.
        require_auth: Whether requests need an API key (``False`` only in local mode).
        keys: Finds the caller of a key, with a short cache.
        limiter: Requests per second per key.
        metrics: The Prometheus counters.
        contexts: What writing each rank's batches needs, by ``(team, run, rank)``; the
            facts never change once the rank started, so entries never go stale.
    """

    settings: Settings
    store: Store
    require_auth: bool
    keys: KeyAuthenticator
    limiter: RateLimiter
    metrics: ServerMetrics
    contexts: LruCache[ContextKey, RunContext] = field(
        default_factory=lambda: LruCache(MAX_CACHED_CONTEXTS)
    )

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        *,
        require_auth: bool,
        multiprocess_dir: Path | None = None,
    ) -> ServerState:
        """The state of a new application over ``store``."""
        return cls(
            settings=settings,
            store=store,
            require_auth=require_auth,
            keys=KeyAuthenticator(store),
            limiter=RateLimiter(settings.rate_limit_per_s),
            metrics=ServerMetrics(multiprocess_dir=multiprocess_dir),
        )
