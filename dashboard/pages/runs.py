"""Runs.

Every run of the team in a sortable, filterable table; selected runs lead to Compare or
Regions. The filters live in the address, so a view can be shared.
"""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
from dash import Input, Output, callback, dcc, html

from carbon.store.browse import filter_choices, find_runs
from dashboard.components import field, notice, page
from dashboard.data import reading
from dashboard.tables import RUN_COLUMNS, run_row
from dashboard.urls import join_ids, query_string, run_filter

dash.register_page(__name__, path="/runs", name="Runs", title="carbon: runs", order=1)

MAX_ROWS = 1000
"""Most runs the table holds; a narrower filter finds older ones."""

_DROPDOWNS = (
    ("project", "Project"),
    ("kind", "Kind"),
    ("status", "Status"),
    ("hardware", "Hardware"),
    ("region", "Region"),
    ("compression", "Compression"),
    ("tag", "Tag"),
)


def layout(**query: Any) -> html.Div:
    """The runs matching the filters in the address."""
    params = {key: str(value) for key, value in query.items() if isinstance(value, str)}
    run_filter_, problems = run_filter(params)
    with reading() as (session, team_id):
        choices = filter_choices(session, team_id=team_id)
        runs = find_runs(session, run_filter_, team_id=team_id, limit=MAX_ROWS + 1)
        rows = [run_row(run) for run in runs[:MAX_ROWS]]
    filters: list[Any] = [
        field(
            label,
            dcc.Dropdown(
                id=f"runs-filter-{key}",
                options=choices["tags" if key == "tag" else key],
                value=params.get(key) or None,
                placeholder="any",
            ),
        )
        for key, label in _DROPDOWNS
    ]
    filters += [
        field(
            label,
            dcc.DatePickerSingle(
                id=f"runs-filter-{key}",
                date=params.get(key) or None,
                display_format="YYYY-MM-DD",
                clearable=True,
            ),
        )
        for key, label in (("since", "Started from"), ("until", "Started until"))
    ]
    messages = [notice(problem, kind="warning") for problem in problems]
    if not choices["project"]:
        messages.append(
            notice(
                "No runs yet: run `carbon demo`, or wrap your code with `carbon.track()`.",
                notice_id="runs-empty",
            )
        )
    elif not rows:
        messages.append(notice("No run matches these filters.", notice_id="runs-empty"))
    if len(runs) > MAX_ROWS:
        messages.append(
            notice(
                f"Showing the newest {MAX_ROWS} runs; narrow the filters to see older ones.",
                kind="warning",
            )
        )
    return page(
        "Runs",
        dcc.Location(id="runs-url", refresh="callback-nav"),
        html.Div(filters, className="filters"),
        *messages,
        html.Div(
            [
                dcc.Link(
                    "Compare selected",
                    id="runs-compare",
                    href="/compare",
                    className="button disabled",
                ),
                dcc.Link(
                    "CO2e in other regions",
                    id="runs-regions",
                    href="/regions",
                    className="button secondary disabled",
                ),
                html.Span(
                    "select two or more runs to compare them",
                    id="runs-selection",
                    className="muted",
                ),
                html.Span(f"{len(rows):,} runs", id="runs-count", className="muted"),
            ],
            className="toolbar",
        ),
        dag.AgGrid(
            id="runs-table",
            rowData=rows,
            columnDefs=RUN_COLUMNS,
            getRowId="params.data.id",
            defaultColDef={"sortable": True, "filter": True, "resizable": True},
            dashGridOptions={
                "rowSelection": {"mode": "multiRow", "checkboxes": True, "headerCheckbox": False},
                "animateRows": False,
                "pagination": True,
                "paginationPageSize": 50,
                "paginationPageSizeSelector": False,
            },
            style={"height": "600px"},
        ),
        page_id="runs-page",
    )


@callback(
    Output("runs-url", "search"),
    *[Input(f"runs-filter-{key}", "value") for key, _ in _DROPDOWNS],
    Input("runs-filter-since", "date"),
    Input("runs-filter-until", "date"),
    prevent_initial_call=True,
)
def _filters_to_url(*values: str | None) -> str:
    """Write the filters into the address, which redraws the table."""
    keys = [key for key, _ in _DROPDOWNS] + ["since", "until"]
    return query_string(dict(zip(keys, values, strict=True)))


@callback(
    Output("runs-compare", "href"),
    Output("runs-compare", "className"),
    Output("runs-regions", "href"),
    Output("runs-regions", "className"),
    Output("runs-selection", "children"),
    Input("runs-table", "selectedRows"),
)
def _selection_to_links(selected: list[dict[str, Any]] | None) -> tuple[str, str, str, str, str]:
    """Point Compare and Regions at the selected runs."""
    ids = [row["id"] for row in selected or []]
    compare_ready = len(ids) >= 2
    runs = join_ids(ids)
    return (
        f"/compare{query_string({'runs': runs})}",
        "button" if compare_ready else "button disabled",
        f"/regions{query_string({'runs': runs})}",
        "button secondary" if ids else "button secondary disabled",
        f"{len(ids)} selected" if ids else "select two or more runs to compare them",
    )
