"""The command line, run as users run it: a separate process with its own environment."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import carbon
from carbon.settings import Settings
from carbon.sources.base import Component
from carbon.testing import ConstantPowerSource


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carbon", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _env(settings: Settings) -> dict[str, str]:
    return {
        "CARBON_DATABASE_URL": settings.resolved_database_url,
        "CARBON_HOME": str(settings.home),
    }


def _make_runs(settings: Settings) -> list[str]:
    ids = []
    for kind, compression in [
        ("training", {"precision": "fp32"}),
        ("inference", {"precision": "int8"}),
    ]:
        sources = [ConstantPowerSource(20.0, component=Component.CPU, name="cpu")]
        with carbon.track(
            project="cli", name=f"{kind}-run", kind=kind, compression=compression,
            settings=settings, sources=sources,
        ) as run:  # fmt: skip
            run.step(samples=10)
            time.sleep(0.2)
        ids.append(run.id)
    return ids


def test_runs_list_and_show_json_have_the_documented_fields(settings: Settings) -> None:
    ids = _make_runs(settings)
    listed = cli("runs", "list", "--json", env=_env(settings))
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert [r["id"] for r in runs] == ids[::-1]  # newest first
    assert {r["kind"] for r in runs} == {"training", "inference"}

    shown = cli("runs", "show", ids[0][:8], "--json", env=_env(settings))
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert summary == runs[1]
    assert summary["energy_j"] == pytest.approx(20.0 * summary["duration_s"], rel=0.01)
    assert summary["energy_method"]["cpu"] == "constant_test"
    assert summary["compression"] == {"precision": "fp32"}


def test_runs_list_and_show_as_text(settings: Settings) -> None:
    ids = _make_runs(settings)
    listed = cli("runs", "list", env=_env(settings))
    assert listed.returncode == 0, listed.stderr
    assert ids[0][:8] in listed.stdout
    assert "training-run" in listed.stdout
    shown = cli("runs", "show", ids[1], env=_env(settings))
    assert shown.returncode == 0, shown.stderr
    assert "constant_test, measured" in shown.stdout
    assert "CO2e" in shown.stdout


def test_unknown_run_id_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    result = cli("runs", "show", "0123456789", env={"CARBON_HOME": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no run with id '0123456789'"
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_named_with_password_masked(tmp_path: Path) -> None:
    url = "postgresql://bob:hunter2@127.0.0.1:1/carbon"
    result = cli("runs", "list", env={"CARBON_DATABASE_URL": url, "CARBON_HOME": str(tmp_path)})
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "postgresql://bob:***@127.0.0.1:1/carbon" in result.stderr
    assert "hunter2" not in result.stderr


def test_bad_setting_names_the_variable(tmp_path: Path) -> None:
    result = cli("runs", "list", env={"CARBON_PUE": "0.5", "CARBON_HOME": str(tmp_path)})
    assert result.returncode == 1
    assert "CARBON_PUE=" in result.stderr
    assert "PUE must be a finite number >= 1.0" in result.stderr


def test_db_upgrade_creates_the_store(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    result = cli("db", "upgrade", env={"CARBON_DATABASE_URL": f"sqlite:///{db}"})
    assert result.returncode == 0, result.stderr
    assert "at schema revision 0005" in result.stdout
    current = cli("db", "current", env={"CARBON_DATABASE_URL": f"sqlite:///{db}"})
    assert current.stdout.strip().endswith("0005 (this carbon needs 0005)")


def test_empty_store_says_how_to_start(tmp_path: Path) -> None:
    result = cli("runs", "list", env={"CARBON_HOME": str(tmp_path)})
    assert result.returncode == 0
    assert "no runs yet" in result.stdout
    assert "carbon demo" in result.stdout


def test_doctor_explains_what_is_measured_here(tmp_path: Path) -> None:
    result = cli("doctor", "--json", env={"CARBON_HOME": str(tmp_path), "CARBON_REGION": "DE"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    by_method = {(p["component"], p["method"]): p for p in report["probes"]}
    assert {
        ("gpu", "nvml"),
        ("cpu", "rapl"),
        ("cpu", "tdp_estimate"),
        ("ram", "ram_estimate"),
    } <= set(by_method)
    used = {p["component"]: p["method"] for p in report["probes"] if p["used"]}
    assert used["cpu"] in ("rapl", "tdp_estimate")
    assert {d["component"] for d in report["devices"]} >= {"cpu", "ram"}
    for device in report["devices"]:
        assert device["provenance"] in ("measured", "integrated", "estimated")
        assert device["detail"]
    assert report["region"] == "DE"
    text = cli("doctor", env={"CARBON_HOME": str(tmp_path)})
    assert "A run started now will measure:" in text.stdout
    assert "region     not set" in text.stdout
