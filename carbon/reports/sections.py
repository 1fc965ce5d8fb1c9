"""The accounting sections: summary, scope and boundary, breakdown, efficiency.

Each function turns its part of :func:`carbon.reports.build.build_report`'s dict into
blocks of :mod:`carbon.reports.content` (emissions: :mod:`carbon.reports.emissions_section`);
:mod:`carbon.reports.document` puts them in order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from carbon._format import (
    MISSING,
    format_energy,
    format_energy_wh,
    format_j_per_flop,
    format_mass_g,
    format_share,
)
from carbon.reports.content import (
    NOT_REPORTED,
    SHORT_ID,
    Block,
    Bullets,
    Figure,
    Figures,
    Heading,
    Paragraph,
    Table,
    change_text,
    count_text,
    hours_text,
    kg_text,
    kwh_text,
    minute_text,
    partial_text,
    period_text,
    share_text,
    table,
    text,
)

__all__ = ["boundary", "breakdown", "efficiency", "headline", "scope_table"]


def headline(summary: Mapping[str, Any]) -> list[Block]:
    """The headline figures with what each covers, and the change against the last period."""
    runs = int(summary["runs"])
    status = ", ".join(f"{n} {name}" for name, n in summary["runs_by_status"].items())
    facility = summary.get("facility_energy_kwh")
    market_note = (
        f"Covers {summary['market_runs']} of {runs} runs: those with a contractual instrument."
        if summary["co2e_market_g"] is not None
        else "No contractual instrument was recorded for any run."
    )
    figures = (
        Figure(
            "Energy (IT, before PUE)",
            kwh_text(summary["energy_kwh"]),
            f"{summary['energy_runs']} of {runs} runs have energy; with each run's PUE "
            f"(facility energy): {kwh_text(facility)}.",
        ),
        Figure(
            "Location-based CO2e (Scope 2)",
            kg_text(summary["co2e_g"]),
            f"Covers {summary['co2e_runs']} of {runs} runs: those with a grid factor.",
        ),
        Figure(
            "Market-based CO2e (Scope 2)",
            kg_text(summary["co2e_market_g"], NOT_REPORTED),
            market_note,
        ),
        Figure(
            "Embodied CO2e (Scope 3)",
            kg_text(summary["embodied_g"], NOT_REPORTED),
            f"Covers {summary['embodied_runs']} runs; {summary['embodied_unknown_runs']} runs "
            "on GPUs without a published manufacturing factor are not counted.",
        ),
        Figure("GPU-hours", hours_text(summary["gpu_hours"])),
        Figure("Runs", str(runs), f"{status}; {summary['simulated_runs']} simulated."),
        Figure(
            "Estimated share of energy",
            share_text(summary["estimated_share"]),
            "Estimate: the share of the devices' energy that comes from models (CPU TDP x "
            "load, power per memory DIMM) rather than hardware readings.",
        ),
    )
    blocks: list[Block] = [Figures(figures)]
    before = summary.get("previous")
    change = summary.get("change") or {}
    if before:
        formats: tuple[tuple[str, str, str, Callable[[Any], str]], ...] = (
            ("Runs", "runs", "runs", str),
            ("Energy (IT)", "energy_kwh", "energy_j", kwh_text),
            ("Location-based CO2e", "co2e_g", "co2e_g", kg_text),
            ("Market-based CO2e", "co2e_market_g", "co2e_market_g", _market_text),
            ("GPU-hours", "gpu_hours", "gpu_hours", hours_text),
        )
        rows = [
            (label, show(summary[key]), show(before[key]), change_text(change.get(changed)))
            for label, key, changed, show in formats
        ]
        blocks.append(
            Table(
                ("Figure", "This period", f"Previous period ({period_text(before)})", "Change"),
                rows,
                numeric=frozenset({1, 2, 3}),
                name="change",
                caption="Change against the previous period of the same length.",
            )
        )
    return blocks


def _market_text(mass_g: float | None) -> str:
    return kg_text(mass_g, NOT_REPORTED)


def scope_table(scope: Mapping[str, Any]) -> Table:
    """What the report covers: period, projects, team, thresholds and the store."""
    days = scope.get("days")
    rows = [
        (
            "Period",
            f"{period_text(scope)} ({scope.get('time_zone') or 'UTC'})"
            + (f", {days} days" if days else ""),
        ),
        ("Runs counted", text(scope.get("run_rule"))),
        ("Projects", ", ".join(scope.get("projects") or ()) or "all"),
        ("Team", scope.get("team") or "all the reader may see"),
        ("Breakdown by", text(scope.get("group_by"))),
        (
            "Largest accuracy loss for a compression recommendation",
            text(scope.get("max_accuracy_loss")),
        ),
        ("MFU below which training runs are named", share_text(scope.get("mfu_threshold"))),
        ("Store", text(scope.get("store"))),
    ]
    return Table(("Item", "Value"), rows, name="scope")


def boundary(report: Mapping[str, Any]) -> list[Block]:
    """The scope, what was measured and how (provenance by component, methods), and what not."""
    b = report["boundary"]
    blocks: list[Block] = [scope_table(report["scope"]), Heading("What was measured")]
    blocks += table(
        ("Component", "Runs", "Energy", "Share", "Measured", "Integrated", "Estimated"),
        b["components"],
        lambda c: (
            str(c["component"]).upper(),
            count_text(c["runs"]),
            format_energy_wh(c["energy_j"]),
            format_share(c["share"]),
            *(format_energy_wh(c["energy_by_provenance_j"].get(p)) for p in _PROVENANCES),
        ),
        numeric=(1, 2, 3, 4, 5, 6),
        caption="Measured: hardware energy counters. Integrated: power readings integrated "
        "over time. Estimated: models, not meters.",
    )
    blocks += table(
        ("Component", "Method", "Provenance", "Covers", "How", "Runs", "Energy"),
        b["methods"],
        lambda m: (
            str(m["component"]).upper(),
            text(m["method"]),
            text(m["provenance"]),
            text(m["boundary"]),
            text(m["description"]),
            count_text(m["runs"]),
            format_energy_wh(m["energy_j"]),
        ),
        numeric=(5, 6),
    )
    notes = [
        f"{len(b['runs_estimated_only'])} runs were measured only by models (estimates).",
        f"{len(b['simulated_runs'])} runs used simulated hardware.",
        f"{len(b['unfinished_runs'])} runs were still running; counted up to their last report.",
    ]
    blocks += [Bullets(tuple(notes)), Heading("Included"), Bullets(tuple(b["included"]))]
    blocks += [Heading("Not included"), Bullets(tuple(b["excluded"]))]
    return blocks


_PROVENANCES = ("measured", "integrated", "estimated")
_GROUP_COLUMNS = (
    "Runs",
    "Energy",
    "Share of energy",
    "Location CO2e",
    "Market CO2e",
    "Embodied CO2e",
    "GPU-hours",
)


def _group_cells(g: Mapping[str, Any]) -> tuple[str, ...]:
    return (
        text(g["name"]),
        count_text(g["runs"]),
        format_energy_wh(g["energy_j"]),
        format_share(g["energy_share"]),
        partial_text(g["co2e_g"], g["co2e_runs"], g["runs"]),
        partial_text(g["co2e_market_g"], g["market_runs"], g["runs"]),
        format_mass_g(g["embodied_g"]),
        hours_text(g["gpu_hours"]),
    )


def breakdown(report: Mapping[str, Any]) -> list[Block]:
    """Totals by the chosen dimension and by phase, and the runs that emitted most."""
    b = report["breakdown"]
    by = str(b["group_by"])
    blocks: list[Block] = [Heading(f"By {by}")]
    blocks += table(
        (by.capitalize(), *_GROUP_COLUMNS), b["groups"], _group_cells, numeric=range(1, 8)
    )
    blocks += [Heading("By phase")]
    blocks += table(("Phase", *_GROUP_COLUMNS), b["phases"], _group_cells, numeric=range(1, 8))
    blocks += [Heading(f"Top {len(b['top_runs'])} runs by location-based CO2e")]
    blocks += table(
        (
            "Run",
            "Project",
            "Name",
            "Kind",
            "Start (UTC)",
            "Hardware",
            "Region",
            "Energy",
            "Location CO2e",
            "Market CO2e",
            "Share of CO2e",
        ),
        b["top_runs"],
        lambda r: (
            str(r["id"])[:SHORT_ID],
            text(r["project"]),
            text(r["name"]),
            text(r["kind"]),
            minute_text(r["started_at"]),
            text(r["hardware"]),
            text(r["region"]),
            format_energy_wh(r["energy_j"]),
            format_mass_g(r["co2e_g"]),
            format_mass_g(r["co2e_market_g"]),
            format_share(r["co2e_share"]),
        ),
        numeric=(7, 8, 9, 10),
    )
    if b["runs_without_co2e"]:
        blocks.append(
            Paragraph(
                f"{b['runs_without_co2e']} runs have no region, hence no CO2e, and cannot rank.",
                "note",
            )
        )
    return blocks


def efficiency(report: Mapping[str, Any]) -> list[Block]:
    """J/FLOP and MFU by hardware; energy per inference and accuracy by compression."""
    e = report["efficiency"]
    blocks: list[Block] = [Heading("Energy per FLOP and MFU by hardware")]
    blocks += table(
        ("Hardware", "Runs", "Runs with FLOPs", "FLOPs", "Energy", "J/FLOP", "MFU", "MFU range"),
        e["by_hardware"],
        lambda h: (
            text(h["hardware"]),
            count_text(h["runs"]),
            count_text(h["runs_with_flops"]),
            MISSING if h["flops"] is None else f"{h['flops']:.3g}",
            format_energy_wh(h["energy_j"]),
            format_j_per_flop(h["j_per_flop"]),
            format_share(h["mfu"]) + (f" ({h['runs_with_mfu']} runs)" if h["mfu"] else ""),
            MISSING
            if h["mfu_min"] is None
            else f"{format_share(h['mfu_min'])} to {format_share(h['mfu_max'])}",
        ),
        numeric=(1, 2, 3, 4, 5, 6),
        caption="MFU uses the catalog's dense peak for each run's precision.",
    )
    rows = e["by_compression"]
    if rows:
        blocks.append(Heading("Inference by compression setting"))
        blocks += table(
            (
                "Project",
                "Hardware",
                "Compression",
                "Runs",
                "Energy",
                "Inferences",
                "J/inference",
                "Tokens",
                "J/token",
                "Accuracy (runs)",
            ),
            rows,
            lambda c: (
                text(c["project"]),
                text(c["hardware"]),
                text(c["compression"]),
                count_text(c["runs"]),
                format_energy_wh(c["energy_j"]),
                count_text(c["inferences"]),
                format_energy(c["j_per_inference"]),
                count_text(c["tokens"]),
                format_energy(c["j_per_token"]),
                MISSING if c["accuracy"] is None else f"{c['accuracy']:.4g} ({c['accuracy_runs']})",
            ),
            numeric=range(3, 10),
            caption="Settings compare only within a project on the same hardware.",
        )
    return blocks
