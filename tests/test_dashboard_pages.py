"""Every page of the dashboard rendered on the server, against runs with known figures."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import dash
import flask
import plotly.io
import pytest

from carbon.store import open_store
from carbon.store.teams import create_team
from dashboard.app import create_dashboard
from dashboard.auth import LOCAL_VIEWER
from dashboard.data import VIEWER_KEY, Viewer
from tests.fleet import CPU, H100, RunSpec, write_run

NOW = datetime.now(UTC).replace(microsecond=0)
INFERENCE = {
    "fp32": ({"precision": "fp32"}, 0.95, 300.0),
    "int8": ({"precision": "int8", "quantization": "dynamic"}, 0.94, 200.0),
    "pruned": ({"precision": "fp32", "pruning": "l1", "sparsity": 0.5}, 0.90, 250.0),
}


@pytest.fixture
def fleet(store_url: str) -> dict[str, str]:
    """A training run with FLOPs on an H100, three inference settings, another team's run."""
    store = open_store(store_url)
    ids = {
        "train": write_run(
            store,
            RunSpec(
                project="bert",
                name="train <b>bold</b>",
                started_at=NOW - timedelta(hours=3),
                seconds=40,
                flops=4e15,
                precision="bf16",
                region="FRA",
                intensity_g_per_kwh=50.0,
                tags={"owner": "<script>alert(1)</script>"},
            ),
        )
    }
    for offset, (label, (compression_, accuracy, power_w)) in enumerate(INFERENCE.items()):
        ids[label] = write_run(
            store,
            RunSpec(
                project="bert",
                name=f"serve-{label}",
                kind="inference",
                started_at=NOW - timedelta(hours=2, minutes=-offset),
                seconds=10,
                devices=(("gpu", H100, power_w, "measured"), ("cpu", CPU, 20.0, "estimated")),
                compression=compression_,
                metrics={"accuracy": accuracy},
                samples=1000,
            ),
        )
    with store.session() as session:
        team = create_team(session, "other").id
    ids["other"] = write_run(store, RunSpec(project="secret", name="theirs", team_id=team))
    return ids


@pytest.fixture
def render(store_url: str) -> Callable[..., str]:
    """Call a page's layout in a request of the dashboard, as the default team."""
    app = create_dashboard(open_store(store_url), require_auth=False, secret="x" * 40)

    pages = {
        page.get("path_template") or page["path"]: page for page in dash.page_registry.values()
    }

    def call(path: str, viewer: Viewer = LOCAL_VIEWER, **query: Any) -> str:
        layout = pages[path]["layout"]
        with app.server.test_request_context(path):
            setattr(flask.g, VIEWER_KEY, viewer)
            encoded = plotly.io.json.to_json_plotly(layout(**query))
            return json.dumps(json.loads(encoded), ensure_ascii=False)

    return call


def test_overview_shows_the_known_totals(fleet: dict[str, str], render: Callable[..., str]) -> None:
    text = render("/")
    # 350 W x 40 s + (320 + 220 + 270) W x 10 s = 22,100 J = 6.14 Wh.
    assert "6.14 Wh" in text
    # Only the training run has a factor: 350 W x 40 s = 14,000 J at 50 g/kWh = 194.44 mg.
    assert "194.44 mg" in text
    assert "1 of 4 runs" in text
    assert "overview-trend" in text
    assert "secret" not in text


def test_overview_of_an_empty_store_says_what_to_do(
    store_url: str, render: Callable[..., str]
) -> None:
    assert "No runs yet: run `carbon demo`" in render("/")


def test_runs_table_holds_rows_with_numbers_and_escapes_nothing(
    fleet: dict[str, str], render: Callable[..., str]
) -> None:
    text = render("/runs")
    data = json.loads(text)
    grid = _find(data, "runs-table")
    rows = {row["name"]: row for row in grid["props"]["rowData"]}
    assert set(rows) == {"train <b>bold</b>", "serve-fp32", "serve-int8", "serve-pruned"}
    assert rows["serve-int8"]["energy_j"] == pytest.approx(2200.0)
    assert rows["serve-int8"]["j_per_item"] == pytest.approx(2.2)
    assert rows["serve-int8"]["compression"] == "int8 (dynamic)"
    assert rows["train <b>bold</b>"]["tags"] == "owner=<script>alert(1)</script>"
    filtered = json.loads(render("/runs", kind="inference", compression="int8 (dynamic)"))
    assert [r["name"] for r in _find(filtered, "runs-table")["props"]["rowData"]] == ["serve-int8"]


def test_runs_page_reports_a_bad_filter(fleet: dict[str, str], render: Callable[..., str]) -> None:
    assert "since='last week' is not a date" in render("/runs", since="last week")


def test_run_detail_has_series_methods_and_settings(
    fleet: dict[str, str], render: Callable[..., str]
) -> None:
    text = render("/run/<run_id>", run_id=fleet["train"])
    data = json.loads(text)
    power = _find(data, "run-power")["props"]["figure"]
    lines = [trace for trace in power["data"] if "fill" not in trace]
    assert {trace["name"].split(":")[0] for trace in lines} == {"GPU 0", "CPU 1"}
    gpu = next(trace for trace in lines if trace["name"].startswith("GPU"))
    assert set(_values(gpu["y"])) == {300.0}
    assert "measured (nvml_energy)" in text
    assert "50 gCO2e/kWh for FRA" in text


def test_run_detail_of_another_teams_run_is_not_found(
    fleet: dict[str, str], render: Callable[..., str]
) -> None:
    assert "no run with id" in render("/run/<run_id>", run_id=fleet["other"])


def test_compare_sets_runs_side_by_side(fleet: dict[str, str], render: Callable[..., str]) -> None:
    text = render("/compare", runs=f"{fleet['int8']},{fleet['fp32']}")
    data = json.loads(text)
    table = json.dumps(_find(data, "compare-table"))
    assert "serve-int8" in table
    assert "serve-fp32" in table
    curves = _find(data, "compare-power")["props"]["figure"]["data"]
    assert [set(_values(c["y"])) for c in curves] == [{220.0}, {320.0}]
    assert "Select two or more runs" in render("/compare", runs=fleet["int8"])


def test_hardware_shows_the_h100_and_its_peak(
    fleet: dict[str, str], render: Callable[..., str]
) -> None:
    text = render("/hardware")
    # 4e15 FLOP in 40 s = 1e14 FLOP/s; bf16 dense peak of the H100 SXM is 989.5 TFLOP/s.
    assert "100 TFLOP/s" in text
    assert "hardware-mfu" in text


def test_compression_draws_the_front_and_savings(
    fleet: dict[str, str], render: Callable[..., str]
) -> None:
    text = render("/compression")
    data = json.loads(text)
    figure = _find(data, "compression-pareto")["props"]["figure"]
    names = [trace["name"] for trace in figure["data"]]
    assert names == ["runs", "Pareto front", "baseline (fp32)"]
    table = json.dumps(_find(data, "compression-table"))
    # int8: 2.2 J against 3.2 J per inference = 31.25 % less, -1 accuracy point.
    assert "31.2 %" in table
    assert "-1.00 points" in table


def test_regions_prices_the_selected_runs_elsewhere(
    fleet: dict[str, str], render: Callable[..., str]
) -> None:
    text = render("/regions", runs=fleet["train"], regions="FRA,POL,nowhere")
    data = json.loads(text)
    bars = _find(data, "regions-bars")["props"]["figure"]["data"][0]
    assert bars["x"] == ["FRA", "POL"]
    assert "nowhere" in text


def test_reports_form_lists_the_teams_projects(
    fleet: dict[str, str], render: Callable[..., str]
) -> None:
    text = render("/reports")
    assert "reports-download-button" in text
    assert '"bert"' in text
    assert "secret" not in text


def _find(node: Any, component_id: str) -> dict[str, Any]:
    """The component with this id in a serialised layout."""
    found = _search(node, component_id)
    assert found is not None, f"no component {component_id!r}"
    return found


def _search(node: Any, component_id: str) -> dict[str, Any] | None:
    if isinstance(node, dict) and node.get("props", {}).get("id") == component_id:
        return node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        if (found := _search(child, component_id)) is not None:
            return found
    return None


def _values(encoded: Any) -> list[float]:
    """Plotly's array (a list, or its base64 typed-array form) as floats rounded to 1e-6."""
    if isinstance(encoded, dict):
        import base64

        import numpy as np

        array = np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=encoded["dtype"])
        return [round(float(v), 6) for v in array]
    return [round(float(v), 6) for v in encoded]
