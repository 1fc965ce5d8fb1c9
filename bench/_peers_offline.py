"""Keeping ``bench.peers`` offline: no connection, no name lookup, prices from local data.

Standard library only, so a fresh process can install the guard before it starts the clock
on a tool's import.
"""

from __future__ import annotations

import socket
from typing import Any

COUNTRY_ISO3 = "FRA"
"""Where both tools price the energy: France (``CARBON_REGION=FR`` for carbon)."""


class NetworkGuard:
    """Refuses every socket connection and name lookup while installed; counts the attempts.

    Local sockets (``AF_UNIX``) are allowed: nothing in this benchmark uses one, but refusing
    them would say nothing about the network.
    """

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> NetworkGuard:
        guard = self
        connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

        def refuse(sock: socket.socket, address: Any) -> None:
            if sock.family != socket.AF_UNIX:
                guard.attempts.append(f"connect {address!r}")
                raise OSError(f"bench.peers: network access refused ({address!r})")

        def guarded_connect(sock: socket.socket, address: Any) -> None:
            refuse(sock, address)
            connect(sock, address)

        def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
            refuse(sock, address)
            return connect_ex(sock, address)

        def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            guard.attempts.append(f"getaddrinfo {host!r}")
            raise OSError(f"bench.peers: name lookup refused ({host!r})")

        self._saved = {
            "connect": connect,
            "connect_ex": connect_ex,
            "getaddrinfo": socket.getaddrinfo,
        }
        socket.socket.connect = guarded_connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign,assignment]
        socket.getaddrinfo = guarded_getaddrinfo
        return self

    def __exit__(self, *exc: object) -> None:
        socket.socket.connect = self._saved["connect"]  # type: ignore[method-assign]
        socket.socket.connect_ex = self._saved["connect_ex"]  # type: ignore[method-assign]
        socket.getaddrinfo = self._saved["getaddrinfo"]
