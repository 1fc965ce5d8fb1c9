"""``carbon regions``, run through typer's test runner on an app built here."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from carbon.accounting.providers import StaticProvider
from carbon.cli.regions import regions

app = typer.Typer()
app.command("regions")(regions)


@app.callback()
def _root() -> None:
    """Keep ``regions`` a subcommand, as in carbon's own app."""


def _run(*args: str) -> typer.testing.Result:
    return CliRunner().invoke(app, ["regions", *args])


def test_lists_every_zone_one_line_each() -> None:
    result = _run()
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == len(StaticProvider().entries())


def test_line_shows_code_intensity_year_type_and_source() -> None:
    result = _run("FRA")
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("FRA ")]
    # global_energy_mix.json "FRA": carbon_intensity 56.039, year 2023
    assert "56.0 g/kWh" in line
    assert "2023" in line
    assert "lifecycle" in line
    assert "global_energy_mix.json" in line


def test_filters_by_name_case_insensitively() -> None:
    result = _run("QUEBEC")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("CA-QC ") for line in lines)
    assert all("quebec" in line.lower() for line in lines)


def test_json_is_a_list_of_objects() -> None:
    result = _run("europe-west1", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["code"] for row in rows] == ["gcp:europe-west1"]
    row = rows[0]
    assert row["kind"] == "cloud"
    assert row["zone"] == "BEL"
    # global_energy_mix.json "BEL": carbon_intensity 138.107, year 2023
    assert row["intensity_g_per_kwh"] == pytest.approx(138.107)
    assert row["year"] == 2023
    assert row["factor_type"] == "lifecycle"
    assert "cloud_regions.csv" in row["source"]


def test_json_with_no_match_is_an_empty_list() -> None:
    result = _run("no-such-zone", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output) == []


def test_no_match_fails_and_suggests() -> None:
    result = _run("Frnace")
    assert result.exit_code == 1
    assert "no region matches 'Frnace'" in result.stderr
    assert "FRA (France)" in result.stderr
