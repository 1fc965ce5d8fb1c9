"""The report as a PDF: the HTML report laid out on A4 pages by WeasyPrint, offline.

The PDF is printed from the same HTML as the HTML format (:mod:`carbon.reports.html`), so
both say the same thing; the print styles give A4 pages, page numbers and table headers
repeated on each page. WeasyPrint is given a URL fetcher that allows ``data:`` URIs only:
the document embeds everything it shows, and nothing is ever fetched over the network or
read from disk.

WeasyPrint lays out each table cell separately (about a millisecond per cell), so an
appendix of thousands of runs as a table would take minutes; past
:data:`APPENDIX_TABLE_RUNS` runs the appendix is printed as a fixed-width listing, one
line per run, which lays out in seconds.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from carbon.reports.collect import Progress
from carbon.reports.html import render_html

__all__ = ["APPENDIX_TABLE_RUNS", "offline_fetcher", "render_pdf"]

APPENDIX_TABLE_RUNS = 300
"""Most runs the PDF's appendix shows as a table; beyond, a fixed-width listing."""


def _weasyprint() -> Any:
    """WeasyPrint, imported on first use: it loads Pango and fonts, which takes a while."""
    with warnings.catch_warnings():
        # Without the optional HarfBuzz subset library WeasyPrint subsets fonts with
        # fontTools instead, and says at import that a future version will require it.
        warnings.filterwarnings(
            "ignore", message="HarfBuzz-Subset will be required", category=DeprecationWarning
        )
        import weasyprint
        import weasyprint.urls
    return weasyprint


def offline_fetcher() -> Any:
    """A WeasyPrint URL fetcher that serves ``data:`` URIs and refuses every other URL.

    The report embeds all it shows (styles inline, charts as ``data:`` URIs), so any other
    URL would be a mistake: it is refused rather than fetched, and the PDF is made offline.
    """
    return _weasyprint().urls.URLFetcher(allowed_protocols=("data",))


def render_pdf(
    report: Mapping[str, Any],
    *,
    progress: Progress | None = None,
    table_runs: int = APPENDIX_TABLE_RUNS,
) -> bytes:
    """The report as PDF bytes.

    Args:
        report: :func:`carbon.reports.build.build_report`'s dict.
        progress: Told what is being done: the HTML stages, then ``laying out pages`` and
            ``writing PDF`` with pages done of pages.
        table_runs: Most runs the appendix shows as a table; more are listed line by line.

    Returns:
        The PDF document.
    """
    weasyprint = _weasyprint()
    fetcher = offline_fetcher()
    listing = len(report.get("runs") or ()) > table_runs
    html = render_html(report, appendix_listing=listing, progress=progress)
    if progress is not None:
        progress("laying out pages", 0, None)
    laid_out = weasyprint.HTML(string=html, url_fetcher=fetcher, media_type="print").render()
    pages = len(laid_out.pages)
    if progress is not None:
        progress("writing PDF", 0, pages)
    content = laid_out.write_pdf()
    if progress is not None:
        progress("writing PDF", pages, pages)
    if content is None:  # pragma: no cover - write_pdf returns bytes when given no target
        raise RuntimeError("WeasyPrint returned no PDF")
    return bytes(content)
