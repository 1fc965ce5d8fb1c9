"""A small thread-safe LRU cache with an optional time to live, for keys and run facts.

The server caches what is costly to look up on every request and cheap to look up again:
API keys (for a few seconds, so a revoked key stops working soon) and the facts a rank's
batches are written with (which never change once the rank started). Both are bounded, so
a server that sees many keys or runs keeps a fixed amount of memory.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A mapping that forgets its least recently used entries beyond ``max_entries``.

    Args:
        max_entries: Most entries kept.
        ttl_s: Entries older than this are misses; ``None`` keeps them until evicted.
        clock: Monotonic clock, seconds (tests pass a fake one).
    """

    def __init__(
        self,
        max_entries: int,
        *,
        ttl_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The cached value, or ``None`` when the key is not cached or its entry expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored_at, value = entry
            if self.ttl_s is not None and self._clock() - stored_at > self.ttl_s:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Cache a value, evicting the least recently used entry when full."""
        with self._lock:
            self._entries[key] = (self._clock(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def pop(self, key: K) -> None:
        """Forget a key, if cached."""
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
