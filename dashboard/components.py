"""Small pieces of layout the pages share: figure cards, key-value tables, notices.

Every text a user supplied (run names, tags, settings) is passed to Dash components as
text, which React escapes; nothing here builds HTML from strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from dash import dcc, html

GRAPH_CONFIG: Any = {"displaylogo": False, "responsive": True}
"""Plotly's mode bar without the logo; figures follow their container's size."""


def stat(
    label: str, value: str, *, note: str | None = None, stat_id: str | None = None
) -> html.Div:
    """A headline figure with its label and, below, how it was obtained or what it covers."""
    children: list[Any] = [
        html.Div(label, className="stat-label"),
        html.Div(value, className="stat-value"),
    ]
    if note:
        children.append(html.Div(note, className="stat-note"))
    return html.Div(
        children, className="stat", id=stat_id or f"stat-{label.lower().replace(' ', '-')}"
    )


def stats_row(stats: Sequence[html.Div], row_id: str) -> html.Div:
    """Headline figures side by side."""
    return html.Div(list(stats), className="stats", id=row_id)


def graph(graph_id: str, figure: go.Figure, *, title: str, height: int = 360) -> html.Section:
    """A titled card holding one figure."""
    return html.Section(
        [
            html.H3(title),
            dcc.Graph(
                id=graph_id, figure=figure, config=GRAPH_CONFIG, style={"height": f"{height}px"}
            ),
        ],
        className="card",
    )


def notice(
    text: str | Sequence[Any], *, kind: str = "info", notice_id: str | None = None
) -> html.Div:
    """A message box: ``info`` (what to do next), ``warning`` or ``error``."""
    props: dict[str, Any] = {"className": f"notice notice-{kind}", "role": "status"}
    if notice_id is not None:
        props["id"] = notice_id
    return html.Div(text, **props)


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def key_values(rows: Mapping[str, Any] | Sequence[tuple[str, Any]], table_id: str) -> html.Table:
    """A two-column table of names and values (settings, tags, metrics, methods)."""
    items = list(rows.items()) if isinstance(rows, Mapping) else list(rows)
    if not items:
        return html.Table(
            html.Tbody(html.Tr(html.Td("none", className="muted"))), id=table_id, className="kv"
        )
    return html.Table(
        html.Tbody([html.Tr([html.Th(str(name)), html.Td(_text(value))]) for name, value in items]),
        id=table_id,
        className="kv",
    )


def page(title: str, *children: Any, page_id: str) -> html.Div:
    """A page: its heading, then its content."""
    return html.Div([html.H2(title), *children], id=page_id, className="page")


def field(label: str, control: Any) -> html.Div:
    """A form control under its label; the label names the control (by its id) for readers."""
    return html.Div([html.Label(label, htmlFor=control.id), control])
