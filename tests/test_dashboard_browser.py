"""The dashboard in a real browser: headless Chromium against a real ``carbon serve``.

The store holds what a new user has after ``carbon demo`` twice (once with a simulated
H100) and a few runs with known figures from :mod:`tests.fleet`: a 50-minute run, so the
power curve must be downsampled and zooming must ask for finer buckets, and a run whose
name and tag are HTML, which must show as text. One server and one browser serve the whole
module; each test opens a fresh browser context (no cookies).

Screenshots of every page go to ``CARBON_SCREENSHOT_DIR`` when set, else to a temporary
folder that the page-load test names in its output.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import create_engine, text

from carbon.demo.config import DemoConfig
from carbon.demo.job import run_job
from carbon.settings import load_settings
from carbon.store import connect_store
from carbon.store.teams import get_team
from tests.api_helpers import make_key
from tests.browser import DashPage, launch_browser, open_tab
from tests.conftest import TABLES
from tests.fleet import RunSpec, write_run
from tests.server_process import ServerProcess

XSS = '<img src=x onerror="window.__xss=1">'
"""A run name and tag that would run script if a page wrote it as HTML."""

LONG_S = 3000
"""Seconds of the long run: 3,000 samples per device, more than a graph is sent."""

MAX_POINTS = 2000
"""Most buckets per device the run page sends (``dashboard.pages.run.MAX_POINTS``)."""

DEMO = DemoConfig(epochs=1, inference_s=0.5)
"""The shortest demo: about 5 s, seven runs."""

DEMO_RUNS = 7
DEMO_INFERENCE_RUNS = 5

PAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "overview",
        "/",
        ("overview-totals", "overview-trend", "overview-projects", "overview-provenance"),
    ),
    ("runs", "/runs", ("runs-table", "runs-compare", "runs-filter-kind", "runs-count")),
    (
        "run",
        "/run/{sim/teacher-train}",
        (
            "run-stats",
            "run-power",
            "run-energy",
            "run-utilization",
            "run-resolution",
            "run-methods",
        ),
    ),
    (
        "compare",
        "/compare?runs={cpu/teacher-int8},{sim/teacher-int8}",
        ("compare-table", "compare-bars", "compare-power"),
    ),
    (
        "hardware",
        "/hardware",
        ("hardware-jflop", "hardware-flops", "hardware-mfu", "hardware-table"),
    ),
    ("compression", "/compression", ("compression-pareto", "compression-project")),
    ("regions", "/regions", ("regions-bars", "regions-table", "regions-scope")),
    ("reports", "/reports", ("reports-form", "reports-download-button")),
)
"""Every page: a name for its screenshot, its address and the ids it must show."""

ALL_RUNS = 2 * DEMO_RUNS + 2
"""Runs of the default team in a filled store: the demo's twice, the long one, the HTML one."""

TEXTS: dict[str, tuple[str, str]] = {
    "runs": ("#runs-count", f"{ALL_RUNS} runs"),
    "regions": ("#regions-scope", "10 most recent runs, "),
}
"""Text some pages must show (at the start of the element's text), by page name."""


@dataclass(frozen=True)
class Site:
    """A running server over a filled store, and the ids of the runs it holds.

    Attributes:
        server: The ``carbon serve`` process.
        ids: Run ids: ``long``, ``xss``, and ``cpu/NAME`` and ``sim/NAME`` for the demo's runs
            (``sim`` with the simulated H100).
        key: A read key of the default team, where the server asks for one (PostgreSQL
            is never local mode).
    """

    server: ServerProcess
    ids: dict[str, str]
    key: str | None = None

    @property
    def url(self) -> str:
        """The server's address."""
        return self.server.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    with launch_browser() as found:
        yield found


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``CARBON_SCREENSHOT_DIR``, or a temporary folder."""
    chosen = os.environ.get("CARBON_SCREENSHOT_DIR")
    if chosen:
        folder = Path(chosen)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


def fill_store(store_url: str, home: Path) -> dict[str, str]:
    """Run the demo twice (CPU only, then with a simulated H100) and write the fleet runs."""
    now = datetime.now(UTC).replace(microsecond=0)
    ids: dict[str, str] = {}
    with pytest.MonkeyPatch.context() as env:
        # The developer's CARBON_* variables (a server URL, say) must not reach the demo.
        for key in list(os.environ):
            if key.startswith("CARBON_") and key != "CARBON_TEST_POSTGRES_URL":
                env.delenv(key)
        env.setenv("CARBON_HOME", str(home))
        for prefix, simulated in (("cpu", 0), ("sim", 1)):
            settings = load_settings(
                home=home, database_url=store_url, region="FR", simulate_gpus=simulated
            )
            for summary in run_job(settings, DEMO, lambda _line: None):
                ids[f"{prefix}/{summary['name']}"] = summary["id"]
    assert len(ids) == 2 * DEMO_RUNS
    store = connect_store(store_url)
    try:
        ids["long"] = write_run(
            store,
            RunSpec(
                project="fleet",
                name="long-train",
                started_at=now - timedelta(hours=3),
                seconds=LONG_S,
                flops=1e18,
                precision="bf16",
                region="FRA",
                intensity_g_per_kwh=50.0,
            ),
        )
        ids["xss"] = write_run(
            store,
            RunSpec(
                project="fleet",
                name=XSS,
                started_at=now - timedelta(hours=2),
                tags={"note": XSS},
                flops=4e15,
                precision="bf16",
            ),
        )
    finally:
        store.dispose()
    return ids


def empty_postgres(url: str) -> None:
    """Empty the session's PostgreSQL database (other modules leave runs in it)."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
            connection.execute(
                text("INSERT INTO team (id, name, created_at) VALUES (1, 'default', now())")
            )
            connection.execute(text("SELECT setval(pg_get_serial_sequence('team', 'id'), 1)"))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def sites(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Site]]:
    """Servers over filled stores, one per backend, made on first use and kept for the module.

    Call it with ``"sqlite"``, or ``"postgres"`` and the session's PostgreSQL URL.
    """
    made: dict[str, Site] = {}

    def site(backend: str, postgres_url: str | None = None) -> Site:
        if backend not in made:
            home = tmp_path_factory.mktemp(f"site-{backend}")
            if backend == "sqlite":
                shutil.copy(sqlite_template, home / "carbon.db")
                url = f"sqlite:///{home / 'carbon.db'}"
            else:
                assert postgres_url is not None
                url = postgres_url
                empty_postgres(url)
            ids = fill_store(url, home / "demo")
            key = make_key(url, "default", "read") if backend == "postgres" else None
            server = ServerProcess(url, home / "server")
            server.start()
            made[backend] = Site(server, ids, key)
        return made[backend]

    yield site
    for found in made.values():
        found.server.stop()


@pytest.fixture
def site(sites: Callable[..., Site]) -> Site:
    """The SQLite site."""
    return sites("sqlite")


@pytest.fixture
def tab(browser: Browser, site: Site, screenshots: Path) -> Iterator[DashPage]:
    """A fresh tab on the SQLite site."""
    with open_tab(browser, site.url, screenshots) as found:
        yield found


def bucket_width_s(resolution: str) -> float:
    """The bucket width in the run page's resolution line."""
    found = re.search(r"buckets of ([0-9.]+) s", resolution)
    assert found, resolution
    return float(found.group(1))


def assert_not_injected(tab: DashPage) -> None:
    """No element was made from the HTML a user supplied, and its script never ran."""
    injected = tab.page.evaluate(
        "() => [document.querySelectorAll('img[src=\"x\"], [onerror]').length, typeof window.__xss]"
    )
    assert injected == [0, "undefined"], f"HTML injected on {tab.page.url}"


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_every_page_loads_with_its_graphs_and_no_errors(
    backend: str,
    request: pytest.FixtureRequest,
    sites: Callable[..., Site],
    browser: Browser,
    screenshots: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    postgres_url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    site = sites(backend, postgres_url)
    problems: list[str] = []
    with open_tab(browser, site.url, screenshots) as tab:
        if site.key is not None:
            tab.log_in(site.key)
        for name, path, component_ids in PAGES:
            tab.open(path.format_map(site.ids))
            for component_id in component_ids:
                # Some components (the grid) mount once their lazily loaded bundle arrives.
                try:
                    tab.page.wait_for_selector(f"#{component_id}", state="attached")
                except PlaywrightTimeoutError:
                    problems.append(f"{path}: no #{component_id}")
                    continue
                if tab.page.locator(f"#{component_id}").count() != 1:
                    problems.append(
                        f"{path}: {tab.page.locator(f'#{component_id}').count()} #{component_id}"
                    )
            if name in TEXTS:
                selector, start = TEXTS[name]
                shown = tab.page.inner_text(selector)
                if not shown.startswith(start):
                    problems.append(f"{path}: {selector} reads {shown!r}, not {start!r}...")
            for notice in tab.page.locator(".notice-error").all_inner_texts():
                problems.append(f"{path}: error shown: {notice}")
            graphs = tab.graphs()
            for graph in graphs:
                if not any(trace.points for trace in graph.traces):
                    problems.append(f"{path}: graph #{graph.id} draws nothing")
            wanted = {i for i in component_ids if tab.page.locator(f"#{i}.dash-graph").count()}
            if undrawn := wanted - {graph.id for graph in graphs}:
                problems.append(f"{path}: graphs not drawn: {sorted(undrawn)}")
            tab.screenshot(f"{backend}-{name}")
        problems += tab.errors
        warnings = tab.warnings
    with capsys.disabled():
        print(f"\nscreenshots of every page ({backend}, 1280x800): {screenshots}")
        for warning in warnings:
            print(warning)
    assert not problems, "\n".join(problems)


def test_compare_selected_runs_from_the_grid(tab: DashPage, site: Site) -> None:
    long_id, sim_id = site.ids["long"], site.ids["sim/teacher-train"]
    tab.open("/runs")
    assert "select two or more" in tab.page.inner_text("#runs-selection")
    tab.select_grid_row("runs-table", long_id)
    tab.select_grid_row("runs-table", sim_id)
    tab.wait_for_js("() => !document.getElementById('runs-compare').classList.contains('disabled')")
    assert tab.page.inner_text("#runs-selection") == "2 selected"
    tab.page.click("#runs-compare")
    tab.page.wait_for_url(re.compile(r"/compare\?runs="))
    tab.page.wait_for_selector("#compare-table")
    tab.wait_for_dash()
    chosen = parse_qs(urlparse(tab.page.url).query)["runs"][0].split(",")
    assert sorted(chosen) == sorted([long_id, sim_id])
    table = tab.page.inner_text("#compare-table")
    assert f"long-train ({long_id[:6]})" in table
    assert f"teacher-train ({sim_id[:6]})" in table
    assert len(tab.graph("compare-power").traces) == 2
    tab.assert_no_errors()


def test_filters_live_in_the_address(tab: DashPage, site: Site) -> None:
    tab.open("/runs?kind=inference")
    rows = tab.grid_rows("runs-table")
    assert len(rows) == 2 * DEMO_INFERENCE_RUNS
    assert {row["kind"] for row in rows} == {"inference"}
    assert tab.page.inner_text("#runs-filter-kind").strip() == "inference"

    tab.choose("runs-filter-kind", "training")
    tab.page.wait_for_url(re.compile(r"[?&]kind=training"))
    tab.wait_for_rows(
        "runs-table", "(rows) => rows.length && rows.every((row) => row.kind === 'training')"
    )
    tab.wait_for_dash()
    training = 2 * (DEMO_RUNS - DEMO_INFERENCE_RUNS) + 2  # the demo's and the fleet's
    assert len(tab.grid_rows("runs-table")) == training
    assert tab.page.inner_text("#runs-count") == f"{training} runs"

    tab.choose("runs-filter-project", "fleet")
    tab.page.wait_for_url(re.compile(r"project=fleet"))
    query = parse_qs(urlparse(tab.page.url).query)
    assert query == {"project": ["fleet"], "kind": ["training"]}
    tab.wait_for_js("() => document.getElementById('runs-count').innerText === '2 runs'")
    tab.wait_for_dash()
    rows = tab.grid_rows("runs-table")
    assert {row["id"] for row in rows} == {site.ids["long"], site.ids["xss"]}
    assert tab.page.inner_text("#runs-filter-project").strip() == "fleet"
    assert tab.page.inner_text("#runs-filter-kind").strip() == "training"
    tab.assert_no_errors()


def test_long_run_is_downsampled_and_zooming_fetches_finer_buckets(
    tab: DashPage, site: Site
) -> None:
    tab.open(f"/run/{site.ids['long']}")
    power = tab.graph("run-power")
    lines = [trace for trace in power.traces if trace.fill is None]
    bands = [trace for trace in power.traces if trace.fill is not None]
    assert sorted(str(trace.name).split(":")[0] for trace in lines) == ["CPU 1", "GPU 0"]
    assert len(bands) == 2
    for trace in lines:
        # 3,000 one-second samples per device arrive as fewer, wider buckets.
        assert LONG_S // 4 < trace.points <= MAX_POINTS
    for trace in bands:
        # A band's polygon goes along the buckets and back: each bucket's x twice.
        assert trace.distinct_x <= MAX_POINTS
        assert trace.points == 2 * trace.distinct_x
    wide = bucket_width_s(tab.page.inner_text("#run-resolution"))
    assert wide > 1

    tab.page.evaluate(
        "([start, end]) => Plotly.relayout(document.querySelector('#run-power .js-plotly-plot'),"
        " {'xaxis.range[0]': start, 'xaxis.range[1]': end})",
        [1000, 1400],
    )
    tab.wait_for_js(
        "(wide) => { const m = /buckets of ([0-9.]+) s/.exec("
        "document.getElementById('run-resolution').innerText);"
        " return m !== null && Number(m[1]) < wide; }",
        wide,
    )
    tab.wait_for_dash()
    fine = bucket_width_s(tab.page.inner_text("#run-resolution"))
    assert fine == 1
    zoomed = [trace for trace in tab.graph("run-power").traces if trace.fill is None]
    assert len(zoomed) == 2
    for trace in zoomed:
        assert trace.x_min is not None
        assert trace.x_max is not None
        assert trace.x_min >= 1000 - wide
        assert trace.x_max <= 1400 + wide
        assert 350 <= trace.points <= MAX_POINTS
    # Only now: a full-page screenshot resizes the page, and the graph's resize event
    # would replace a zoom the server has not answered yet.
    tab.screenshot("run-long-zoomed")
    tab.assert_no_errors()


def test_user_text_is_shown_as_text_never_as_html(tab: DashPage, site: Site) -> None:
    xss_id = site.ids["xss"]
    tab.open("/runs")
    rows = {row["id"]: row for row in tab.grid_rows("runs-table")}
    assert rows[xss_id]["name"] == XSS
    assert rows[xss_id]["tags"] == f"note={XSS}"
    tab.show_grid_row("runs-table", xss_id)
    cell = tab.page.locator(f"#runs-table .ag-row[row-id='{xss_id}'] [col-id='name']")
    assert cell.inner_text() == XSS
    tab.page.click("#runs-filter-tag")  # draws the options, one of them note=<img ...>
    assert tab.page.get_by_role("option", name=f"note={XSS}").is_visible()
    assert_not_injected(tab)

    tab.open(f"/run/{xss_id}")
    assert tab.page.inner_text("#run-page h2") == f"{XSS} (fleet)"
    assert XSS in tab.page.inner_text("#run-settings")
    assert_not_injected(tab)
    for path in (
        f"/compare?runs={xss_id},{site.ids['long']}",
        "/hardware",
        f"/regions?runs={xss_id}",
    ):
        tab.open(path)
        assert_not_injected(tab)
    assert XSS in tab.page.inner_text("#regions-scope")
    tab.assert_no_errors()


def test_server_mode_asks_for_a_key_and_shows_the_teams_runs_only(
    browser: Browser, sqlite_template: Path, tmp_path: Path, screenshots: Path
) -> None:
    shutil.copy(sqlite_template, tmp_path / "carbon.db")
    store_url = f"sqlite:///{tmp_path / 'carbon.db'}"
    key = make_key(store_url, "vision", "read")
    store = connect_store(store_url)
    try:
        with store.session() as session:
            vision = get_team(session, "vision").id
        vision_id = write_run(store, RunSpec(project="cv", name="vision-run", team_id=vision))
        write_run(store, RunSpec(project="nlp", name="default-team-run"))
    finally:
        store.dispose()
    server = ServerProcess(store_url, tmp_path / "server")
    server.start()
    try:
        with open_tab(browser, server.url, screenshots) as tab:
            tab.page.goto(f"{server.url}/runs")
            assert urlparse(tab.page.url).path == "/login"
            assert tab.page.locator("#login-key").is_visible()
            tab.screenshot("login")

            tab.page.fill("#login-key", "carbon_not-a-key")
            tab.page.click("#login-submit")
            tab.page.wait_for_selector(".login-error")
            assert "unknown or revoked key" in tab.page.inner_text(".login-error")
            # The refused login answers 401, which Chromium logs; nothing else may be.
            tab.errors[:] = [e for e in tab.errors if "status of 401" not in e]

            tab.page.fill("#login-key", key)
            tab.page.click("#login-submit")
            tab.page.wait_for_url(re.compile(r"/runs\??$"))
            tab.wait_for_dash()
            assert tab.page.inner_text("#viewer-team") == "team vision"
            rows = tab.grid_rows("runs-table")
            assert [(row["id"], row["name"]) for row in rows] == [(vision_id, "vision-run")]

            tab.page.click("#logout")
            tab.page.wait_for_url(re.compile(r"/login"))
            assert tab.page.locator("#login-key").is_visible()
            tab.page.goto(f"{server.url}/runs")
            assert urlparse(tab.page.url).path == "/login"
            tab.assert_no_errors()
    finally:
        server.stop()


def test_theme_switch_turns_the_shell_dark_and_back(tab: DashPage, site: Site) -> None:
    tab.open("/")
    shell = tab.page.locator("#shell")
    assert "theme-light" in str(shell.get_attribute("class"))
    light_bg = shell.evaluate("(e) => getComputedStyle(e).backgroundColor")

    tab.page.click("#theme-toggle")
    tab.page.wait_for_selector("#shell.theme-dark")
    tab.wait_for_dash()
    dark_bg = shell.evaluate("(e) => getComputedStyle(e).backgroundColor")
    assert dark_bg != light_bg
    assert dark_bg == "rgb(15, 19, 24)"
    assert shell.get_attribute("data-ag-theme-mode") == "dark"
    # The figures are drawn with Plotly's dark template, not only the page around them.
    assert {graph.paper_bgcolor for graph in tab.graphs()} == {"rgb(17,17,17)"}
    assert tab.page.inner_text("#theme-toggle") == "Light"
    tab.screenshot("overview-dark")
    tab.open("/runs")
    tab.screenshot("runs-dark")

    tab.page.click("#theme-toggle")
    tab.page.wait_for_selector("#shell.theme-light")
    tab.wait_for_dash()
    assert shell.evaluate("(e) => getComputedStyle(e).backgroundColor") == light_bg
    tab.assert_no_errors()


def test_reports_downloads_a_csv_of_the_runs(tab: DashPage, site: Site) -> None:
    tab.open("/reports")
    tab.page.click("#reports-format input[value=csv]")
    with tab.page.expect_download() as download_info:
        tab.page.click("#reports-download-button")
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    content = Path(download.path()).read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(content))
    rows = list(reader)
    header = list(reader.fieldnames or [])
    assert header[:5] == ["id", "project", "name", "kind", "status"]
    assert {"energy_j", "co2e_g"} <= set(header)
    assert len(rows) == len(site.ids) == ALL_RUNS
    assert {row["id"] for row in rows} == set(site.ids.values())
    by_id = {row["id"]: row for row in rows}
    assert by_id[site.ids["xss"]]["name"] == XSS
    assert float(by_id[site.ids["long"]]["energy_j"]) == pytest.approx(350.0 * LONG_S)
    assert tab.page.inner_text("#reports-status").startswith(f"CSV report: {ALL_RUNS} runs, ")
    tab.assert_no_errors()


def test_reports_shows_the_report_on_the_page(tab: DashPage, site: Site) -> None:
    tab.open("/reports")
    tab.page.click("#reports-show-button")
    tab.page.wait_for_selector("#reports-preview[srcdoc]", timeout=60_000)
    frame = tab.page.frame_locator("#reports-preview")
    text = frame.locator("body").inner_text(timeout=30_000)
    for heading in ("Summary", "Scope and boundary", "Emissions", "Methodology", "Appendix"):
        assert heading in text
    assert f"Runs: {ALL_RUNS}" in text
    assert XSS in text  # a run's name is text in the report, never markup
    assert tab.page.inner_text("#reports-status").startswith(f"Report: {ALL_RUNS} runs, ")
    tab.assert_no_errors()
