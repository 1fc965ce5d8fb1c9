"""``carbon serve`` in a child process for the benchmarks, with a team and a key."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx


@dataclass
class Served:
    """A running server: its base URL and a key of the role asked for."""

    url: str
    key: str


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(database_url: str, *, workers: int = 1, role: str = "ingest") -> Iterator[Served]:
    """Migrate the store, give it a team and a key, and serve it on loopback until exit."""
    from carbon.store import connect_store
    from carbon.store.teams import create_key, create_team

    store = connect_store(database_url, migrate=True)
    with store.session() as session:
        team = create_team(session, f"bench-{os.getpid()}-{time.monotonic_ns()}")
        _, key = create_key(session, team, "bench", role)
    store.dispose()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CARBON_")},
        "CARBON_DATABASE_URL": database_url,
        "CARBON_HOME": tempfile.mkdtemp(prefix="carbon-bench-server-"),
        "CARBON_RATE_LIMIT_PER_S": "1000000",
    }
    command = [sys.executable, "-m", "carbon", "serve", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                message = server.stderr.read().decode() if server.stderr else ""
                raise SystemExit(f"carbon serve exited: {message[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("carbon serve did not answer /healthz within 60 s")
            time.sleep(0.2)
        yield Served(url, key)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
