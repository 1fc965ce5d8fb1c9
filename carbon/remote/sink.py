"""The remote sink: a run's records go to the spool on disk, and from there to the server.

Writing is an append to the SQLite spool and a nudge to the sender's thread, so the training
thread never waits on the network. Only the end of a run waits, up to
``CARBON_FLUSH_TIMEOUT_S``, for the server to take the run's records; what it has not taken
by then stays in the spool and is sent by the next carbon process or ``carbon sync``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from carbon import wire
from carbon.remote.sender import Sender, SenderTiming
from carbon.remote.senders import sender_for
from carbon.settings import Settings

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


class HttpSink:
    """Sends runs to the team server through this process's spool and sender.

    Args:
        sender: This process's sender (it holds the spool and the server's client).
        flush_timeout_s: How long :meth:`finish_run` waits for the server.
    """

    def __init__(self, sender: Sender, *, flush_timeout_s: float) -> None:
        self.sender = sender
        self.flush_timeout_s = flush_timeout_s

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        timing: SenderTiming | None = None,
    ) -> HttpSink:
        """The sink for the server the settings name (``CARBON_SERVER_URL``).

        Args:
            settings: Settings with ``server_url`` and ``api_key``.
            transport: An ``httpx`` transport instead of the network (tests).
            timing: Back-off and interval settings of the sender, if it is started now.

        Raises:
            ConfigError: The server URL is set but ``CARBON_API_KEY`` is not.
            StoreError: The spool cannot be opened.
        """
        sender = sender_for(settings, transport=transport, timing=timing)
        return cls(sender, flush_timeout_s=settings.flush_timeout_s)

    @property
    def display_name(self) -> str:
        """Where records go, for messages."""
        return f"server {self.sender.client.base_url}"

    def start_run(self, start: wire.RunStart) -> None:
        """Spool the run's start (with its devices) and wake the sender.

        Raises:
            StoreError: The spool's disk refused the write.
        """
        self.sender.spool.append(start)
        self.sender.wake()

    def write(self, batch: wire.Batch) -> None:
        """Spool one batch and wake the sender; past the spool's bound, totals only.

        Raises:
            StoreError: The spool's disk refused the write (the run keeps the batch).
        """
        self.sender.spool.append(batch)
        self.sender.wake()

    def finish_run(self, end: wire.RunEnd) -> None:
        """Spool the run's end, then give the server up to the flush timeout to take it all.

        Raises:
            StoreError: The spool's disk refused the write.
        """
        self.sender.spool.append(end)
        remaining = self.sender.flush(end.run_id, self.flush_timeout_s)
        if remaining:
            log.warning(
                "carbon: %d record(s) of run %s are not on the server yet (%s); they are kept "
                "in the spool at %s and will be sent at the next start of carbon or by "
                "`carbon sync`",
                remaining,
                end.run_id,
                self.sender.last_problem or f"it did not answer within {self.flush_timeout_s} s",
                self.sender.spool.path,
            )

    def summary(self, run_id: str) -> dict[str, Any]:
        """The run as the server has it (needs a key with role read or admin).

        Raises:
            RunNotFound: The server has no such run.
            StoreError: The server cannot be reached or refused the key.
        """
        return self.sender.client.get_run(run_id)
