"""The report from the CLI, the API and a remote CLI: one document, the caller's runs only."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from carbon.cli.report import report_format, report_params, report_request
from carbon.errors import ConfigError
from carbon.store import open_store
from carbon.store.teams import create_key, get_team
from tests.api_helpers import api, bearer, make_key
from tests.fleet import BASE_TIME, RunSpec, write_run
from tests.server_process import ServerProcess
from tests.test_cli import cli

DAY = BASE_TIME.date().isoformat()
J_PER_KWH = 3_600_000.0
FRA = RunSpec(project="bert", region="FRA", intensity_g_per_kwh=56.0, seconds=40)
POL = RunSpec(project="llama", region="POL", intensity_g_per_kwh=662.0, seconds=30)


def _co2e_g(*specs: RunSpec) -> float:
    return sum(s.energy_j / J_PER_KWH * (s.intensity_g_per_kwh or 0) for s in specs)


@pytest.fixture
def teams(store_url: str) -> dict[str, Any]:
    """Team acme (read key): the FRA and POL runs; globex: a run of its own."""
    reader = make_key(store_url, "acme", "read")
    ingest = make_key(store_url, "acme", "ingest")
    make_key(store_url, "globex", "ingest")
    store = open_store(store_url)
    with store.session() as session:
        acme, globex = get_team(session, "acme").id, get_team(session, "globex").id
    ids = [write_run(store, replace(spec, team_id=acme)) for spec in (FRA, POL)]
    theirs = write_run(store, RunSpec(project="bert", seconds=90, team_id=globex))
    return {"reader": reader, "ingest": ingest, "ids": ids, "theirs": theirs}


def test_api_reports_the_callers_team_in_every_format(
    store_url: str, tmp_path: Path, teams: dict[str, Any]
) -> None:
    headers = bearer(teams["reader"])
    period = {"from": DAY, "to": DAY}
    with api(store_url, tmp_path) as client:
        answer = client.get("/api/v1/reports", params=period, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        report = answer.json()
        as_csv = client.get("/api/v1/reports", params={**period, "format": "csv"}, headers=headers)
        one = client.get(
            "/api/v1/reports",
            params=[("from", DAY), ("to", DAY), ("project", "llama"), ("group_by", "region")],
            headers=headers,
        ).json()
        bad_format = client.get("/api/v1/reports", params={"format": "docx"}, headers=headers)
        reversed_period = client.get(
            "/api/v1/reports", params={"from": DAY, "to": "2020-01-01"}, headers=headers
        )
        bad_day = client.get("/api/v1/reports", params={"from": "yesterday"}, headers=headers)
        ingest_only = client.get("/api/v1/reports", headers=bearer(teams["ingest"]))
    assert sorted(row["id"] for row in report["runs"]) == sorted(teams["ids"])
    assert report["summary"]["co2e_g"] == pytest.approx(_co2e_g(FRA, POL), rel=1e-9)
    assert report["scope"]["since"] == DAY
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert 'filename="carbon-report-' in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert sorted(row["id"] for row in rows) == sorted(teams["ids"])
    assert [row["project"] for row in one["runs"]] == ["llama"]
    assert one["breakdown"]["groups"][0]["name"] == "POL"
    assert bad_format.status_code == 422
    assert bad_format.json()["detail"][0]["loc"] == ["query", "format"]
    assert reversed_period.status_code == 422
    assert "--from must not be after --to" in reversed_period.text
    assert bad_day.status_code == 422
    assert ingest_only.status_code == 403


def test_cli_writes_the_report_of_the_local_store(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    for spec in (FRA, POL):
        write_run(store, spec)
    env = {"CARBON_DATABASE_URL": store_url, "CARBON_HOME": str(tmp_path)}
    output = tmp_path / "q4.json"
    done = cli("report", "--from", DAY, "--to", DAY, "-o", str(output), env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(output.read_text(encoding="utf-8"))
    expected_kwh = (FRA.energy_j + POL.energy_j) / J_PER_KWH
    assert report["summary"]["energy_kwh"] == pytest.approx(expected_kwh)
    # 350 W x 70 s = 24,500 J = 6.81 Wh; 14,000 J x 56 g/kWh + 10,500 J x 662 g/kWh = 2.15 g.
    assert "2 runs, 6.81 Wh, 2.15 g CO2e location-based" in done.stdout
    refused = cli("report", "--from", DAY, "--to", "2020-01-01", "-o", str(output), env=env)
    assert refused.returncode == 1
    assert "--from must not be after --to" in refused.stderr
    assert json.loads(output.read_text(encoding="utf-8")) == report  # left as it was
    nowhere = cli("report", "-o", str(tmp_path / "missing" / "r.html"), env=env)
    assert nowhere.returncode == 1
    assert "does not exist" in nowhere.stderr


def test_cli_asks_the_team_server_when_the_agent_reports_to_one(
    store_url: str, tmp_path: Path
) -> None:
    reader = make_key(store_url, "acme", "read")
    store = open_store(store_url)
    with store.session() as session:
        acme = get_team(session, "acme")
        _, ingest = create_key(session, acme, "agents", "ingest")
        acme_id = acme.id
    run_id = write_run(store, replace(FRA, team_id=acme_id))
    server = ServerProcess(store_url, tmp_path / "server")
    server.start()
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CARBON_")},
            "CARBON_HOME": str(tmp_path / "reader"),
            "CARBON_SERVER_URL": server.url,
            "CARBON_API_KEY": reader,
        }
        output = tmp_path / "remote.csv"
        done = cli("report", "--from", DAY, "--to", DAY, "-o", str(output), env=env)
        refused = cli(
            "report", "-o", str(tmp_path / "no.csv"), env={**env, "CARBON_API_KEY": ingest}
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(output.read_text(encoding="utf-8"))))
    assert [row["id"] for row in rows] == [run_id]
    assert float(rows[0]["co2e_g"]) == pytest.approx(_co2e_g(FRA), rel=1e-9)
    assert refused.returncode == 1
    assert "role read or admin" in refused.stderr
    assert not (tmp_path / "no.csv").exists()


def test_cli_options_make_the_request() -> None:
    assert report_format(None, Path("q1.pdf")) == "pdf"
    assert report_format(None, Path("q1")) == "html"
    assert report_format("md", Path("q1.txt")) == "md"
    with pytest.raises(ConfigError, match="unknown format 'docx'"):
        report_format("docx", Path("q1.docx"))
    request = report_request("2026-01-01", "2026-03-31", ["b", "a"], None, "region", 0.02, 0.4)
    assert request.projects == ("a", "b")
    assert request.days == 90
    params = report_params(request, "csv")
    assert ("from", "2026-01-01") in params
    assert ("to", "2026-03-31") in params
    assert [v for k, v in params if k == "project"] == ["a", "b"]
    with pytest.raises(ConfigError, match="--from '2026-13-01' is not a day"):
        report_request("2026-13-01", None, None, None, "project", 0.01, 0.3)
