"""The emissions section: Scope 2 location- and market-based side by side, then Scope 3.

Turns the ``emissions`` part of :func:`carbon.reports.build.build_report`'s dict into blocks
of :mod:`carbon.reports.content`, as :mod:`carbon.reports.sections` does for the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carbon._format import (
    MISSING,
    format_energy_wh,
    format_mass_g,
)
from carbon.reports.content import (
    NOT_REPORTED,
    Block,
    Figure,
    Figures,
    Heading,
    Paragraph,
    count_text,
    ids_text,
    kg_text,
    table,
    text,
)

__all__ = ["emissions"]


def emissions(report: Mapping[str, Any]) -> list[Block]:
    """Scope 2 location- and market-based with factors and instruments, then Scope 3."""
    em = report["emissions"]
    loc, market, emb = em["location"], em["market"], em["embodied"]
    blocks: list[Block] = [
        Heading("Scope 2, location-based"),
        Figures((Figure("Location-based CO2e (Scope 2)", kg_text(loc["co2e_g"])),)),
    ]
    blocks += table(
        (
            "Zone",
            "Source",
            "Year",
            "Type",
            "Fallback",
            "Factor (g/kWh)",
            "Method",
            "Runs",
            "Energy",
            "CO2e",
        ),
        loc["factors"],
        lambda f: (
            text(f["zone"]),
            text(f["source"]),
            MISSING if f["year"] is None else str(f["year"]),
            text(f["factor_type"]),
            "yes" if f["fallback"] else "no",
            _factor_range(f),
            _methods(f["methods"]),
            count_text(f["runs"]),
            format_energy_wh(f["energy_j"]),
            format_mass_g(f["co2e_g"]),
        ),
        numeric=(5, 7, 8, 9),
        caption="Grid emission factors used, with the dataset, zone and year of each.",
    )
    missing = loc["runs_without_factor"]
    if missing["runs"]:
        blocks.append(
            Paragraph(
                f"No grid factor (no region): {missing['runs']} runs, "
                f"{format_energy_wh(loc['energy_without_factor_j'])} ({ids_text(missing)}).",
                "note",
            )
        )
    blocks += [
        Heading("Scope 2, market-based"),
        Figures((Figure("Market-based CO2e (Scope 2)", kg_text(market["co2e_g"], NOT_REPORTED)),)),
    ]
    blocks += table(
        ("Instrument", "Runs", "Energy", "CO2e"),
        market["instruments"],
        lambda i: (
            text(i["source"]),
            count_text(i["runs"]),
            format_energy_wh(i["energy_j"]),
            format_mass_g(i["co2e_g"]),
        ),
        numeric=(1, 2, 3),
        caption="Contractual instruments (certificates, supplier-specific factors) recorded.",
    )
    blocks += [Heading("Statement"), Paragraph(str(em["statement"]), "statement")]
    blocks += [
        Heading("Scope 3, embodied hardware (reported separately)"),
        Figures((Figure("Embodied CO2e (Scope 3)", kg_text(emb["co2e_g"], NOT_REPORTED)),)),
    ]
    blocks += table(
        ("Source", "Runs", "CO2e"),
        emb["sources"],
        lambda s: (text(s["source"]), count_text(s["runs"]), format_mass_g(s["co2e_g"])),
        numeric=(1, 2),
    )
    if emb["runs_without_factor"]["runs"]:
        reasons = "; ".join(emb.get("reasons") or ()) or "no factor"
        blocks.append(
            Paragraph(
                f"Runs on GPUs without a manufacturing factor, not counted: "
                f"{emb['runs_without_factor']['runs']} ({reasons}).",
                "note",
            )
        )
    return blocks


def _factor_range(f: Mapping[str, Any]) -> str:
    low, high = f.get("intensity_g_per_kwh"), f.get("intensity_max_g_per_kwh")
    if low is None:
        return MISSING
    return f"{low:,.1f}" if high is None or high == low else f"{low:,.1f} to {high:,.1f}"


def _methods(methods: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} ({n})" for name, n in methods.items()) or MISSING
