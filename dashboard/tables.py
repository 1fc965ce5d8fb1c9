"""Rows of the runs table: one flat dict per run, built from the run's stable JSON shape.

Numbers stay numbers (the grid sorts and filters them as numbers and shows them with
their unit through ``assets/dashAgGridFunctions.js``); unknown is ``None``, shown as a
dash.
"""

from __future__ import annotations

from typing import Any

from carbon.accounting.compression import compression_label
from carbon.store.browse import energy_provenance, hardware_label
from carbon.store.models import Run
from carbon.store.summary import run_summary


def run_row(run: Run) -> dict[str, Any]:
    """The runs table's row of ``run``."""
    summary = run_summary(run)
    accuracy = run.metrics.get("accuracy")
    return {
        "id": run.id,
        "short_id": run.id[:8],
        "project": summary["project"],
        "name": run.name,
        "kind": run.kind,
        "status": run.status,
        "started_at": summary["started_at"][:19].replace("T", " "),
        "duration_s": run.duration_s,
        "hardware": hardware_label(run),
        "region": run.region,
        "compression": compression_label(run.compression),
        "tags": ", ".join(f"{key}={value}" for key, value in sorted(run.tags.items())),
        "energy_j": run.energy_j,
        "co2e_g": run.co2e_g,
        "j_per_flop": summary["j_per_flop"],
        "mfu": summary["mfu"],
        "j_per_item": summary["j_per_inference"] or summary["j_per_token"],
        "accuracy": float(accuracy) if isinstance(accuracy, int | float) else None,
        "provenance": energy_provenance(run),
        "simulated": run.simulated,
    }


def _number(field: str, header: str, formatter: str, **extra: Any) -> dict[str, Any]:
    return {
        "field": field,
        "headerName": header,
        "filter": "agNumberColumnFilter",
        "type": "rightAligned",
        "valueFormatter": {"function": f"{formatter}(params.value)"},
        **extra,
    }


RUN_COLUMNS: list[dict[str, Any]] = [
    {"field": "name", "headerName": "Run", "minWidth": 190},
    {"field": "project", "headerName": "Project"},
    {"field": "kind", "headerName": "Kind", "width": 110},
    {"field": "status", "headerName": "Status", "width": 120},
    _number("energy_j", "Energy", "energyWh", width=120),
    _number("co2e_g", "CO2e", "massG", width=110),
    _number("j_per_flop", "J/FLOP", "joulesPerFlop", width=110),
    _number("mfu", "MFU", "share", width=100),
    _number("j_per_item", "J per inference/token", "joules"),
    _number("accuracy", "Accuracy", "share", width=110),
    {"field": "compression", "headerName": "Compression", "minWidth": 160},
    {"field": "hardware", "headerName": "Hardware", "minWidth": 180},
    {"field": "region", "headerName": "Region", "width": 110},
    {"field": "started_at", "headerName": "Started (UTC)", "sort": "desc", "minWidth": 170},
    _number("duration_s", "Duration", "duration", width=110),
    {"field": "provenance", "headerName": "Energy is", "width": 120},
    {"field": "short_id", "headerName": "Id", "width": 100},
    {"field": "tags", "headerName": "Tags", "minWidth": 200},
]
"""The grid's columns; every text column is plain text (AG Grid never renders it as HTML)."""
