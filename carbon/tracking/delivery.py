"""Hands a run's batches to its sink in order, keeping those the sink could not take.

The sampler thread puts one batch a second. Until the run's start record is in the store,
batches wait; when the sink refuses one (the database is locked, restarting, away), it and
every later batch stay queued in order and are tried again with the next one, so a store
that is briefly away loses nothing that was measured. Batches carry cumulative totals, so
writing them late gives the same result as writing them on time.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from carbon import wire
from carbon.errors import CarbonError, StoreError

if TYPE_CHECKING:
    from carbon.tracking.sink import Sink

log = logging.getLogger(__name__)


class Delivery:
    """The queue of one run's batches in front of its sink.

    Args:
        sink: Where the batches go.
        run_id: The run, for messages.
    """

    def __init__(self, sink: Sink, run_id: str) -> None:
        self.sink = sink
        self.run_id = run_id
        self._pending: list[wire.Batch] = []
        self._ready = threading.Event()
        self._error: str | None = None

    def open(self) -> None:
        """The run's start record is stored: batches may follow."""
        self._ready.set()

    def put(self, batch: wire.Batch | None) -> None:
        """Queue a batch (if any) and write every queued batch the sink will take."""
        if batch is not None:
            self._pending.append(batch)
        if not self._ready.is_set():
            return
        while self._pending:
            try:
                self.sink.write(self._pending[0])
            except Exception as exc:  # kept and retried: nothing measured may be dropped
                if self._error is None:
                    log.warning(
                        "carbon: cannot store run %s yet, will retry: %s",
                        self.run_id,
                        exc,
                        exc_info=not isinstance(exc, CarbonError),
                    )
                self._error = str(exc)
                return
            self._pending.pop(0)

    def flush(self) -> None:
        """Write what is queued, once more.

        Raises:
            StoreError: Some batches still could not be stored; they are named by count.
        """
        self.put(None)
        if self._pending:
            raise StoreError(
                f"run {self.run_id} was measured, but {len(self._pending)} batch(es) could not "
                f"be stored in {self.sink.display_name!r}: {self._error}"
            )
