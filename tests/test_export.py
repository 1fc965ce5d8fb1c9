"""Runs exported as CSV and JSON: every figure with its method, unknown left empty."""

from __future__ import annotations

import csv
import io
import json

import pytest

from carbon.reports.export import flatten_summary, runs_csv, runs_json

SUMMARIES = [
    {
        "id": "a" * 32,
        "project": "bert",
        "name": "train",
        "energy_j": 3600.0,
        "co2e_g": None,
        "energy_by_component_j": {"gpu": 3000.0, "cpu": 600.0, "ram": None},
        "warnings": ["no region"],
        "devices": [{"component": "gpu", "method": "nvml_energy"}],
    },
    {
        "id": "b" * 32,
        "project": "bert",
        "name": "serve",
        "energy_j": 7.5,
        "co2e_g": 0.1,
        "extra": 1,
    },
]


def test_flatten_uses_dotted_names_and_json_for_lists() -> None:
    row = flatten_summary(SUMMARIES[0])
    assert row["energy_by_component_j.gpu"] == 3000.0
    assert row["energy_by_component_j.ram"] is None
    assert json.loads(row["devices"]) == [{"component": "gpu", "method": "nvml_energy"}]


def test_csv_has_the_union_of_columns_and_empty_unknowns() -> None:
    rows = list(csv.DictReader(io.StringIO(runs_csv(SUMMARIES))))
    assert list(rows[0])[:5] == ["id", "project", "name", "energy_j", "co2e_g"]
    assert rows[0]["co2e_g"] == ""
    assert rows[0]["energy_by_component_j.ram"] == ""
    assert float(rows[0]["energy_j"]) == 3600.0
    assert rows[1]["extra"] == "1"
    assert rows[0]["extra"] == ""
    assert rows[1]["devices"] == ""


def test_json_carries_the_scope_and_refuses_nan() -> None:
    document = json.loads(runs_json(SUMMARIES, scope={"since": "2026-11-01"}))
    assert document["scope"] == {"since": "2026-11-01"}
    assert document["runs"][0]["co2e_g"] is None
    with pytest.raises(ValueError, match="Out of range float"):
        runs_json([{"energy_j": float("nan")}], scope={})
