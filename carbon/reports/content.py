"""The report as format-neutral blocks: headings, paragraphs, tables and headline figures.

HTML, PDF and Markdown all render the :class:`Document` made here, so every format states
the same figures in the same words; only the presentation differs. Values are formatted
once, here: unknown is an em dash (or "not reported" where a scope has no figure), never 0.
The headline lines have one fixed wording (:data:`FIGURE_LABELS`), which readers and tests
can find in any format's text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from carbon._format import MISSING, format_energy_wh, format_mass_g
from carbon.units import J_PER_KWH

__all__ = [
    "FIGURE_LABELS",
    "Block",
    "Bullets",
    "Chart",
    "Document",
    "Figure",
    "Figures",
    "Heading",
    "Paragraph",
    "Section",
    "Table",
    "change_text",
    "count_text",
    "kg_text",
    "kwh_text",
    "partial_text",
    "share_text",
]

NOT_REPORTED = "not reported"
"""A scope figure that no run has: different from zero emissions."""

FIGURE_LABELS = (
    "Energy (IT, before PUE)",
    "Location-based CO2e (Scope 2)",
    "Market-based CO2e (Scope 2)",
    "Embodied CO2e (Scope 3)",
    "GPU-hours",
    "Runs",
    "Estimated share of energy",
)
"""The summary's headline figures, in order; each prints as ``label: value``."""

ParagraphStyle = Literal["", "note", "statement", "empty", "version", "illustration"]


@dataclass(frozen=True, slots=True)
class Figure:
    """A headline figure: printed as ``label: value``, with an optional note beneath."""

    label: str
    value: str
    note: str | None = None

    @property
    def text(self) -> str:
        """The figure as one line of text."""
        return f"{self.label}: {self.value}"


@dataclass(frozen=True, slots=True)
class Figures:
    """A list of headline figures."""

    items: tuple[Figure, ...]
    kind: Literal["figures"] = "figures"


@dataclass(frozen=True, slots=True)
class Heading:
    """A sub-heading inside a section."""

    text: str
    kind: Literal["heading"] = "heading"


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A paragraph of text; ``style`` tells the renderer what kind of text it is."""

    text: str
    style: ParagraphStyle = ""
    kind: Literal["paragraph"] = "paragraph"


@dataclass(frozen=True, slots=True)
class Bullets:
    """An unordered list of short texts."""

    items: tuple[str, ...]
    kind: Literal["bullets"] = "bullets"


@dataclass(frozen=True, slots=True)
class Table:
    """A table of formatted cells.

    Attributes:
        columns: Column headings.
        rows: One tuple of cell texts per row, as long as ``columns``.
        numeric: Indexes of columns whose cells are numbers (aligned right).
        name: What the table is (``appendix``, ``scope``); renderers style by it.
        caption: A sentence that says what the rows are.
        marked: Indexes of rows to set apart (simulated runs in the appendix).
    """

    columns: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    numeric: frozenset[int] = frozenset()
    name: str = ""
    caption: str | None = None
    marked: frozenset[int] = frozenset()
    kind: Literal["table"] = "table"


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart as an SVG document, with a title that says what it shows."""

    title: str
    svg: str
    kind: Literal["chart"] = "chart"


Block = Figures | Heading | Paragraph | Bullets | Table | Chart


@dataclass(frozen=True, slots=True)
class Section:
    """A top-level section: an anchor id, a title and its blocks."""

    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Document:
    """The whole report, ready for a renderer.

    Attributes:
        title: The report's title, with its period.
        subtitle: When and by what it was generated, and from which store.
        sections: The sections in reading order.
        empty: No run started in the period; the document is short.
    """

    title: str
    subtitle: str
    sections: list[Section]
    empty: bool


def kwh_text(energy_kwh: float | None) -> str:
    """Energy in kWh with three decimals; below 1 kWh also at a readable scale (``460 mWh``)."""
    if energy_kwh is None:
        return MISSING
    fixed = f"{energy_kwh:,.3f} kWh"
    return (
        fixed if abs(energy_kwh) >= 1 else f"{fixed} ({format_energy_wh(energy_kwh * J_PER_KWH)})"
    )


def kg_text(mass_g: float | None, missing: str = MISSING) -> str:
    """CO2e in kg with three decimals (gram resolution); below 1 kg also as ``175 mg``."""
    if mass_g is None:
        return missing
    fixed = f"{mass_g / 1000:,.3f} kgCO2e"
    return fixed if abs(mass_g) >= 1000 else f"{fixed} ({format_mass_g(mass_g)})"


def share_text(fraction: float | None) -> str:
    """A fraction as a percentage with one decimal."""
    return MISSING if fraction is None else f"{fraction * 100:.1f} %"


def change_text(fraction: float | None) -> str:
    """A relative change with its sign (``+12.5 %``); a dash when it cannot be computed."""
    return MISSING if fraction is None else f"{fraction * 100:+.1f} %"


def count_text(count: int | None) -> str:
    """A count with thousands separators."""
    return MISSING if count is None else f"{count:,}"


def partial_text(mass_g: float | None, covered: int, total: int) -> str:
    """A CO2e figure of a group, saying how many of its runs it covers when not all."""
    if mass_g is None:
        return MISSING
    text = format_mass_g(mass_g)
    return text if covered >= total else f"{text} ({covered} of {total} runs)"


def hours_text(hours: float | None) -> str:
    """Hours with two decimals."""
    return MISSING if hours is None else f"{hours:,.2f}"


def day_text(iso: str | None, missing: str = MISSING) -> str:
    """The day of an ISO date or datetime."""
    return missing if not iso else str(iso)[:10]


def minute_text(iso: str | None) -> str:
    """An ISO datetime to the minute, as ``YYYY-MM-DD HH:MM`` (UTC as stored)."""
    return MISSING if not iso else str(iso)[:16].replace("T", " ")


def text(value: Any) -> str:
    """Any cell value as text; ``None`` and empty strings are unknown."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.6g}"
    return str(value)


def table(
    columns: Sequence[str],
    items: Sequence[Mapping[str, Any]],
    cells: Callable[[Mapping[str, Any]], Sequence[str]],
    *,
    numeric: Sequence[int] = (),
    name: str = "",
    caption: str | None = None,
) -> list[Block]:
    """A table of ``items``, or nothing when there are none (no empty tables)."""
    if not items:
        return []
    return [
        Table(
            columns=tuple(columns),
            rows=[tuple(cells(item)) for item in items],
            numeric=frozenset(numeric),
            name=name,
            caption=caption,
        )
    ]


SHORT_ID = 8
"""Characters of a run id the tables show; the CSV and JSON carry the full id."""


def ids_text(found: Mapping[str, Any]) -> str:
    """Listed run ids, shortened, and how many more there are (``{runs, run_ids}``)."""
    ids = [str(i)[:SHORT_ID] for i in found.get("run_ids") or ()]
    more = int(found.get("runs") or 0) - len(ids)
    return ", ".join(ids) + (f" and {more} more" if more > 0 else "")


def period_text(scope: Mapping[str, Any]) -> str:
    """The period as words: ``2026-11-01 to 2026-11-30``, open ends named."""
    since = day_text(scope.get("since"), "the first run")
    until = day_text(scope.get("until"), "the last run")
    return f"{since} to {until}"


def version_line(report: Mapping[str, Any]) -> str:
    """Which carbon wrote the report, when, and the document's shape version."""
    generator = report.get("generator") or {}
    return (
        f"Generated by {generator.get('name', 'carbon')} {generator.get('version', MISSING)} "
        f"at {minute_text(report.get('generated_at'))} UTC; report document version "
        f"{report.get('report_version', MISSING)}."
    )
