"""Which process owns spooled records, and whether it still runs.

A process is named by its host, pid and start time: pids are reused, so a pid alone could
make a new process look like the one that died (and its records never be taken over).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import psutil

_START_TOLERANCE_S = 0.01


@dataclass(frozen=True)
class Owner:
    """The process that owns records: its host, pid and start time (seconds since the epoch)."""

    host: str
    pid: int
    started_s: float

    @classmethod
    def current(cls) -> Owner:
        """This process."""
        process = psutil.Process()
        return cls(socket.gethostname(), process.pid, process.create_time())

    def is_alive(self) -> bool:
        """Whether the process still runs; a process on another host counts as alive.

        The pid must exist with the same start time, so a pid the system gave to a new
        process is not mistaken for the old one; a zombie counts as dead, and a process carbon
        may not inspect counts as alive (its records are left alone).
        """
        if self.host != socket.gethostname():
            return True
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.started_s) > _START_TOLERANCE_S:
                return False
            return bool(process.status() != psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:
            return True

    def as_row(self) -> tuple[str, int, float]:
        """The owner as the spool's three columns ``owner_host, owner_pid, owner_started``."""
        return self.host, self.pid, self.started_s
