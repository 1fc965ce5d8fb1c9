"""``carbon runs`` reads the team server when the agent reports to one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import carbon
from carbon.settings import load_settings
from carbon.sources.base import Component
from carbon.store import open_store
from carbon.store.teams import create_key, create_team
from carbon.testing import ConstantPowerSource
from tests.server_process import ServerProcess
from tests.test_cli import cli


def test_runs_list_and_show_come_from_the_server(store_url: str, tmp_path: Path) -> None:
    with open_store(store_url).session() as session:
        team = create_team(session, "acme")
        _, admin_key = create_key(session, team, "lead", "admin")
        _, ingest_key = create_key(session, team, "agents", "ingest")
    server = ServerProcess(store_url, tmp_path / "server")
    server.start()
    try:
        settings = load_settings(
            home=tmp_path / "agent", server_url=server.url, api_key=admin_key, region="FR"
        )
        source = ConstantPowerSource(100.0, component=Component.GPU, name="test gpu")
        with carbon.track(project="remote-p", name="r1", settings=settings, sources=[source]):
            pass
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CARBON_")},
            "CARBON_HOME": str(tmp_path / "reader"),
            "CARBON_SERVER_URL": server.url,
            "CARBON_API_KEY": admin_key,
        }
        listed = cli("runs", "list", "--json", "--project", "remote-p", env=env)
        assert listed.returncode == 0, listed.stderr
        (run,) = json.loads(listed.stdout)
        shown = cli("runs", "show", run["id"][:8], env=env)
        refused = cli("runs", "list", env={**env, "CARBON_API_KEY": ingest_key})
    finally:
        server.stop()
    assert run["project"] == "remote-p"
    assert run["status"] == "completed"
    assert run["energy_j"] > 0
    assert shown.returncode == 0, shown.stderr
    assert f"run {run['id']}  remote-p / r1" in shown.stdout
    assert refused.returncode == 1
    assert "reading runs needs a key with role read or admin" in refused.stderr
