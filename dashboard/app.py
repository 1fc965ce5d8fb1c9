"""The Dash application: the shell around the pages, the theme switch, and the login guard.

:func:`create_dashboard` builds a Dash app on its own Flask server, which ``carbon serve``
mounts at ``/`` beside the API (:mod:`carbon.server.app`). Pages live one per file in
``dashboard/pages/`` and register themselves with Dash; they reach the store through
:mod:`dashboard.data`, never through this module.

Dash keeps the callbacks that pages declare with ``dash.callback`` in a process-wide list
until an app takes them at its first request. Building an app here clears that list, lets
Dash load the pages (which declares their callbacks again) and has the new app take them
at once, so every app built in a process (one per test, say) has exactly one copy.

Every page goes out with a Content-Security-Policy (:func:`content_security_policy`):
scripts only from this server and Dash's own inline ones, named by their hashes, so text a
user stored could not run as script even if a component wrote it out as HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dash
import flask
from dash import Dash, Input, Output, dcc, html
from dash import _callback as dash_callbacks

from carbon._version import __version__
from carbon.store import Store
from dashboard.auth import LOCAL_VIEWER, install_login
from dashboard.data import STORE_KEY, VIEWER_KEY, theme, viewer

PACKAGE = Path(__file__).parent
PAGES_FOLDER = PACKAGE / "pages"
ASSETS_FOLDER = PACKAGE / "assets"

THEME_TOGGLE_JS = """
function (clicks) {
    if (!clicks) { return window.dash_clientside.no_update; }
    var dark = document.cookie.split("; ").indexOf("carbon_theme=dark") >= 0;
    document.cookie = "carbon_theme=" + (dark ? "light" : "dark") +
        "; path=/; max-age=31536000; samesite=lax";
    window.location.reload();
    return window.dash_clientside.no_update;
}
"""
"""Switch the theme: the cookie tells the server which Plotly template to draw with."""


def create_dashboard(store: Store, *, require_auth: bool, secret: str) -> Dash:
    """Build the dashboard over ``store``.

    Args:
        store: The database the pages read.
        require_auth: Ask for a login (server mode) or not (local single-user mode).
        secret: Signs the login cookies (at least 32 characters).

    Returns:
        The Dash app; its Flask server is ``app.server``.
    """
    # No static folder: Flask's default would serve the working directory's `static/`.
    server = flask.Flask("carbon-dashboard", static_folder=None)
    server.config[STORE_KEY] = store
    install_login(server, store, require_auth=require_auth, secret=secret)
    dash_callbacks.GLOBAL_CALLBACK_LIST.clear()
    dash_callbacks.GLOBAL_CALLBACK_MAP.clear()
    app = Dash(
        "dashboard",  # pages then load as dashboard.pages.<name>
        server=server,  # type: ignore[arg-type]  # Dash types a Flask server as a callable
        use_pages=True,
        pages_folder=str(PAGES_FOLDER),
        assets_folder=str(ASSETS_FOLDER),
        title="carbon",
        update_title="",
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    app.layout = _shell
    app.clientside_callback(
        THEME_TOGGLE_JS,
        Output("theme-toggle", "title"),
        Input("theme-toggle", "n_clicks"),
        prevent_initial_call=True,
    )
    with server.test_request_context("/"):
        # The shell is rendered once to validate it, as nobody in particular.
        setattr(flask.g, VIEWER_KEY, LOCAL_VIEWER)
        app._setup_server()  # take the pages' callbacks now (see the module's docstring)

    @server.after_request
    def _policy(response: flask.Response) -> flask.Response:
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", content_security_policy(app))
        return response

    return app


def content_security_policy(app: Dash) -> str:
    """The dashboard pages' Content-Security-Policy.

    Scripts come from this server, or are the inline ones Dash writes into the page (its
    renderer and the clientside callbacks), each allowed by its SHA-256 hash; Dash adds
    the pages' router at the first request, so the hashes are taken when a page is sent.
    Styles may be inline (React, Plotly and AG Grid set them on elements), images may be
    ``data:`` URIs (the report's charts), nothing is fetched from another origin, no
    other site may frame the dashboard, and forms post to this server only.
    """
    scripts = " ".join(["'self'", *app.csp_hashes()])  # the hashes come quoted
    return (
        f"default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


def _nav() -> list[Any]:
    pages = sorted(
        (page for page in dash.page_registry.values() if page.get("order") is not None),
        key=lambda page: page["order"],
    )
    return [
        dcc.Link(
            page["name"], href=page["relative_path"], id=f"nav-{page['module'].split('.')[-1]}"
        )
        for page in pages
    ]


def _shell() -> html.Div:
    """The frame of every page, rendered per request (it shows who is logged in)."""
    current = theme()
    who = viewer()
    account: list[Any] = [html.Span(f"team {who.team_name}", id="viewer-team")]
    if who.logged_in:
        account.append(
            html.Form(
                html.Button("Log out", type="submit", className="secondary", id="logout"),
                action="/logout",
                method="POST",
            )
        )
    account.append(
        html.Button(
            "Dark" if current == "light" else "Light",
            id="theme-toggle",
            className="secondary",
            title="switch between the light and the dark theme",
        )
    )
    return html.Div(
        [
            html.Header(
                [
                    dcc.Link("carbon", href="/", className="brand"),
                    html.Nav(_nav(), className="nav"),
                    html.Div(account, className="viewer"),
                ],
                className="topbar",
            ),
            html.Main(dash.page_container, className="content"),
            html.Footer(
                f"carbon {__version__}", className="muted", style={"padding": "0 24px 16px"}
            ),
        ],
        className=f"shell theme-{current}",
        id="shell",
        # AG Grid's built-in themes follow this attribute to their dark colour scheme.
        **{"data-ag-theme-mode": current},  # type: ignore[arg-type]
    )
