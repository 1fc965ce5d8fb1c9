"""``carbon export --format hf-model-card|llama-table`` of runs with known energy.

Runs are written through the store's real path (``tests/fleet.py``): every device draws a
constant power, so each expected figure below is worked out from the spec by hand
(energy = power x seconds; CO2e = energy in kWh x the factor, at PUE 1.0).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from carbon.cli import app
from carbon.errors import ConfigError, RunNotFound
from carbon.store import open_store
from carbon.store.factors import add_market_factor
from carbon.store.models import DEFAULT_TEAM_ID
from carbon.store.teams import create_key, create_team
from tests.fleet import CPU, H100, RunSpec, write_run
from tests.server_process import ServerProcess
from tests.test_cli import cli

J_PER_KWH = 3_600_000.0
G_PER_T = 1_000_000.0

# One H100 at 350 W for 20 s: 7000 J; at 400 g/kWh, 7000 / 3.6e6 x 400 = 0.7777... g.
SMALL = RunSpec(
    project="llm",
    name="pretrain",
    seconds=20,
    devices=(("gpu", H100, 350.0, "measured"),),
    region="FRA",
    intensity_g_per_kwh=400.0,
    tags={"training_type": "pre-training"},
)
SMALL_G = 20 * 350.0 / J_PER_KWH * 400.0
# Two H100s (300 W, 310 W) and a CPU (50 W) for 30 s: 19 800 J, 2.2 g at 400 g/kWh; the
# project "green" has a supplier factor of 5 g/kWh: 19 800 / 3.6e6 x 5 = 0.0275 g.
GREEN = RunSpec(
    project="green",
    name="finetune",
    seconds=30,
    devices=(
        ("gpu", H100, 300.0, "measured"),
        ("gpu", H100, 310.0, "measured"),
        ("cpu", CPU, 50.0, "estimated"),
    ),
    region="FRA",
    intensity_g_per_kwh=400.0,
)
GREEN_G = 30 * (300.0 + 310.0 + 50.0) / J_PER_KWH * 400.0
GREEN_MARKET_G = 30 * (300.0 + 310.0 + 50.0) / J_PER_KWH * 5.0


def _add_contract(store_url: str, team_id: int = DEFAULT_TEAM_ID) -> None:
    with open_store(store_url).session() as session:
        add_market_factor(
            session,
            project="green",
            intensity_g_per_kwh=5.0,
            source="PPA 2026-017 with a wind farm",
            team_id=team_id,
        )


def _export(store_url: str, tmp_path: Path, *args: str) -> Result:
    env = {"CARBON_DATABASE_URL": store_url, "CARBON_HOME": str(tmp_path / "home")}
    return CliRunner().invoke(app, ["export", *args], env=env)


def _ok(result: Result) -> str:
    assert result.exception is None, result.output
    assert result.exit_code == 0, result.output
    return result.stdout


def _card(text: str) -> dict[str, object]:
    loaded = yaml.safe_load(text)
    assert list(loaded) == ["co2_eq_emissions"]
    block = loaded["co2_eq_emissions"]
    assert isinstance(block, dict)
    return block


def _table(text: str) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """The header, the rows by their first cell's first word, and the notes under the table."""
    lines = text.splitlines()
    table = [line for line in lines if line.startswith("|")]
    notes = [line for line in lines if line.startswith("- ")]
    cells = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in table]
    header, rows = cells[0], cells[2:]
    return header, {row[0].split()[0]: row[1:] for row in rows}, notes


def _figure(cell: str) -> tuple[float, float]:
    """A table cell's value and half its last shown digit (the rounding it may carry)."""
    text = cell.replace(",", "")
    decimals = len(text.partition(".")[2])
    return float(text), 0.5 * 10.0**-decimals


def _close(cell: str, expected: float) -> None:
    value, half_digit = _figure(cell)
    assert abs(value - expected) <= half_digit * (1 + 1e-9), (cell, expected)
    if expected:
        assert value != 0, f"{expected} is shown as 0: {cell}"


def test_hf_model_card_sums_the_runs_in_grams(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    small, green = write_run(store, SMALL), write_run(store, GREEN)
    block = _card(_ok(_export(store_url, tmp_path, small, green, "--format", "hf-model-card")))
    source = block.pop("source")
    assert block == {
        "emissions": pytest.approx(0.7777777777777778 + 2.2, rel=1e-12),
        "training_type": "pre-training",
        "geographical_location": "FRA (grid zone FRA)",
        "hardware_used": f"1 x {H100}; 2 x {H100}",
    }
    assert isinstance(source, str)
    assert source.startswith(f"carbon test, run(s) {small}, {green}: ")
    assert "GPU energy from nvml_energy (measured)" in source
    assert "CPU energy from TDP x utilization (estimated)" in source
    assert "location-based, grid intensity zone FRA, test factor" in source
    assert "PUE 1.0 (given)" in source


def test_hf_model_card_of_one_run_and_by_prefix(store_url: str, tmp_path: Path) -> None:
    run_id = write_run(open_store(store_url), SMALL)
    by_prefix = _ok(_export(store_url, tmp_path, run_id[:8], "--format", "hf-model-card"))
    assert by_prefix == _ok(_export(store_url, tmp_path, run_id, "--format", "hf-model-card"))
    block = _card(by_prefix)
    assert block["emissions"] == pytest.approx(0.7777777777777778, rel=1e-12)
    assert block["hardware_used"] == f"1 x {H100}"


def test_training_type_comes_from_the_option_else_is_left_out(
    store_url: str, tmp_path: Path
) -> None:
    store = open_store(store_url)
    tagged, untagged = write_run(store, SMALL), write_run(store, GREEN)
    chosen = _export(
        store_url, tmp_path, tagged, "--format", "hf-model-card", "--training-type", "fine-tuning"
    )
    assert _card(_ok(chosen))["training_type"] == "fine-tuning"
    unknown = _card(_ok(_export(store_url, tmp_path, untagged, "--format", "hf-model-card")))
    assert "training_type" not in unknown
    assert unknown["emissions"] == pytest.approx(GREEN_G, rel=1e-12)
    on_table = _export(store_url, tmp_path, untagged, "--format", "llama-table",
                       "--training-type", "pre-training")  # fmt: skip
    assert isinstance(on_table.exception, ConfigError)
    assert "hf-model-card only" in str(on_table.exception)


def test_tiny_emissions_stay_a_number_in_yaml(store_url: str, tmp_path: Path) -> None:
    # 0.036 W for 1 s is 0.036 J = 1e-8 kWh; at 1 g/kWh, 1e-8 g. Written "1e-08", YAML 1.1
    # readers would load a string.
    spec = RunSpec(seconds=1, devices=(("gpu", H100, 0.036, "measured"),), region="FRA",
                   intensity_g_per_kwh=1.0)  # fmt: skip
    run_id = write_run(open_store(store_url), spec)
    text = _ok(_export(store_url, tmp_path, run_id, "--format", "hf-model-card"))
    emissions = _card(text)["emissions"]
    assert isinstance(emissions, float)
    assert emissions == pytest.approx(1e-8, rel=1e-9)
    assert "e-" not in text.splitlines()[1]
    _, rows, _ = _table(_ok(_export(store_url, tmp_path, run_id, "--format", "llama-table")))
    _close(rows[run_id[:8]][2], 1e-8 / G_PER_T)


def test_llama_table_rows_total_and_notes(store_url: str, tmp_path: Path) -> None:
    _add_contract(store_url)
    store = open_store(store_url)
    small, green = write_run(store, SMALL), write_run(store, GREEN)
    output = tmp_path / "emissions.md"
    output.write_text("an older export\n")
    result = _export(store_url, tmp_path, small, green, "--format", "llama-table",
                     "--output", str(output))  # fmt: skip
    assert str(output) in _ok(result)
    header, rows, notes = _table(output.read_text())
    assert header == [
        "Run",
        "Time (GPU hours)",
        "Power Consumption (W)",
        "Location-Based Greenhouse Gas Emissions (tons CO2eq)",
        "Market-Based Greenhouse Gas Emissions (tons CO2eq)",
    ]
    assert list(rows) == [small[:8], green[:8], "Total"]
    hours, power, location, market = rows[small[:8]]
    _close(hours, 20 / 3600)
    assert power == "350.0"  # 7000 J / (1 GPU x 20 s)
    _close(location, SMALL_G / G_PER_T)
    assert market == "n/a"
    hours, power, location, market = rows[green[:8]]
    _close(hours, 2 * 30 / 3600)
    assert power == "305.0"  # (300 + 310) W x 30 s / (2 GPUs x 30 s); the CPU is not a GPU
    _close(location, GREEN_G / G_PER_T)
    _close(market, GREEN_MARKET_G / G_PER_T)
    hours, power, location, market = rows["Total"]
    _close(hours, 80 / 3600)
    _close(power, (350.0 * 20 + 610.0 * 30) / 80)  # 316.25 W over 80 GPU-seconds
    _close(location, (SMALL_G + GREEN_G) / G_PER_T)
    shown = [_figure(rows[key][2])[0] for key in (small[:8], green[:8])]
    assert _figure(location)[0] == pytest.approx(sum(shown), abs=_figure(location)[1] * 3)
    assert market == "n/a"  # one run has no contract: a partial sum would read as the total
    text = "\n".join(notes)
    assert "measured average power per GPU, GPU energy / GPU-seconds, not the GPUs' TDP" in text
    assert f"Market-based is n/a for run(s) {small[:8]}: no contractual instrument" in text
    assert f"PPA 2026-017 with a wind farm (5 g/kWh) (run(s) {green[:8]})" in text
    assert f"zone FRA, test factor, PUE 1.0 (given) (run(s) {small[:8]}, {green[:8]})" in text


def test_llama_market_total_when_every_run_has_a_contract(store_url: str, tmp_path: Path) -> None:
    _add_contract(store_url)
    store = open_store(store_url)
    first, second = write_run(store, GREEN), write_run(store, GREEN)
    _, rows, notes = _table(
        _ok(_export(store_url, tmp_path, first, second, "--format", "llama-table"))
    )
    _close(rows[first[:8]][3], GREEN_MARKET_G / G_PER_T)
    _close(rows["Total"][3], 2 * GREEN_MARKET_G / G_PER_T)
    _close(rows["Total"][2], 2 * GREEN_G / G_PER_T)
    assert not any("no contractual instrument" in note for note in notes)


def test_run_without_region_is_refused_and_no_file_written(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    priced, unpriced = write_run(store, SMALL), write_run(store, RunSpec())
    output = tmp_path / "card.yaml"
    env = {"CARBON_DATABASE_URL": store_url, "CARBON_HOME": str(tmp_path / "home")}
    for export_format in ("hf-model-card", "llama-table"):
        result = cli("export", priced, unpriced[:10], "--format", export_format,
                     "--output", str(output), env=env)  # fmt: skip
        assert result.returncode == 1
        assert result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"error: run {unpriced} (bert/fine-tune) has no CO2e")
        assert "CARBON_REGION" in line
        assert f"carbon whatif {unpriced} --region R" in line
        assert not output.exists()


def test_unknown_run_and_unknown_format(store_url: str, tmp_path: Path) -> None:
    run_id = write_run(open_store(store_url), SMALL)
    missing = _export(store_url, tmp_path, run_id, "ffffff0000", "--format", "llama-table")
    assert isinstance(missing.exception, RunNotFound)
    assert str(missing.exception) == "no run with id 'ffffff0000'"
    twice = _export(store_url, tmp_path, run_id, run_id[:8], "--format", "llama-table")
    assert isinstance(twice.exception, ConfigError)
    assert str(twice.exception) == f"run {run_id} is given twice: its emissions count once"
    bad = _export(store_url, tmp_path, run_id, "--format", "csv")
    assert bad.exit_code == 2
    assert "Invalid value for '--format'" in bad.output


def test_runs_come_from_the_team_server_when_one_is_set(store_url: str, tmp_path: Path) -> None:
    with open_store(store_url).session() as session:
        team = create_team(session, "acme")
        team_id = team.id
        _, read_key = create_key(session, team, "readers", "read")
    _add_contract(store_url, team_id)
    store = open_store(store_url)
    small = write_run(store, dataclasses.replace(SMALL, team_id=team_id))
    green = write_run(store, dataclasses.replace(GREEN, team_id=team_id))
    server = ServerProcess(store_url, tmp_path / "server")
    server.start()
    try:
        env = {
            "CARBON_HOME": str(tmp_path / "reader"),
            "CARBON_SERVER_URL": server.url,
            "CARBON_API_KEY": read_key,
        }
        assert "CARBON_DATABASE_URL" not in os.environ
        card = CliRunner().invoke(
            app, ["export", small[:8], green, "--format", "hf-model-card"], env=env
        )
        table = CliRunner().invoke(app, ["export", green, "--format", "llama-table"], env=env)
    finally:
        server.stop()
    block = _card(_ok(card))
    assert block["emissions"] == pytest.approx(SMALL_G + GREEN_G, rel=1e-12)
    assert str(block["source"]).startswith(f"carbon test, run(s) {small}, {green}: ")
    _, rows, _ = _table(_ok(table))
    _close(rows[green[:8]][3], GREEN_MARKET_G / G_PER_T)
