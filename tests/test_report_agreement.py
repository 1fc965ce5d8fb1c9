"""One report in every format: the totals agree with each other and with the store, to the gram.

The runs draw kilowatts for minutes so that a gram is a small fraction of the totals and a
rounding or a dropped run would show.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest

from carbon.reports.build import build_report
from carbon.reports.render import render_report
from carbon.reports.request import ReportRequest
from carbon.store import open_store
from carbon.store.overview import Period, period_totals
from tests.fleet import BASE_TIME, CPU, H100, RunSpec, write_run

DAY = BASE_TIME.date()
SPECS = (
    RunSpec(
        project="llm",
        seconds=1200,
        devices=(
            *(("gpu", H100, 690.0 + i, "measured") for i in range(8)),
            ("cpu", CPU, 180.0, "estimated"),
        ),
        region="POL",
        intensity_g_per_kwh=662.3,
    ),
    RunSpec(project="vision", seconds=900, region="FRA", intensity_g_per_kwh=56.04),
    RunSpec(project="vision", seconds=300),  # no region: no CO2e, never 0
)
FIGURE = re.compile(r"Location-based CO2e \(Scope 2\): ([\d,]+\.\d{3}) kgCO2e")
ENERGY = re.compile(r"Energy \(IT, before PUE\): ([\d,]+\.\d{3}) kWh")


def _plain(document: str) -> str:
    """The document's text: markup tags and emphasis removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", document)).replace("**", "")


def _grams(text: str) -> int:
    found = FIGURE.findall(_plain(text))
    assert found, "no location-based figure"
    return round(float(found[0].replace(",", "")) * 1000)


def _wh(text: str) -> int:
    return round(float(ENERGY.findall(_plain(text))[0].replace(",", "")) * 1000)


@pytest.mark.slow
def test_totals_agree_in_every_format_and_with_the_store(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    for spec in SPECS:
        write_run(store, spec)
    with store.session() as session:
        report = build_report(session, ReportRequest(since=DAY, until=DAY + timedelta(days=1)))
        stored = period_totals(session, Period(since=BASE_TIME - timedelta(hours=9)))
    assert stored.co2e_g is not None
    assert stored.energy_j is not None
    expected_g = sum(
        s.energy_j / 3.6e6 * s.intensity_g_per_kwh for s in SPECS if s.intensity_g_per_kwh
    )
    grams = round(expected_g)
    assert round(stored.co2e_g) == grams

    documents = {fmt: render_report(report, fmt) for fmt in ("json", "csv", "html", "md", "pdf")}
    as_json = json.loads(documents["json"])
    rows = list(csv.DictReader(io.StringIO(documents["csv"].decode("utf-8"))))
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(documents["pdf"])
    pdf_text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout

    from_csv = math.fsum(float(row["co2e_g"]) for row in rows if row["co2e_g"])
    assert [row["co2e_g"] for row in rows].count("") == 1
    by_format = {
        "json": round(as_json["summary"]["co2e_g"]),
        "json runs": round(math.fsum(r["co2e_g"] for r in as_json["runs"] if r["co2e_g"])),
        "json emissions": round(as_json["emissions"]["location"]["co2e_g"]),
        "csv": round(from_csv),
        "html": _grams(documents["html"].decode("utf-8")),
        "md": _grams(documents["md"].decode("utf-8")),
        "pdf": _grams(pdf_text),
    }
    assert by_format == dict.fromkeys(by_format, grams)
    energy_wh = round(stored.energy_j / 3600)
    assert round(sum(s.energy_j for s in SPECS) / 3600) == energy_wh
    for fmt in ("html", "md"):
        assert _wh(documents[fmt].decode("utf-8")) == energy_wh, fmt
    assert _wh(pdf_text) == energy_wh
    assert round(math.fsum(float(row["energy_j"]) for row in rows) / 3600) == energy_wh


def test_a_period_without_runs_says_so_in_every_format(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    write_run(store, SPECS[1])
    request = ReportRequest(since=date(2025, 1, 1), until=date(2025, 1, 31))
    with store.session() as session:
        report = build_report(session, request)
    said = "No run started between 2025-01-01 and 2025-01-31"
    for fmt in ("html", "md"):
        text = render_report(report, fmt).decode("utf-8")
        assert said in text, fmt
        assert "Appendix" not in text, fmt
    rows = list(csv.DictReader(io.StringIO(render_report(report, "csv").decode("utf-8"))))
    assert rows == []
    assert json.loads(render_report(report, "json"))["empty"] is True
