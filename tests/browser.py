"""Helpers of the browser tests: the system's Chromium, a page that records errors, Dash waits.

The tests drive Debian's Chromium (``apt-get install chromium``) through Playwright; no
browser is ever downloaded. :class:`DashPage` wraps a Playwright page: it records the
console's errors and the page's uncaught exceptions, waits until Dash has drawn the page
(the page's content in place, no callback pending, every graph plotted) and reads what
the page shows (Plotly's traces, AG Grid's rows) through the browser's own objects.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    ViewportSize,
    sync_playwright,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.conftest import IN_CI

CHROMIUM = Path("/usr/bin/chromium")
"""Where Debian's ``chromium`` package puts the browser."""

LAUNCH_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
"""Chromium's flags: no display, no sandbox (CI runs as root), nothing fetched behind our back."""

INSTALL_HINT = "apt-get install chromium"

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
"""The smallest screen the dashboard is designed for."""

TIMEOUT_MS = 30_000
"""Longest wait for any one condition; a slow CI machine reaches it only on a real hang."""

_BUSY_JS = """
() => {
    const content = document.getElementById("_pages_content");
    if (!content || content.children.length === 0) { return "the page's content is empty"; }
    const loading = document.querySelector(
        "._dash-loading, ._dash-loading-callback, [data-dash-is-loading='true']"
    );
    if (loading) { return "still loading: " + loading.outerHTML.slice(0, 200); }
    const store = window.store;
    if (!store) { return "Dash's store is not there"; }
    const state = store.getState();
    if (state.isLoading) { return "Dash is loading"; }
    for (const [name, queue] of Object.entries(state.callbacks || {})) {
        if (name !== "stored" && name !== "completed" && queue && queue.length) {
            return queue.length + " callbacks " + name + ": " +
                queue.map((cb) => cb.callback && cb.callback.output).join(", ");
        }
    }
    for (const graph of document.querySelectorAll(".dash-graph")) {
        const plot = graph.querySelector(".js-plotly-plot");
        if (!plot || !plot._fullLayout || plot.classList.contains("dash-graph--pending")) {
            return "graph #" + graph.id + " not drawn";
        }
        // A responsive graph reports its first size (relayoutData {autosize: true}) about
        // 100 ms after it is drawn; a zoom sent before that would be replaced by it.
        const path = state.paths && state.paths.strs && state.paths.strs[graph.id];
        const node = path ? path.reduce((at, key) => (at ? at[key] : at), state.layout) : null;
        const props = (node && node.props) || {};
        const config = props.config || {};
        const responsive = props.responsive === true || config.responsive === true;
        if (responsive && !props.relayoutData) { return "graph #" + graph.id + " not sized"; }
    }
    return "";
}
"""
"""Why Dash has not finished drawing the page, or an empty string once it has."""

_READY_JS = (
    "() => { const busy = ("
    + _BUSY_JS.strip()
    + ")(); window.__carbonReady = busy ? 0 : (window.__carbonReady || 0) + 1;"
    # Ready twice in a row: a callback that a finished one triggers is queued by then.
    + " return window.__carbonReady >= 2; }"
)
"""True once Dash has drawn the page and nothing is pending (polled every animation frame)."""

_GRAPHS_JS = """
() => Array.from(document.querySelectorAll(".js-plotly-plot")).map((plot) => {
    const holder = plot.closest(".dash-graph");
    return {
        id: holder ? holder.id : plot.id,
        traces: (plot._fullData || []).filter((t) => t.visible !== false).map((t) => {
            const values = t.type === "pie" ? t.values : (t.y !== undefined ? t.y : t.x);
            const xs = t.x ? Array.from(t.x) : [];
            return {
                name: t.name === undefined ? null : String(t.name),
                type: t.type,
                fill: t.fill && t.fill !== "none" ? t.fill : null,
                points: values ? values.length : 0,
                distinct_x: new Set(xs.map(String)).size,
                x_min: xs.length ? Math.min(...xs.map(Number)) : null,
                x_max: xs.length ? Math.max(...xs.map(Number)) : null,
            };
        }),
        paper_bgcolor: plot._fullLayout ? plot._fullLayout.paper_bgcolor : null,
    };
})
"""

_GRID_ROWS_JS = """
(gridId) => {
    let api = null;
    try {
        api = window.dash_ag_grid.getApi(gridId);
    } catch (error) {
        return null;  // dash-ag-grid throws until the grid is drawn
    }
    const rows = [];
    api.forEachNodeAfterFilterAndSort((node) => rows.push(node.data));
    return rows;
}
"""
"""The rows of an AG Grid in the grid's order, or ``null`` while it is not drawn."""


def find_chromium() -> Path | None:
    """The system's Chromium, or ``None`` when it is not installed."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    found = shutil.which("chromium")
    return Path(found) if found else None


def require_chromium() -> Path:
    """The system's Chromium; without it the test fails in CI and is skipped elsewhere."""
    found = find_chromium()
    if found is None:
        message = f"no Chromium at {CHROMIUM} or on PATH: {INSTALL_HINT}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


@contextmanager
def launch_browser() -> Iterator[Browser]:
    """Headless Chromium, closed on exit."""
    executable = require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), args=list(LAUNCH_ARGS), timeout=TIMEOUT_MS
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass(frozen=True, slots=True)
class Trace:
    """One drawn trace of a Plotly graph.

    Attributes:
        name: The trace's name (legend entry).
        type: ``scatter``, ``bar``, ``pie``, ``box``...
        fill: Plotly's ``fill`` (``toself`` for a min-max band), or ``None``.
        points: Values the trace holds (its ``y``, or ``values`` for a pie).
        distinct_x: Different ``x`` values (a band's polygon holds each twice).
        x_min: Smallest ``x``, for numeric axes.
        x_max: Largest ``x``, for numeric axes.
    """

    name: str | None
    type: str
    fill: str | None
    points: int
    distinct_x: int
    x_min: float | None
    x_max: float | None


@dataclass(frozen=True, slots=True)
class Graph:
    """A Plotly graph on the page: the ``dcc.Graph``'s id, its traces and its background."""

    id: str
    traces: list[Trace]
    paper_bgcolor: str | None


class DashPage:
    """A browser tab on the dashboard that records every console error and page error.

    Console warnings are kept apart in :attr:`warnings`; they fail no test.

    Args:
        page: The Playwright page (one per browser context).
        base_url: The server's address, without a trailing slash.
        screenshots: Where :meth:`screenshot` writes.
    """

    def __init__(self, page: Page, base_url: str, screenshots: Path) -> None:
        self.page = page
        self.base_url = base_url
        self.screenshots = screenshots
        self.errors: list[str] = []
        self.warnings: list[str] = []
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console error on {self.page.url}: {message.text}")
        elif message.type == "warning":
            self.warnings.append(f"console warning on {self.page.url}: {message.text}")

    def _on_page_error(self, error: Error) -> None:
        self.errors.append(f"page error on {self.page.url}: {error.message}")

    def open(self, path: str) -> None:
        """Load ``path`` (``/runs?kind=inference``) and wait until Dash has drawn it."""
        self.page.goto(self.base_url + path)
        self.wait_for_dash()

    def log_in(self, key: str) -> None:
        """Log in with an API key through the login form (server mode)."""
        self.page.goto(f"{self.base_url}/login")
        self.page.fill("#login-key", key)
        self.page.click("#login-submit")
        self.page.wait_for_selector("#shell")

    def wait_for_dash(self) -> None:
        """Wait until the page's content is in place, no callback pending, every graph drawn."""
        self.page.evaluate("() => { window.__carbonReady = 0; }")
        try:
            self.page.wait_for_function(_READY_JS, polling="raf")
        except PlaywrightTimeoutError:
            busy = self.page.evaluate(_BUSY_JS)
            raise AssertionError(
                f"{self.page.url} not drawn in {TIMEOUT_MS} ms: {busy}; " + "; ".join(self.errors)
            ) from None

    def wait_for_js(self, expression: str, arg: Any = None) -> Any:
        """Wait until ``expression`` (a JS function of ``arg``) returns a truthy value."""
        try:
            return self.page.wait_for_function(expression, arg=arg).json_value()
        except PlaywrightTimeoutError:
            busy = self.page.evaluate(_BUSY_JS) or "nothing pending"
            raise AssertionError(
                f"on {self.page.url}, still false after {TIMEOUT_MS} ms: {expression} "
                f"(Dash: {busy}); " + "; ".join(self.errors)
            ) from None

    def graphs(self) -> list[Graph]:
        """Every Plotly graph on the page with its drawn traces."""
        found = self.page.evaluate(_GRAPHS_JS)
        return [
            Graph(
                id=graph["id"],
                traces=[Trace(**trace) for trace in graph["traces"]],
                paper_bgcolor=graph["paper_bgcolor"],
            )
            for graph in found
        ]

    def graph(self, graph_id: str) -> Graph:
        """The graph of the ``dcc.Graph`` with id ``graph_id``."""
        for graph in self.graphs():
            if graph.id == graph_id:
                return graph
        raise AssertionError(f"no graph {graph_id!r} on {self.page.url}")

    def grid_rows(self, grid_id: str) -> list[dict[str, Any]]:
        """The rows of an AG Grid as the grid holds them (after its filters, in its order)."""
        found = self.wait_for_js(_GRID_ROWS_JS, grid_id)
        assert isinstance(found, list), f"no grid {grid_id!r} on {self.page.url}"
        return found

    def wait_for_rows(self, grid_id: str, condition: str) -> list[dict[str, Any]]:
        """Wait until the grid's rows meet ``condition`` (a JS function of the rows)."""
        found = self.wait_for_js(
            f"(gridId) => {{ const rows = ({_GRID_ROWS_JS.strip()})(gridId);"
            f" return rows && ({condition})(rows) ? rows : null; }}",
            grid_id,
        )
        assert isinstance(found, list)
        return found

    def show_grid_row(self, grid_id: str, row_id: str) -> None:
        """Scroll the grid to the row with id ``row_id`` (its cells are drawn from then on)."""
        self.grid_rows(grid_id)
        self.page.evaluate(
            "([gridId, rowId]) => { const api = window.dash_ag_grid.getApi(gridId);"
            " api.ensureNodeVisible(api.getRowNode(rowId)); }",
            [grid_id, row_id],
        )

    def select_grid_row(self, grid_id: str, row_id: str) -> None:
        """Tick the row's selection checkbox, as a person would, after scrolling to it."""
        self.show_grid_row(grid_id, row_id)
        self.page.click(f"#{grid_id} .ag-row[row-id='{row_id}'] .ag-selection-checkbox input")

    def choose(self, dropdown_id: str, option: str) -> None:
        """Open a ``dcc.Dropdown`` and click one of its options."""
        self.page.click(f"#{dropdown_id}")
        self.page.get_by_role("option", name=option, exact=True).click()

    def screenshot(self, name: str) -> Path:
        """A full-page PNG named ``name`` in the screenshots folder."""
        path = self.screenshots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_no_errors(self) -> None:
        """Fail with every console error and page error seen since the page was opened."""
        assert not self.errors, "\n".join(self.errors)


@contextmanager
def open_tab(browser: Browser, base_url: str, screenshots: Path) -> Iterator[DashPage]:
    """A fresh browser context (no cookies) at 1280x800 with one tab, closed on exit."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    try:
        yield DashPage(context.new_page(), base_url, screenshots)
    finally:
        context.close()
