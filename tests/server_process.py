"""A real ``carbon serve`` in a child process, for tests of agents against a live server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """``carbon serve`` on loopback against a database, started and stopped on demand.

    Args:
        database_url: The store the server serves.
        home: ``CARBON_HOME`` of the server process.
        port: The port to listen on (one is picked when not given), kept across restarts.
        env: More environment variables for the server.
    """

    def __init__(
        self,
        database_url: str,
        home: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.home = home
        self.port = port or free_port()
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = home / "server.log"

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the server and wait until ``/healthz`` answers 200."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("CARBON_") or key == "CARBON_TEST_POSTGRES_URL"
        }
        env.update(
            CARBON_DATABASE_URL=self.database_url,
            CARBON_HOME=str(self.home),
            **self.env,
        )
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "carbon", "serve", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"carbon serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"carbon serve did not answer: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """Kill the server at once (SIGKILL): no shutdown, requests in flight cut off."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.kill()
        self.process.wait(timeout=15)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) if it runs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
