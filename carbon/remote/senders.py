"""This process's senders, one per spool file, started on first use and flushed at exit."""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path

import httpx

from carbon.remote.client import ServerClient
from carbon.remote.sender import Sender, SenderTiming
from carbon.remote.spool import BYTES_PER_MB, Spool
from carbon.settings import Settings

_SENDERS: dict[tuple[int, Path], Sender] = {}
_SENDERS_LOCK = threading.Lock()


def _key(spool_path: Path) -> tuple[int, Path]:
    return os.getpid(), spool_path.expanduser().absolute()


def find_sender(spool_path: Path) -> Sender | None:
    """This process's running sender for a spool file, if there is one."""
    with _SENDERS_LOCK:
        sender = _SENDERS.get(_key(spool_path))
    return sender if sender is not None and sender.running else None


def sender_for(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    timing: SenderTiming | None = None,
) -> Sender:
    """This process's sender for the settings' spool, started on first use.

    The first call for a spool file decides its server and timing; later calls get the same
    sender, so a process never sends its records twice.

    Raises:
        ConfigError: The server URL or API key is missing.
        StoreError: The spool cannot be opened.
    """
    key = _key(settings.spool_path)
    with _SENDERS_LOCK:
        sender = _SENDERS.get(key)
        if sender is not None and sender.running:
            return sender
        client = ServerClient.from_settings(settings, transport=transport)
        try:
            spool = Spool(settings.spool_path, max_bytes=int(settings.spool_max_mb * BYTES_PER_MB))
        except BaseException:
            client.close()
            raise
        sender = Sender(spool, client, timing=timing, exit_timeout_s=settings.flush_timeout_s)
        sender.start()
        _SENDERS[key] = sender
        return sender


def close_senders(timeout_s: float | None = None, spool_path: Path | None = None) -> int:
    """Flush and stop this process's senders (at interpreter exit, and in tests).

    Args:
        timeout_s: How long each may send what is left; ``None``: its exit timeout.
        spool_path: Only the sender of this spool file; ``None``: all of them.

    Returns:
        How many records they leave in their spools for later.
    """
    with _SENDERS_LOCK:
        wanted = None if spool_path is None else _key(spool_path)
        mine = [key for key in _SENDERS if key[0] == os.getpid() and wanted in (None, key)]
        senders = [_SENDERS.pop(key) for key in mine]
    return sum(max(0, sender.close(timeout_s)) for sender in senders)


atexit.register(close_senders)
