"""The image's entrypoint and health check, run outside Docker as the image would run them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from carbon.store import connect_store
from carbon.store.teams import create_key, create_team
from tests.server_process import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instruction(name: str) -> str:
    """The (last) value of a Dockerfile instruction, continuation lines joined."""
    text = DOCKERFILE.replace("\\\n", " ")
    values = re.findall(rf"^{name}\s+(.+)$", text, flags=re.MULTILINE)
    assert values, f"the Dockerfile has no {name}"
    return str(values[-1]).strip()


def test_image_runs_as_a_non_root_user_without_torch() -> None:
    assert _instruction("USER") not in ("root", "0")
    assert "torch" not in _instruction("RUN")
    assert _instruction("FROM").startswith("python:3.11-slim")


def test_image_has_the_libraries_pdf_reports_need() -> None:
    text = DOCKERFILE.replace("\\\n", " ")
    for package in ("libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz-subset0", "fonts-dejavu"):
        assert re.search(rf"apt-get install[^\n]*\b{re.escape(package)}", text), package


def test_entrypoint_serves_and_the_healthcheck_passes(tmp_path: Path) -> None:
    entrypoint = json.loads(_instruction("ENTRYPOINT"))
    command = json.loads(_instruction("CMD"))
    healthcheck = json.loads(_instruction("HEALTHCHECK").split("CMD", 1)[1].strip())
    assert entrypoint == ["carbon"]
    assert command[0] == "serve"
    assert {"--host", "--port"} <= set(command)
    port = free_port()
    args = list(command)
    args[args.index("--port") + 1] = str(port)
    # The image's CARBON_HOME is /data; here a folder stands in for the volume. Off loopback
    # the server needs a key, as in the image.
    home = tmp_path / "data"
    home.mkdir()
    store = connect_store(f"sqlite:///{home / 'carbon.db'}", migrate=True)
    with store.session() as session:
        create_key(session, create_team(session, "acme"), "agents", "ingest")
    store.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBON_")}
    env["CARBON_HOME"] = str(home)
    server = subprocess.Popen(
        [sys.executable, "-m", *entrypoint, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    probe = [sys.executable if word == "python" else word for word in healthcheck]
    probe = [word.replace(":8000/", f":{port}/") for word in probe]
    try:
        deadline = time.monotonic() + 60
        while True:
            result = subprocess.run(probe, capture_output=True, timeout=30, check=False)
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            time.sleep(0.3)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stderr:
            server.stderr.close()
    assert result.returncode == 0, result.stderr.decode()


def test_compose_starts_postgres_then_the_server_on_it() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    db, server = compose["services"]["db"], compose["services"]["server"]
    assert db["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert server["build"] == "."
    assert server["depends_on"]["db"]["condition"] == "service_healthy"
    url = server["environment"]["CARBON_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://")
    assert "@db:5432/" in url
    assert server["ports"] == ["8000:8000"]
