"""The report as Markdown (GitHub flavour): the HTML report's sections, text and tables.

Same document as the HTML and PDF (:func:`carbon.reports.document.document`), so the same
figures in the same words; the charts are left out (the HTML and PDF have them). Text from
runs (project and run names, notes) is escaped so it cannot change the Markdown around it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from carbon.reports.content import Block, Table
from carbon.reports.document import document

__all__ = ["escape", "render_markdown"]

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def escape(text: str) -> str:
    """Text as literal Markdown: special characters escaped, kept on one line."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def _table(table: Table) -> Iterator[str]:
    if table.caption:
        yield f"*{escape(table.caption)}*"
        yield ""
    yield "| " + " | ".join(escape(column) for column in table.columns) + " |"
    aligns = ("---:" if index in table.numeric else "---" for index in range(len(table.columns)))
    yield "| " + " | ".join(aligns) + " |"
    for row in table.rows:
        yield "| " + " | ".join(escape(cell) for cell in row) + " |"


def _block(block: Block) -> Iterator[str]:
    if block.kind == "figures":
        for figure in block.items:
            yield f"- {escape(figure.text)}"
            if figure.note:
                yield f"  - {escape(figure.note)}"
    elif block.kind == "heading":
        yield f"### {escape(block.text)}"
    elif block.kind == "paragraph":
        yield f"> {escape(block.text)}" if block.style == "illustration" else escape(block.text)
    elif block.kind == "bullets":
        yield from (f"- {escape(item)}" for item in block.items)
    elif block.kind == "table":
        yield from _table(block)


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as one Markdown document (the appendix lists every run).

    Args:
        report: :func:`carbon.reports.build.build_report`'s dict.

    Returns:
        The Markdown text, ending with a newline.
    """
    doc = document(report)
    lines = [f"# {escape(doc.title)}", "", escape(doc.subtitle), ""]
    if not doc.empty:
        lines += [
            "Figures marked as estimates come from models, not meters; equivalents are "
            "illustrations only. Charts are in the HTML and PDF formats of this report.",
            "",
        ]
    lines += ["## Contents", ""]
    lines += [
        f"{number}. [{escape(s.title)}](#{_anchor(s.title)})"
        for number, s in enumerate(doc.sections, 1)
    ]
    for section in doc.sections:
        lines += ["", f"## {escape(section.title)}"]
        for block in section.blocks:
            lines.append("")
            lines.extend(_block(block))
    return "\n".join(lines) + "\n"
