"""The local sink: writes a run's records into a SQL store in this process.

It is the SQL end of the data flow (:mod:`carbon.wire` records in, rows out) for runs
without a server, and for agents that write to a team's PostgreSQL directly. The writing
itself is :mod:`carbon.store.ingest` and :mod:`carbon.store.lifecycle`, shared with the
server; the sink adds the store, the team (``default`` unless given) and the contexts of the
runs it started, so a batch costs no lookups.
"""

from __future__ import annotations

from typing import Any

from carbon import wire
from carbon.store import Store
from carbon.store.context import RunContext, load_context, start_run
from carbon.store.ingest import write_batch
from carbon.store.lifecycle import finish_run
from carbon.store.models import DEFAULT_TEAM_ID


class LocalSink:
    """Writes runs to a :class:`~carbon.store.Store`.

    Args:
        store: The store.
        team_id: The team runs belong to.
    """

    def __init__(self, store: Store, team_id: int = DEFAULT_TEAM_ID) -> None:
        self.store = store
        self.team_id = team_id
        self._contexts: dict[tuple[str, int], RunContext] = {}

    @property
    def display_name(self) -> str:
        """The store's URL with any password masked."""
        return self.store.display_url

    def start_run(self, start: wire.RunStart) -> None:
        """Insert the run (unless another rank did), this rank, and this rank's devices."""
        with self.store.session() as session:
            context = start_run(session, start, team_id=self.team_id)
            if context is None:
                context = load_context(
                    session.connection(), start.id, start.rank, team_id=self.team_id
                )
        self._contexts[(start.id, start.rank)] = context

    def write(self, batch: wire.Batch) -> None:
        """Store one batch (once) and bring the rank's and the run's totals up to date."""
        with self.store.transaction() as connection:
            context = self._contexts.get((batch.run_id, batch.rank))
            if context is None:
                context = load_context(connection, batch.run_id, batch.rank, team_id=self.team_id)
                self._contexts[(batch.run_id, batch.rank)] = context
            write_batch(connection, context, batch)

    def finish_run(self, end: wire.RunEnd) -> None:
        """Record how this rank ended, and the run's status once every rank has ended."""
        self._contexts.pop((end.run_id, end.rank), None)
        with self.store.session() as session:
            finish_run(session, end, team_id=self.team_id)

    def summary(self, run_id: str) -> dict[str, Any]:
        """The run as stored, in the JSON shape of ``carbon runs show --json``."""
        from carbon.store.queries import get_run
        from carbon.store.summary import run_summary

        with self.store.session() as session:
            return run_summary(get_run(session, run_id))
