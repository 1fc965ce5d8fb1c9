"""The report document: every section in order, and the reading aids after the figures.

:func:`document` turns :func:`carbon.reports.build.build_report`'s dict into a
:class:`~carbon.reports.content.Document` that HTML, PDF and Markdown render alike. The
illustrations, recommendations, methodology and appendix are made here; equivalents and
recommendations are read by key with defaults, so an item missing a field still renders
(with a dash).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from carbon._format import (
    MISSING,
    format_duration,
    format_energy_wh,
    format_j_per_flop,
    format_mass_g,
    format_share,
)
from carbon.reports.content import (
    SHORT_ID,
    Block,
    Bullets,
    Chart,
    Document,
    Heading,
    Paragraph,
    Section,
    Table,
    count_text,
    day_text,
    hours_text,
    ids_text,
    minute_text,
    period_text,
    table,
    text,
    version_line,
)
from carbon.reports.emissions_section import emissions
from carbon.reports.sections import (
    boundary,
    breakdown,
    efficiency,
    headline,
    scope_table,
)

__all__ = ["APPENDIX_COLUMNS", "ChartMaker", "appendix_row", "document"]

ChartMaker = Callable[[Mapping[str, Any]], list[tuple[str, Chart]]]
"""Makes a report's charts as ``(section id, chart)`` pairs; Markdown has none."""

APPENDIX_COLUMNS = (
    "Run",
    "Project",
    "Name",
    "Kind",
    "Status",
    "Start (UTC)",
    "Duration",
    "Hardware",
    "Region",
    "Energy",
    "Provenance (method)",
    "Location CO2e",
    "Market CO2e",
    "Embodied CO2e",
    "GPU-hours",
    "J/FLOP",
    "MFU",
    "Compression",
)
"""The appendix's columns: one row per run."""


def _number(value: Any, unit: str) -> str:
    """A value with three significant digits, written out (``0.000705``, never ``7.05e-04``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return MISSING
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f} {unit}".strip()
    decimals = 2 - math.floor(math.log10(abs(value)))
    return f"{value:,.{decimals}f} {unit}".strip()


def _equivalents(report: Mapping[str, Any]) -> list[Block]:
    items = [i for i in report.get("equivalents") or () if isinstance(i, Mapping)]
    blocks: list[Block] = [
        Paragraph(
            "Illustrations only, to give a sense of scale: these comparisons are not "
            "part of the accounting and nothing is netted against them.",
            "illustration",
        )
    ]
    if not items:
        return [*blocks, Paragraph("No illustration applies: the totals are unknown.", "note")]
    for item in items:
        basis = (
            "location-based CO2e"
            if item.get("basis") == "co2e"
            else "facility energy (IT energy x PUE)"
        )
        blocks += [
            Paragraph(
                f"About {_number(item.get('value'), str(item.get('unit') or ''))}: "
                f"{text(item.get('name'))} (illustration, from the period's {basis})."
            ),
            Bullets(
                (
                    f"Factor: {_number(item.get('factor'), str(item.get('factor_unit') or ''))}.",
                    f"Source: {text(item.get('source'))}",
                    f"Note: {text(item.get('note'))}",
                )
            ),
        ]
    return blocks


def _recommendations(report: Mapping[str, Any]) -> list[Block]:
    items = [i for i in report.get("recommendations") or () if isinstance(i, Mapping)]
    if not items:
        return [
            Paragraph(
                "No recommendation: nothing in the period's runs suggests a saving "
                "the report can estimate.",
                "note",
            )
        ]
    blocks: list[Block] = [
        Paragraph("Savings are estimates, not accounting figures; CO2e is location-based.", "note")
    ]
    for item in items:
        runs = [str(r)[:SHORT_ID] for r in item.get("runs") or ()]
        named = ", ".join(runs[:10]) + (f" and {len(runs) - 10} more" if len(runs) > 10 else "")
        blocks += [
            Heading(text(item.get("title"))),
            Paragraph(text(item.get("detail"))),
            Bullets(
                (
                    f"Kind: {text(item.get('kind'))}.",
                    f"Estimated saving: {_saving_j(item.get('saving_j'))} of energy, "
                    f"{_saving_g(item.get('saving_g'))} CO2e.",
                    f"Runs: {len(runs)}" + (f" ({named})." if runs else "."),
                    f"Assumption: {text(item.get('assumption'))}",
                )
            ),
        ]
    return blocks


def _saving_j(value: Any) -> str:
    return format_energy_wh(value) if isinstance(value, int | float) else MISSING


def _saving_g(value: Any) -> str:
    return format_mass_g(value) if isinstance(value, int | float) else MISSING


def _counts(title: str, rows: Sequence[Mapping[str, Any]]) -> str:
    found = ", ".join(f"{text(r['value'])} ({r['runs']} runs)" for r in rows) or MISSING
    return f"{title}: {found}."


def _methodology(report: Mapping[str, Any]) -> list[Block]:
    m = report["methodology"]
    blocks: list[Block] = [
        Paragraph(version_line(report), "version"),
        Bullets(
            (
                _counts("carbon versions that measured the runs", m["run_versions"]),
                _counts("Sampling rates (Hz)", m["sample_hz"]),
                _counts("FLOP counting methods", m["flops_methods"]),
                _counts("Grid intensity sources", m["intensity_sources"]),
                _counts("CO2e methods", m["co2e_methods"]),
            )
        ),
        Heading("PUE"),
    ]
    blocks += table(
        ("PUE", "Source", "Runs"),
        m["pue"],
        lambda p: (text(p["pue"]), text(p["source"]), count_text(p["runs"])),
        numeric=(0, 2),
    )
    if m["fallbacks"]:
        blocks.append(Heading("Fallbacks"))
        blocks += table(
            ("What", "Runs", "Run ids"),
            m["fallbacks"],
            lambda f: (text(f["what"]), count_text(f["runs"]), ids_text(f)),
            numeric=(1,),
        )
    if m["warnings"]:
        blocks.append(Heading("Warnings recorded by runs"))
        blocks += table(
            ("Warning", "Runs", "Run ids"),
            m["warnings"],
            lambda w: (text(w["warning"]), count_text(w["runs"]), ids_text(w)),
            numeric=(1,),
        )
    return [*blocks, Heading("Uncertainties"), Bullets(tuple(m["uncertainties"]))]


def _provenance(run: Mapping[str, Any]) -> str:
    seen: dict[str, str] = {}
    for device in run.get("devices") or ():
        seen.setdefault(
            str(device.get("component")), f"{device.get('provenance')} ({device.get('method')})"
        )
    return "; ".join(f"{c} {p}" for c, p in seen.items()) or MISSING


def appendix_row(run: Mapping[str, Any]) -> tuple[str, ...]:
    """One run as the appendix shows it, in :data:`APPENDIX_COLUMNS` order."""
    status = text(run.get("status")) + (" (simulated)" if run.get("simulated") else "")
    return (
        str(run["id"])[:SHORT_ID],
        text(run.get("project")),
        text(run.get("name")),
        text(run.get("kind")),
        status,
        minute_text(run.get("started_at")),
        format_duration(run.get("duration_s")),
        text(run.get("hardware_label")),
        text(run.get("region")),
        format_energy_wh(run.get("energy_j")),
        _provenance(run),
        format_mass_g(run.get("co2e_g")),
        format_mass_g(run.get("co2e_market_g")),
        format_mass_g(run.get("embodied_g")),
        hours_text(run.get("gpu_hours")),
        format_j_per_flop(run.get("j_per_flop")),
        format_share(run.get("mfu")),
        text(run.get("compression_label")),
    )


def _appendix(report: Mapping[str, Any]) -> list[Block]:
    runs = report["runs"]
    return [
        Table(
            APPENDIX_COLUMNS,
            [appendix_row(run) for run in runs],
            numeric=frozenset({6, 9, 11, 12, 13, 14, 15, 16}),
            name="appendix",
            caption=f"Every run in the period ({len(runs)}), oldest first; CSV and JSON "
            "carry each run's full record.",
            marked=frozenset(i for i, run in enumerate(runs) if run.get("simulated")),
        )
    ]


def _no_runs(scope: Mapping[str, Any]) -> str:
    since = day_text(scope.get("since"), "the first day")
    until = day_text(scope.get("until"), "today")
    return (
        f"No run started between {since} and {until} (UTC) in this report's scope, so it has "
        "no figures: no energy, no emissions, no recommendations."
    )


def document(report: Mapping[str, Any], charts: ChartMaker | None = None) -> Document:
    """The report's document: every section in order, or the short form for an empty period.

    Args:
        report: :func:`carbon.reports.build.build_report`'s dict.
        charts: Makes the charts; each is placed at the end of the section it names.
    """
    scope = report["scope"]
    title = f"Energy and carbon report, {period_text(scope)}"
    subtitle = f"{version_line(report)} Runs from: {text(scope.get('store'))}."
    if report.get("empty"):
        sections = [
            Section("summary", "Summary", [Paragraph(_no_runs(scope), "empty")]),
            Section("scope", "Scope and boundary", [scope_table(scope)]),
            Section(
                "methodology",
                "Methodology and provenance",
                [Paragraph(version_line(report), "version")],
            ),
        ]
        return Document(title, subtitle, sections, empty=True)
    sections = [
        Section("summary", "Summary", headline(report["summary"])),
        Section("scope", "Scope and boundary", boundary(report)),
        Section("breakdown", "Breakdown", breakdown(report)),
        Section("efficiency", "Efficiency", efficiency(report)),
        Section("emissions", "Emissions", emissions(report)),
        Section("equivalents", "Equivalents (illustrations)", _equivalents(report)),
        Section("recommendations", "Recommendations", _recommendations(report)),
        Section("methodology", "Methodology and provenance", _methodology(report)),
        Section("appendix", "Appendix: every run", _appendix(report)),
    ]
    if charts is not None:
        where = {section.id: section for section in sections}
        for section_id, chart in charts(report):
            where[section_id].blocks.append(chart)
    return Document(title, subtitle, sections, empty=False)
