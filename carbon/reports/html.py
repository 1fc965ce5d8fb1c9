"""The report as one self-contained HTML file: opens offline, prints to A4.

The page is rendered with Jinja2 (autoescaped) from ``templates/report.html.j2``; its
styles are inlined and its charts are SVG ``data:`` URIs, so the file references nothing
outside itself. The same HTML is the PDF's source (:mod:`carbon.reports.pdf`): its print
styles set A4 pages, page numbers, repeated table headers and rows that do not split.

A PDF engine lays out every table cell separately, which makes a table of thousands of runs
slow to print; for those, the appendix can be written as a fixed-width listing (one line of
monospaced text per run, the column headings repeated at the top of every page) instead.
"""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import jinja2

from carbon.reports.collect import Progress
from carbon.reports.content import Table
from carbon.reports.document import document

__all__ = ["LISTING_CHARS", "listing_lines", "render_html"]

LISTING_CHARS = 236
"""Characters of a listing line: a landscape A4 line of 5.6 pt DejaVu Sans Mono."""

LISTING_BAND = 5
"""Listing lines shaded together, as on banded paper: fewer boxes to lay out than lines."""

_COLUMN_MIN_CHARS = 4
_TEMPLATE = "report.html.j2"


def svg_data_uri(svg: str) -> str:
    """An SVG document as a ``data:`` URI, which needs no network and isolates its styles."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _fit(cell: str, width: int) -> str:
    """A cell on one line, cut to ``width`` characters; a cut ends with an ellipsis."""
    flat = " ".join(cell.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _widths(table: Table, budget: int) -> list[int]:
    """Column widths: the longest cell or heading word, the widest trimmed until it fits."""
    widths = [max(len(word) for word in column.split()) for column in table.columns]
    for row in table.rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    room = budget - (len(widths) - 1)  # one space between columns
    while sum(widths) > room:
        widest = max(range(len(widths)), key=widths.__getitem__)
        if widths[widest] <= _COLUMN_MIN_CHARS:
            break
        widths[widest] -= 1
    return widths


def listing_lines(table: Table, budget: int = LISTING_CHARS) -> tuple[str, list[str]]:
    """A table as fixed-width text: the headings (wrapped over lines), and a line per row.

    Numeric columns are aligned right, others left; a cell longer than its column is cut
    with an ellipsis (the CSV and JSON formats carry every value in full).

    Returns:
        The heading block (lines joined with newlines) and one line per row.
    """
    widths = _widths(table, budget)
    numeric = table.numeric

    def line(cells: Sequence[str]) -> str:
        parts = [
            _fit(cell, width).rjust(width) if index in numeric else _fit(cell, width).ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return " ".join(parts).rstrip()

    wrapped = [textwrap.wrap(c, w) or [""] for c, w in zip(table.columns, widths, strict=True)]
    depth = max(len(lines) for lines in wrapped)
    # Headings sit on the bottom line, as in a printed table.
    padded = [[""] * (depth - len(lines)) + lines for lines in wrapped]
    head = "\n".join(line([lines[k] for lines in padded]) for k in range(depth))
    return head, [line(row) for row in table.rows]


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("carbon.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["svg_data_uri"] = svg_data_uri
    environment.globals["listing_lines"] = listing_lines
    environment.globals["listing_band"] = LISTING_BAND
    return environment


def render_html(
    report: Mapping[str, Any],
    *,
    charts: bool = True,
    appendix_listing: bool = False,
    progress: Progress | None = None,
) -> str:
    """The report as a self-contained HTML page.

    Args:
        report: :func:`carbon.reports.build.build_report`'s dict.
        charts: Draw the charts (matplotlib); off, the page has the tables only.
        appendix_listing: Write the appendix as a fixed-width listing rather than a table
            (for printing thousands of runs).
        progress: Told ``("drawing charts" | "writing HTML", done, total)``.

    Returns:
        The HTML text.
    """
    maker = None
    if charts and not report.get("empty"):
        from carbon.reports.charts import report_charts

        if progress is not None:
            progress("drawing charts", 0, None)
        maker = report_charts
    doc = document(report, maker)
    if progress is not None:
        progress("writing HTML", 0, len(report.get("runs") or ()))
    html = _environment().get_template(_TEMPLATE).render(doc=doc, appendix_listing=appendix_listing)
    if progress is not None:
        progress("writing HTML", len(report.get("runs") or ()), len(report.get("runs") or ()))
    return html
