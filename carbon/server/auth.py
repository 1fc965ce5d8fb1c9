"""Who is calling: API keys to teams and roles, with a short cache in front of the database.

A request carries ``Authorization: Bearer <key>``. The key's SHA-256 digest is looked up
once (a unique index) and the answer, found or not, is cached for
:data:`KEY_CACHE_TTL_S` seconds: a burst of batches from many agents costs one lookup per
key and replica, and a revoked key stops working on every replica within that delay. Keys
are never logged and never kept in clear: the cache is keyed by the digest.

A key's ``last_used_at`` is written at most once per :data:`LAST_USED_INTERVAL_S` per key
(the UPDATE itself checks the time, so replicas do not all write it).

Roles: ``ingest`` may send runs (the four POST routes), ``read`` may read them (the GET
routes under ``/api/v1``), ``admin`` may do both. In local single-user mode (``carbon serve``
on loopback over SQLite with no key in the store) every request acts as
:data:`LOCAL_CALLER`: the ``default`` team, role ``admin``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool

from carbon.errors import StoreError
from carbon.server.cache import LruCache
from carbon.store import Store
from carbon.store.models import DEFAULT_TEAM_ID
from carbon.store.teams import find_key, hash_key, touch_key

log = logging.getLogger(__name__)

KEY_CACHE_TTL_S = 5.0
"""How long a key lookup is reused: a revoked key keeps working at most this long."""

LAST_USED_INTERVAL_S = 60.0
"""A key's ``last_used_at`` is written at most this often."""

INGEST_ROLES = frozenset({"ingest", "admin"})
"""Roles that may send runs."""

READ_ROLES = frozenset({"read", "admin"})
"""Roles that may read runs."""


@dataclass(frozen=True)
class Caller:
    """The team and role a request acts as.

    Attributes:
        team_id: The caller's team; every query is filtered by it.
        team_name: The team's name (for answers and metrics labels).
        role: ``ingest``, ``read`` or ``admin``.
        key_id: The API key's id; ``None`` in local mode.
        key_prefix: The key's visible prefix; ``None`` in local mode.
    """

    team_id: int
    team_name: str
    role: str
    key_id: int | None = None
    key_prefix: str | None = None

    @property
    def bucket(self) -> int:
        """The rate-limit bucket of this caller: its key, or 0 in local mode."""
        return self.key_id or 0


LOCAL_CALLER = Caller(team_id=DEFAULT_TEAM_ID, team_name="default", role="admin")
"""Whom requests act as when the server requires no key (local single-user mode)."""


@dataclass(frozen=True)
class _Lookup:
    """A cached answer: the caller, or ``None`` for an unknown or revoked key."""

    caller: Caller | None


class KeyAuthenticator:
    """Finds the caller of an API key, caching answers for a few seconds.

    Args:
        store: Where the keys are.
        ttl_s: How long an answer is reused.
        max_keys: Answers kept at most (least recently used forgotten first).
        clock: Monotonic clock, seconds.
    """

    def __init__(
        self,
        store: Store,
        *,
        ttl_s: float = KEY_CACHE_TTL_S,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._answers: LruCache[str, _Lookup] = LruCache(max_keys, ttl_s=ttl_s, clock=clock)
        self._touched: LruCache[int, float] = LruCache(max_keys, clock=clock)
        self._clock = clock

    async def authenticate(self, plaintext: str) -> Caller | None:
        """The caller this key acts as; ``None`` when the key is unknown or revoked.

        Raises:
            StoreError: The database could not be asked.
        """
        digest = hash_key(plaintext)
        answer = self._answers.get(digest)
        if answer is None:
            answer = _Lookup(await run_in_threadpool(self._lookup, plaintext))
            self._answers.put(digest, answer)
        caller = answer.caller
        if caller is not None and caller.key_id is not None and self._touch_due(caller.key_id):
            await run_in_threadpool(self._touch, caller.key_id)
        return caller

    def _lookup(self, plaintext: str) -> Caller | None:
        with self.store.session() as session:
            key = find_key(session, plaintext)
            if key is None:
                return None
            return Caller(
                team_id=key.team_id,
                team_name=key.team.name,
                role=key.role,
                key_id=key.id,
                key_prefix=key.prefix,
            )

    def _touch_due(self, key_id: int) -> bool:
        now = self._clock()
        last = self._touched.get(key_id)
        if last is not None and now - last < LAST_USED_INTERVAL_S:
            return False
        self._touched.put(key_id, now)
        return True

    def _touch(self, key_id: int) -> None:
        try:
            with self.store.session() as session:
                touch_key(
                    session, key_id, now=datetime.now(UTC), min_interval_s=LAST_USED_INTERVAL_S
                )
        except StoreError as exc:  # bookkeeping only: the request itself goes on
            log.warning("could not note the use of API key id %d: %s", key_id, exc)
