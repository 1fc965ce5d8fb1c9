"""The report in every format: figures from known runs, offline HTML, printable PDF.

Runs are written through the store's real path with constant power (``tests.fleet``), so
each expected figure is computed here from the specs: energy = power x seconds, CO2e = kWh
x the grid factor (PUE 1), GPU-hours = seconds x GPUs / 3600.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from carbon.errors import ConfigError
from carbon.reports.build import build_report
from carbon.reports.content import Table
from carbon.reports.document import document
from carbon.reports.html import listing_lines, render_html
from carbon.reports.pdf import offline_fetcher, render_pdf
from carbon.reports.render import FORMATS, MEDIA_TYPES, render_report
from carbon.reports.request import ReportRequest
from carbon.store import open_store
from tests.fleet import BASE_TIME, CPU, H100, RunSpec, write_run

NOVEMBER = ReportRequest(since=date(2026, 11, 1), until=date(2026, 11, 30))
EMPTY_PERIOD = ReportRequest(since=date(2025, 1, 1), until=date(2025, 1, 31))
SECTIONS = (
    "Summary",
    "Scope and boundary",
    "Breakdown",
    "Efficiency",
    "Emissions",
    "Equivalents (illustrations)",
    "Recommendations",
    "Methodology and provenance",
    "Appendix",
)
FOUR_GPUS = tuple(("gpu", H100, 700.0, "measured") for _ in range(4))
CPU_AND_RAM = (("cpu", CPU, 40.0, "estimated"), ("ram", "DIMMs", 10.0, "estimated"))

SPECS = (
    RunSpec(
        project="llama",
        name="pretrain",
        seconds=300,
        devices=FOUR_GPUS,
        region="DEU",
        intensity_g_per_kwh=400.0,
        flops=4.0e17,
        precision="bf16",
    ),
    RunSpec(
        project="bert",
        name="fine-tune",
        seconds=30,
        region="FRA",
        intensity_g_per_kwh=50.0,
        started_at=BASE_TIME + timedelta(days=1),
    ),
    RunSpec(
        project="bert",
        name="serve-int8",
        kind="inference",
        seconds=20,
        region="FRA",
        intensity_g_per_kwh=50.0,
        samples=1000,
        metrics={"accuracy": 0.91},
        compression={"precision": "int8", "quantization": "dynamic"},
        started_at=BASE_TIME + timedelta(days=2),
    ),
    RunSpec(
        project="gpt",
        name="cpu-only",
        seconds=20,
        devices=CPU_AND_RAM,
        started_at=BASE_TIME + timedelta(days=3),
    ),
)
"""Four runs in November: two regions, one run without a region (no CO2e), one on CPU."""

OCTOBER_RUN = RunSpec(
    project="bert", name="october", seconds=10, started_at=BASE_TIME - timedelta(days=20)
)
"""One run in the previous period (2026-10-02 to 2026-10-31)."""


@dataclass(frozen=True)
class Built:
    report: dict[str, Any]
    ids: dict[str, RunSpec]


def _gpus(spec: RunSpec) -> int:
    return sum(1 for component, *_ in spec.devices if component == "gpu")


def expected_lines(specs: tuple[RunSpec, ...]) -> list[str]:
    """The summary's figure lines, computed from the specs alone."""
    energy_j = sum(spec.energy_j for spec in specs)
    co2e_g = sum(
        spec.energy_j / 3.6e6 * spec.intensity_g_per_kwh
        for spec in specs
        if spec.intensity_g_per_kwh is not None
    )
    gpu_hours = sum(spec.seconds * _gpus(spec) / 3600 for spec in specs)
    estimated_j = sum(
        power * spec.seconds
        for spec in specs
        for _, _, power, provenance in spec.devices
        if provenance == "estimated"
    )
    return [
        f"Energy (IT, before PUE): {energy_j / 3.6e6:,.3f} kWh",
        f"Location-based CO2e (Scope 2): {co2e_g / 1000:,.3f} kgCO2e",
        "Market-based CO2e (Scope 2): not reported",
        "Embodied CO2e (Scope 3): not reported",
        f"GPU-hours: {gpu_hours:,.2f}",
        f"Runs: {len(specs)}",
        f"Estimated share of energy: {estimated_j / energy_j * 100:.1f} %",
    ]


def states(lines: list[str], figure: str) -> bool:
    """Whether a line is the figure, alone or followed by the same value at a smaller scale."""
    return any(line == figure or line.startswith(f"{figure} (") for line in lines)


def _build(store_url: str, specs: tuple[RunSpec, ...], request: ReportRequest) -> Built:
    store = open_store(store_url)
    ids = {write_run(store, spec): spec for spec in specs}
    with store.session() as session:
        report = build_report(session, request, source="test store")
    return Built(report, ids)


@pytest.fixture
def built(store_url: str) -> Built:
    """The November report of :data:`SPECS`, with one run in October to compare with."""
    write_run(open_store(store_url), OCTOBER_RUN)
    return _build(store_url, SPECS, NOVEMBER)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """An empty SQLite store, for the PDF checks that need one backend only."""
    path = tmp_path / "single.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


class _Text(HTMLParser):
    """Visible text of an HTML page, a line per block element (as a browser would break)."""

    BLOCKS = frozenset({"p", "li", "h1", "h2", "h3", "tr", "div", "table", "caption", "br"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self.skip += 1
        if tag in self.BLOCKS:
            self.parts.append("\n")
        if tag in ("td", "th"):
            self.parts.append("\t")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self.skip -= 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_lines(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    return [line.strip() for line in "".join(parser.parts).splitlines() if line.strip()]


def _network_references(html: str) -> list[str]:
    """Every reference the page would load or link to that is not inside the file."""
    found = re.findall(r"""\b(?:src|href|srcset|action|poster)\s*=\s*["']?([^"'\s>]+)""", html)
    found += re.findall(r"""url\(\s*["']?([^"')]+)""", html)
    found += re.findall(r"@import\s+[^;]+", html)
    return [ref for ref in found if not ref.startswith(("#", "data:"))]


def _appendix_row(html: str, run_id: str) -> list[str]:
    appendix = html[html.index('<section id="appendix"') :]
    row = re.search(rf"<tr[^>]*><td>{run_id[:8]}</td>(.*?)</tr>", appendix)
    assert row is not None, run_id
    return [run_id[:8], *re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))]


def test_html_is_self_contained_and_states_the_figures(built: Built) -> None:
    html = render_report(built.report, "html").decode("utf-8")

    assert _network_references(html) == []
    assert not re.search(r"<link\b|<script\b|<iframe\b|<object\b|<embed\b", html, re.IGNORECASE)
    lines = html_lines(html)
    for line in expected_lines(SPECS):
        assert states(lines, line), line
    headings = re.findall(r'<section id="([\w-]+)">\s*<h2>([^<]+)</h2>', html)
    assert [title for _, title in headings][:-1] == list(SECTIONS[:-1])
    assert headings[-1][1].startswith("Appendix")
    for anchor, _ in headings:
        assert f'href="#{anchor}"' in html
    # One chart each: groups, components, J/FLOP (the llama run counted FLOPs), J/inference.
    assert html.count('<figure class="chart"><img src="data:image/svg+xml;base64,') == 4
    # The previous period had one run, this one four.
    assert re.search(r"<td>Runs</td><td[^>]*>4</td><td[^>]*>1</td><td[^>]*>\+300\.0 %</td>", html)


def test_html_appendix_lists_every_run_and_unknowns_as_dashes(built: Built) -> None:
    html = render_html(built.report, charts=False)

    for run_id, spec in built.ids.items():
        cells = _appendix_row(html, run_id)
        assert cells[1:4] == [spec.project, spec.name, spec.kind]
        location = cells[11]
        if spec.intensity_g_per_kwh is None:
            assert location == "—"
        else:
            assert location != "—"
            assert location != "0"
        assert cells[13] == "—"  # embodied: no published factor for the H100
    assert "<img" not in html


def test_simulated_runs_are_marked_in_the_appendix(built: Built) -> None:
    report = json.loads(json.dumps(built.report))
    simulated = report["runs"][0]
    simulated["simulated"] = True
    html = render_html(report, charts=False)
    row = re.search(rf'<tr class="marked"><td>{simulated["id"][:8]}</td>.*?</tr>', html)
    assert row is not None
    assert "completed (simulated)" in row.group(0)


def test_markdown_states_the_same_figures_and_tables(built: Built) -> None:
    text = render_report(built.report, "md").decode("utf-8")
    lines = text.splitlines()

    for line in expected_lines(SPECS):
        assert states(lines, f"- {line}"), line
    for title in SECTIONS:
        assert any(line.startswith(f"## {title}") for line in lines), title
    assert "Charts are in the HTML and PDF" in text
    appendix = text[text.index("## Appendix") :]
    for run_id, spec in built.ids.items():
        row = next(line for line in appendix.splitlines() if line.startswith(f"| {run_id[:8]} |"))
        assert row.split(" | ")[1] == spec.project
    header = next(line for line in appendix.splitlines() if line.startswith("| Run |"))
    assert header.count("|") - 1 == 18


def test_csv_has_a_row_per_run_and_the_same_grams(built: Built) -> None:
    text = render_report(built.report, "csv").decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))

    assert sorted(row["id"] for row in rows) == sorted(built.ids)
    expected_g = sum(
        spec.energy_j / 3.6e6 * spec.intensity_g_per_kwh
        for spec in SPECS
        if spec.intensity_g_per_kwh is not None
    )
    assert round(sum(float(row["co2e_g"]) for row in rows if row["co2e_g"])) == round(expected_g)
    unpriced = next(row for row in rows if built.ids[row["id"]].region is None)
    assert unpriced["co2e_g"] == ""


def test_json_is_the_report_document(built: Built) -> None:
    data = json.loads(render_report(built.report, "json"))

    assert "report_version" in data
    assert len(data["runs"]) == len(SPECS)
    assert data["summary"]["energy_j"] == pytest.approx(sum(spec.energy_j for spec in SPECS))


def _pdf_text(pdf: bytes, tmp_path: Path, *args: str) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(
        ["pdftotext", *args, str(path), "-"], capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout


def test_pdf_has_pages_and_the_same_figures(built: Built, tmp_path: Path) -> None:
    pdf = render_report(built.report, "pdf")

    assert pdf.startswith(b"%PDF-")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    (png,) = tmp_path.glob("page*.png")
    image = png.read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(image) > 10_000  # an A4 page at 50 dpi with text, not a blank
    lines = [line.strip() for line in _pdf_text(pdf, tmp_path).splitlines()]
    for line in expected_lines(SPECS):
        assert states(lines, line), line
    flat = " ".join(lines)
    assert "Page 1 of" in flat
    for run_id in built.ids:
        assert run_id[:8] in flat


def test_pdf_lists_many_runs_line_by_line(sqlite_url: str, tmp_path: Path) -> None:
    built = _build(sqlite_url, SPECS, NOVEMBER)

    pdf = render_pdf(built.report, table_runs=2)

    text = _pdf_text(pdf, tmp_path, "-layout")
    listing = text[text.index("Printed as a fixed-width listing") :].splitlines()
    for run_id, spec in built.ids.items():
        line = next(line for line in listing if line.lstrip().startswith(run_id[:8]))
        assert spec.project in line
        assert spec.name in line


def test_the_pdf_fetches_data_uris_only() -> None:
    fetcher = offline_fetcher()
    for url in ("http://127.0.0.1:9/chart.svg", "https://example.org/a.css", "file:///etc/hosts"):
        with pytest.raises(ValueError, match="disallowed protocol"):
            fetcher.fetch(url)
    assert fetcher.fetch("data:text/plain;base64,b2s=").read() == b"ok"


def test_listing_fits_its_width_and_cuts_with_an_ellipsis(built: Built) -> None:
    html = render_html(built.report, charts=False, appendix_listing=True)
    assert '<div class="listing-head">' in html
    table = next(
        block
        for section in document(built.report).sections
        for block in section.blocks
        if isinstance(block, Table) and block.name == "appendix"
    )
    wide = replace(table, rows=[(*table.rows[0][:-1], "x" * 300)])
    head, lines = listing_lines(wide, budget=120)
    assert all(len(line) <= 120 for line in [*head.splitlines(), *lines])
    assert lines[0].endswith("…")


def _all_formats(report: dict[str, Any]) -> dict[str, bytes]:
    return {fmt: render_report(report, fmt) for fmt in FORMATS if fmt != "pdf"}


def test_an_empty_period_gives_short_documents(store_url: str) -> None:
    report = _build(store_url, (), EMPTY_PERIOD).report
    sentence = "No run started between 2025-01-01 and 2025-01-31 (UTC)"
    out = _all_formats(report)

    html = out["html"].decode("utf-8")
    assert sentence in html
    assert html.count("<table") == 1  # the scope; no empty table
    assert "<img" not in html
    assert _network_references(html) == []
    assert "report document version" in html
    markdown = out["md"].decode("utf-8")
    assert sentence in markdown
    assert "Charts are in" not in markdown
    assert markdown.count("\n| ") <= 10  # the scope table only
    rows = list(csv.DictReader(io.StringIO(out["csv"].decode("utf-8"))))
    assert rows == []
    assert out["csv"].decode("utf-8").startswith("id,project,name,")
    data = json.loads(out["json"])
    assert data["empty"] is True
    assert data["runs"] == []


def test_an_empty_period_gives_a_short_pdf(sqlite_url: str, tmp_path: Path) -> None:
    report = _build(sqlite_url, (), EMPTY_PERIOD).report

    text = " ".join(_pdf_text(render_report(report, "pdf"), tmp_path).split())

    assert "No run started between 2025-01-01 and 2025-01-31 (UTC)" in text
    assert "Page 1 of 1" in text


def test_unknown_format_names_the_choices(built: Built) -> None:
    with pytest.raises(ConfigError, match="html, pdf, csv, json, md"):
        render_report(built.report, "docx")


def test_media_types_and_progress(built: Built) -> None:
    assert set(MEDIA_TYPES) == set(FORMATS)
    calls: list[tuple[str, int, int | None]] = []
    record: Callable[[str, int, int | None], None] = lambda *call: calls.append(call)  # noqa: E731
    render_report(built.report, "html", progress=record)
    assert calls[0] == ("rendering html", 0, None)
    assert calls[-1] == ("rendering html", 1, 1)
    assert all(total is None or 0 <= done <= total for _, done, total in calls)
