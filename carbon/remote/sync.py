"""``carbon sync``: send what the spool still holds, closing runs whose process died.

A run whose process was killed leaves its records in the spool and its run open. Sync takes
over the records of every process on this machine that is gone, ends each run such a process
left open as ``interrupted`` (naming the process), and sends everything until the spool is
empty or the timeout passes. Records of carbon processes still running are left to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from carbon.remote.client import remote_settings
from carbon.remote.sender import SenderStats, SenderTiming
from carbon.remote.senders import find_sender, sender_for
from carbon.settings import Settings

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class SyncReport:
    """What a sync did.

    Attributes:
        server_url: The server records were sent to.
        spool_path: The spool file.
        sent: Records the server acknowledged.
        remaining: Records of this and dead processes still in the spool.
        rejected: Records the server refused for good (kept in the spool's rejected table).
        interrupted: Runs of dead processes closed as ``interrupted``.
        others: Records of carbon processes still running, left to them.
        problem: Why records remain (the server is unreachable, the key was refused...).
    """

    server_url: str
    spool_path: Path
    sent: int
    remaining: int
    rejected: int
    interrupted: int
    others: int = 0
    problem: str | None = None

    def lines(self) -> list[str]:
        """The report in one or two lines of text."""
        first = f"sent {self.sent} record(s) to {self.server_url}"
        if self.interrupted:
            first += f"; closed {self.interrupted} run(s) of ended processes as interrupted"
        if self.rejected:
            first += f"; {self.rejected} refused by the server (kept in {self.spool_path})"
        if self.others:
            first += f"; {self.others} record(s) of running carbon processes left to them"
        if not self.remaining:
            return [first if self.others else f"{first}; the spool is empty"]
        why = self.problem or "the server did not take them in time"
        return [first, f"{self.remaining} record(s) remain in {self.spool_path}: {why}"]


def sync(
    settings: Settings,
    timeout_s: float = 60.0,
    *,
    transport: httpx.BaseTransport | None = None,
    timing: SenderTiming | None = None,
) -> SyncReport:
    """Send every record of this and of dead processes, for up to ``timeout_s``.

    Args:
        settings: Settings naming the server, the key and the spool.
        timeout_s: How long to keep trying.
        transport: An ``httpx`` transport instead of the network (tests).
        timing: Back-off settings of the sender, if it is started now.

    Raises:
        ConfigError: ``CARBON_SERVER_URL`` or ``CARBON_API_KEY`` is not set.
        StoreError: The spool cannot be read or written.
    """
    server_url, _ = remote_settings(settings)
    if not settings.spool_path.exists():
        return SyncReport(server_url, settings.spool_path, 0, 0, 0, 0)
    existing = find_sender(settings.spool_path)
    before = existing.stats() if existing is not None else SenderStats()
    sender = sender_for(settings, transport=transport, timing=timing)
    sender.adopt_now()
    remaining = sender.flush(None, timeout_s)
    after = sender.stats()
    return SyncReport(
        server_url=server_url,
        spool_path=settings.spool_path,
        sent=after.sent - before.sent,
        remaining=remaining,
        rejected=after.rejected - before.rejected,
        interrupted=after.interrupted - before.interrupted,
        others=max(0, sender.spool.count() - remaining),
        problem=sender.last_problem if remaining else None,
    )
