"""User text in a real browser: shown as text on every page and in every report, never run.

Runs whose project, name, tag (key and value), metric name and compression setting hold
``<script>alert(1)</script>`` and ``<img src=x onerror=alert(1)>`` are written to a store
served by ``carbon serve``; headless Chromium then opens every page of the dashboard, the
report shown on the Reports page and each downloaded report. Nothing may open a dialog
(the test listens for one), no element may be made from that text, and the text must be
on the page as the characters it is. The pages also run under the dashboard's
Content-Security-Policy: no page breaks it, and an inline script added to a page is refused.

CSV exports defuse cells a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``).
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Dialog

from carbon.store import connect_store
from dashboard.app import PAGES_FOLDER
from tests.browser import DashPage, launch_browser, open_tab
from tests.fleet import RunSpec, write_run
from tests.server_process import ServerProcess

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
FORMULA = '=HYPERLINK("http://evil.example","x")'

RECORD_VIOLATIONS_JS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
    window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""
"""Kept in every page: the Content-Security-Policy violations the browser reported."""

INJECTED_JS = """
() => ({
    images: document.querySelectorAll('img[src="x"], [onerror]').length,
    scripts: Array.from(document.querySelectorAll("script")).filter(
        (s) => (s.textContent || "").includes("alert(1)")).length,
    violations: window.__cspViolations || [],
})
"""
"""What text a user stored would have made, had a page written it as HTML."""


@dataclass(frozen=True)
class Site:
    """A local server over runs whose text is HTML, and their ids."""

    server: ServerProcess
    training: str
    inference: str
    formula: str

    @property
    def url(self) -> str:
        """The server's address."""
        return self.server.url


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The runs: a training run, an inference run (for Compression), and one named as a formula."""
    home = tmp_path_factory.mktemp("xss")
    shutil.copy(sqlite_template, home / "carbon.db")
    url = f"sqlite:///{home / 'carbon.db'}"
    started_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)  # this period
    store = connect_store(url)
    try:
        training = write_run(
            store,
            RunSpec(
                project=SCRIPT,
                name=IMG,
                started_at=started_at,
                tags={SCRIPT: IMG},
                metrics={IMG: 0.5, "accuracy": 0.9},
                compression={"precision": SCRIPT},
                region="FR",
                intensity_g_per_kwh=50.0,
                flops=4e15,
                precision="bf16",
            ),
        )
        inference = write_run(
            store,
            RunSpec(
                project=SCRIPT,
                name=SCRIPT,
                started_at=started_at,
                kind="inference",
                samples=1000,
                tags={IMG: SCRIPT},
                metrics={SCRIPT: 1.0, "accuracy": 0.8},
                compression={"precision": IMG},
                region="FR",
                intensity_g_per_kwh=50.0,
            ),
        )
        formula = write_run(
            store,
            RunSpec(project="+proj", name=FORMULA, tags={"@cmd": "-1+1"}, started_at=started_at),
        )
    finally:
        store.dispose()
    server = ServerProcess(url, home / "server")
    server.start()
    try:
        yield Site(server, training, inference, formula)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    with launch_browser() as found:
        yield found


@pytest.fixture
def tab(browser: Browser, site: Site, tmp_path: Path) -> Iterator[tuple[DashPage, list[str]]]:
    """A fresh tab that records CSP violations, and the messages of the dialogs it saw."""
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    with open_tab(browser, site.url, tmp_path) as found:
        found.page.add_init_script(RECORD_VIOLATIONS_JS)
        found.page.on("dialog", dismiss)
        yield found, dialogs


def pages(site: Site) -> dict[str, str]:
    """Every page of the dashboard, each at an address that shows the runs' text."""
    ids = f"{site.training},{site.inference}"
    return {
        "dashboard.pages.overview": "/",
        "dashboard.pages.runs": "/runs",
        "dashboard.pages.run": f"/run/{site.training}",
        "dashboard.pages.compare": f"/compare?runs={ids}",
        "dashboard.pages.hardware": f"/hardware?project={quote(SCRIPT)}",
        "dashboard.pages.compression": f"/compression?project={quote(SCRIPT)}",
        "dashboard.pages.regions": f"/regions?runs={ids}",
        "dashboard.pages.reports": "/reports",
    }


def assert_nothing_ran(tab: DashPage, dialogs: list[str]) -> None:
    """No dialog opened, no element was made from the text, the policy was kept."""
    found = tab.page.evaluate(INJECTED_JS)
    assert found == {"images": 0, "scripts": 0, "violations": []}, tab.page.url
    assert dialogs == [], tab.page.url


def content_text(tab: DashPage) -> str:
    """All text of the page's content, the SVG text of its charts included."""
    return str(tab.page.evaluate("() => document.getElementById('_pages_content').textContent"))


def test_every_page_shows_the_text_as_text(tab: tuple[DashPage, list[str]], site: Site) -> None:
    page, dialogs = tab
    addresses = pages(site)
    assert set(addresses) == {
        f"dashboard.pages.{path.stem}"
        for path in PAGES_FOLDER.glob("*.py")
        if path.stem != "__init__"
    }
    shown: dict[str, set[str]] = {}
    for module, address in addresses.items():
        page.open(address)
        if module == "dashboard.pages.runs":  # the grid draws its rows once its code loaded
            page.wait_for_rows("runs-table", "(rows) => rows.length === 3")
            page.page.wait_for_selector("#runs-table .ag-row")
        text = content_text(page)
        shown[module] = {payload for payload in (SCRIPT, IMG) if payload in text}
        assert_nothing_ran(page, dialogs)
    # Each page shows the text it lists, as the characters the user typed.
    assert shown == {
        "dashboard.pages.overview": {SCRIPT},
        "dashboard.pages.runs": {SCRIPT, IMG},
        "dashboard.pages.run": {SCRIPT, IMG},
        "dashboard.pages.compare": {SCRIPT, IMG},
        "dashboard.pages.hardware": {SCRIPT},
        "dashboard.pages.compression": {SCRIPT, IMG},
        "dashboard.pages.regions": {SCRIPT, IMG},
        "dashboard.pages.reports": set(),  # its form lists projects once opened; the report: below
    }
    page.open(f"/run/{site.training}")
    settings = page.page.inner_text("#run-settings")
    for line in (f"tag {SCRIPT}\t{IMG}", f"metric {IMG}\t0.5", f"compression.precision\t{SCRIPT}"):
        assert line in settings
    assert page.page.inner_text("#run-page h2") == f"{IMG} ({SCRIPT})"
    page.open("/runs")
    page.page.click("#runs-filter-tag")  # draws the options
    assert page.page.get_by_role("option", name=f"{SCRIPT}={IMG}", exact=True).is_visible()
    assert_nothing_ran(page, dialogs)
    page.assert_no_errors()


def test_the_report_shown_and_downloaded_keeps_the_text_as_text(
    tab: tuple[DashPage, list[str]], site: Site, browser: Browser, tmp_path: Path
) -> None:
    page, dialogs = tab
    page.open("/reports")
    page.page.click("#reports-show-button")
    page.page.wait_for_selector("#reports-preview[srcdoc]", timeout=60_000)
    frame = page.page.frame_locator("#reports-preview")
    text = frame.locator("body").inner_text(timeout=30_000)
    assert SCRIPT in text
    assert IMG in text
    assert frame.locator('img[src="x"], [onerror]').count() == 0
    assert_nothing_ran(page, dialogs)
    downloads: dict[str, str] = {}
    for fmt in ("html", "md", "csv"):
        page.page.click(f"#reports-format input[value={fmt}]")
        with page.page.expect_download() as started:
            page.page.click("#reports-download-button")
        downloads[fmt] = Path(started.value.path()).read_text(encoding="utf-8")
    page.assert_no_errors()

    # The HTML file, opened on its own (no server, no policy): still no script runs.
    with open_tab(browser, site.url, tmp_path) as report:
        opened: list[str] = []

        def dismiss(dialog: Dialog) -> None:
            opened.append(dialog.message)
            dialog.dismiss()

        report.page.on("dialog", dismiss)
        report.page.set_content(downloads["html"])
        body = report.page.inner_text("body")
        assert SCRIPT in body
        assert IMG in body
        injected = report.page.evaluate(INJECTED_JS)
        assert (injected["images"], injected["scripts"], opened) == (0, 0, [])

    markdown = downloads["md"]
    assert SCRIPT not in markdown
    assert IMG not in markdown
    assert r"\<script\>alert(1)\</script\>" in markdown
    assert r"\<img src=x onerror=alert(1)\>" in markdown

    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(downloads["csv"]))}
    assert rows[site.training]["name"] == IMG
    assert rows[site.inference]["project"] == SCRIPT
    defused = rows[site.formula]
    assert defused["name"] == "'" + FORMULA
    assert defused["project"] == "'+proj"
    assert defused["tags.@cmd"] == "'-1+1"
    assert "'tags.@cmd" not in downloads["csv"]  # a column name starting with a letter is kept
    assert float(defused["energy_j"]) > 0  # numbers stay numbers


def test_the_policy_refuses_a_script_added_to_the_page(
    tab: tuple[DashPage, list[str]], site: Site
) -> None:
    page, _ = tab
    page.open("/runs")
    page.page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__inlineRan = 1'; document.head.appendChild(s); }"
    )
    ran, violations = page.page.evaluate("() => [window.__inlineRan, window.__cspViolations]")
    assert ran is None
    assert violations == ["script-src-elem inline"]
    # Chromium reports the refusal on the console; nothing else may be there.
    assert [e for e in page.errors if "Content Security Policy" not in e] == []
