"""A built report in any of its formats: HTML, PDF, CSV, JSON or Markdown, as bytes.

Every format renders the same document (:func:`carbon.reports.build.build_report`): JSON is
the document itself, CSV its per-run appendix with full records, and HTML, PDF and Markdown
its sections, with the headline figures worded identically in all three. The HTML and PDF
modules load their libraries (Jinja2, matplotlib, WeasyPrint) only when asked for.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from carbon.errors import ConfigError
from carbon.reports.collect import Progress
from carbon.reports.export import FIRST_COLUMNS, runs_csv

__all__ = ["FORMATS", "MEDIA_TYPES", "render_report", "report_csv", "report_json"]

FORMATS: tuple[str, ...] = ("html", "pdf", "csv", "json", "md")
"""The formats a report is written in."""

MEDIA_TYPES: dict[str, str] = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
}
"""The HTTP media type of each format."""


def report_json(report: Mapping[str, Any]) -> str:
    """The report document as indented JSON; NaN or infinity is an error, not invalid JSON."""
    return json.dumps(report, indent=2, allow_nan=False)


def report_csv(report: Mapping[str, Any]) -> str:
    """One row per run with every figure and its method (see :func:`runs_csv`).

    A period without runs gives the header of the leading columns alone, still valid CSV.
    """
    runs = report.get("runs") or []
    if runs:
        return runs_csv(runs)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(FIRST_COLUMNS)
    return buffer.getvalue()


def render_report(
    report: Mapping[str, Any], fmt: str, *, progress: Progress | None = None
) -> bytes:
    """The report in format ``fmt``, UTF-8 encoded where it is text.

    Args:
        report: :func:`carbon.reports.build.build_report`'s dict.
        fmt: One of :data:`FORMATS`.
        progress: Called as ``progress(stage, done, total)`` while rendering; total may
            be ``None``.

    Returns:
        The file's bytes.

    Raises:
        ConfigError: ``fmt`` is not one of :data:`FORMATS`.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if progress is not None:
        progress(f"rendering {fmt}", 0, None)
    if fmt == "pdf":
        from carbon.reports.pdf import render_pdf

        content = render_pdf(report, progress=progress)
    elif fmt == "html":
        from carbon.reports.html import render_html

        content = render_html(report, progress=progress).encode("utf-8")
    elif fmt == "md":
        from carbon.reports.markdown import render_markdown

        content = render_markdown(report).encode("utf-8")
    elif fmt == "csv":
        content = report_csv(report).encode("utf-8")
    else:
        content = report_json(report).encode("utf-8")
    if progress is not None:
        progress(f"rendering {fmt}", 1, 1)
    return content
