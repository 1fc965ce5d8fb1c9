"""What a run writes to: the protocol both sinks follow.

:class:`~carbon.store.sink.LocalSink` writes to a SQL store in the process;
:class:`~carbon.remote.sink.HttpSink` spools to disk and sends to the team server. The run
neither knows nor cares which one it has.
"""

from __future__ import annotations

from typing import Any, Protocol

from carbon import wire


class Sink(Protocol):
    """Where a run's records go, in order: one start, batches, one end per rank."""

    @property
    def display_name(self) -> str:
        """Where records go, for messages (a masked database URL, a server URL)."""
        ...

    def start_run(self, start: wire.RunStart) -> None:
        """Record that a run (or one rank of it) started, with its devices."""
        ...

    def write(self, batch: wire.Batch) -> None:
        """Record one batch of samples, work and the run's totals so far."""
        ...

    def finish_run(self, end: wire.RunEnd) -> None:
        """Record how the run (or this rank) ended."""
        ...

    def summary(self, run_id: str) -> dict[str, Any]:
        """The run as stored, in the JSON shape of ``carbon runs show --json``."""
        ...
