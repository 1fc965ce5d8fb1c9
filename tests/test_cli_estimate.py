"""``carbon estimate`` on a small app, registered the way the CLI registers commands."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from carbon.cli.estimate import estimate


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer(add_completion=False)

    @app.callback()
    def _root() -> None:
        """Keep ``estimate`` a subcommand, as in the real app."""

    app.command("estimate")(estimate)
    return app


def test_text_report_has_totals_inputs_and_sources(app: typer.Typer) -> None:
    args = ["estimate", "--gpu", "a100-sxm4-80gb", "--count", "384", "--hours", "2820.2864583"]
    result = CliRunner().invoke(app, [*args, "--intensity", "57"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "433,196.0 kWh (433.196 MWh)" in out
    assert "24.69 tCO2e" in out
    assert "catalog TDP of NVIDIA A100 SXM4 80GB" in out
    assert "given (--intensity)" in out
    for name in ("gpu", "count", "hours", "power_w", "pue", "intensity_g_per_kwh"):
        assert name in out


def test_json_carries_every_input_with_its_source(app: typer.Typer) -> None:
    result = CliRunner().invoke(
        app,
        [
            "estimate",
            "--gpu",
            "V100",
            "--count=10000",
            "--hours=355.2",
            "--power-w=330",
            "--pue=1.1",
            "--intensity=429",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["energy_mwh"] == pytest.approx(1_289.376)
    assert data["co2e_t"] == pytest.approx(553.142304)
    assert data["inputs"]["power_w"] == {"value": 330.0, "source": "given"}
    assert data["inputs"]["pue"] == {"value": 1.1, "source": "given"}
    assert data["gpu_key"] == "v100-sxm2-16gb"


def test_unknown_gpu_is_a_one_line_error(app: typer.Typer) -> None:
    result = CliRunner().invoke(
        app, ["estimate", "--gpu", "RTX 4090", "--count", "1", "--hours", "1", "--intensity", "100"]
    )
    assert result.exit_code == 1
    assert "error: unknown GPU 'RTX 4090'" in result.stderr
    assert result.stdout == ""


def test_bad_count_names_the_argument(app: typer.Typer) -> None:
    result = CliRunner().invoke(
        app, ["estimate", "--gpu", "l4", "--count", "0", "--hours", "1", "--intensity", "100"]
    )
    assert result.exit_code == 1
    assert "count must be at least 1" in result.stderr


def test_intensity_or_region_is_required(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["estimate", "--gpu", "l4", "--count", "1", "--hours", "1"])
    assert result.exit_code == 1
    assert "give --region or --intensity" in result.stderr


def test_region_gives_intensity_and_cloud_pue(app: typer.Typer) -> None:
    result = CliRunner().invoke(
        app,
        [
            "estimate",
            "--gpu",
            "l4",
            "--count",
            "8",
            "--hours",
            "10",
            "--region",
            "gcp:europe-west1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["inputs"]["pue"]["value"] == 1.09  # Google's published fleet PUE
    assert data["inputs"]["intensity_g_per_kwh"]["source"].startswith("gcp:europe-west1: ")
    # 8 L4 x 10 h x 72 W (catalog TDP) x 1.09 = 6.2784 kWh
    assert data["energy_kwh"] == pytest.approx(8 * 10 * 72 * 1.09 / 1000)
