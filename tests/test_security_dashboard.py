"""The dashboard's matrix: every route and callback it serves, for every kind of caller.

What the dashboard serves is read from the application: the Flask rules of its server, the
pages Dash registered, and the callbacks ``/_dash-dependencies`` hands the browser. Each
needs a row here (:data:`RULES`, :data:`PAGES`, :data:`CALLBACKS`), so a route, page or
callback added without one fails :func:`test_every_route_page_and_callback_has_a_row`.

Every request is then made, through the whole server (FastAPI, the WSGI bridge, Flask,
Dash), as: no session, a cookie signed with another secret, a refused login (unknown key,
``ingest`` key), a session whose key was revoked, and sessions of team acme's ``read`` and
``admin`` keys and of team globex's. Without a valid session every private request is
refused (a page load goes to the login form, the rest answer 401). With one, answers that
hold data show acme's callers acme's runs, and never show globex's callers anything of
acme's: not a run id, name, project, tag or metric, in pages, callback payloads, the
report preview or any downloaded report; the request itself may name acme's runs (a
forged callback, say), and only what the request did not carry is looked for.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dash
import flask
import pytest
from flask.sessions import SecureCookieSessionInterface

import dashboard.auth
from carbon.store import connect_store, open_store
from carbon.store.teams import VISIBLE_PREFIX_CHARS, find_key, get_team, revoke_key
from tests.api_helpers import TestClient, api, make_key
from tests.fleet import RunSpec, write_run

ACME_TEXT = (
    "acme-proj-secret",
    "acme-run-secret",
    "acme-tag-secret",
    "acme-value-secret",
    "acme-metric-secret",
)
"""Text of team acme's runs that no other team may see."""

GLOBEX_RUN = "globex-own-run"

CALLERS = (
    "no session",
    "forged cookie",
    "unknown key",
    "ingest",
    "revoked",
    "read",
    "admin",
    "other read",
    "other admin",
)
ACME_SESSIONS = ("read", "admin")
OTHER_SESSIONS = ("other read", "other admin")

PUBLIC = "public"
"""A route anyone may ask: the login form and static files, the same for everyone."""

PRIVATE = "private"
"""A route that needs a session."""

RULES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "/login": (PUBLIC, (("GET", "/login?next=/runs"),)),
    "/logout": (PRIVATE, (("POST", "/logout"),)),
    "/assets/<path:filename>": (PUBLIC, (("GET", "/assets/style.css"),)),
    "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>": (
        PUBLIC,
        (("GET", "/_dash-component-suites/dash/dcc/dash_core_components.js"),),
    ),
    "/_favicon.ico": (PUBLIC, (("GET", "/_favicon.ico"),)),
    "/_dash-layout": (PRIVATE, (("GET", "/_dash-layout"),)),
    "/_dash-dependencies": (PRIVATE, (("GET", "/_dash-dependencies"),)),
    "/_reload-hash": (PRIVATE, (("GET", "/_reload-hash"),)),
    "/_dash-update-component": (PRIVATE, ()),  # every callback: CALLBACKS
    "/": (PRIVATE, ()),  # every page: PAGES
    "/<path:path>": (PRIVATE, ()),
}
"""The dashboard's Flask rules: who may ask, and the requests made of each."""

PAGES: dict[str, tuple[str, str]] = {
    "dashboard.pages.overview": ("/", "acme-proj-secret"),
    "dashboard.pages.runs": ("/runs", "acme-run-secret"),
    "dashboard.pages.run": ("/run/{acme0}", "acme-metric-secret"),
    "dashboard.pages.compare": ("/compare?runs={acme0},{acme1}", "acme-run-secret"),
    "dashboard.pages.hardware": ("/hardware", "acme-proj-secret"),
    "dashboard.pages.compression": ("/compression", "acme-proj-secret"),
    "dashboard.pages.regions": ("/regions?runs={acme0}", "acme-run-secret"),
    "dashboard.pages.reports": ("/reports", "acme-proj-secret"),
}
"""Each page: an address naming acme's runs, and a text of acme's its callers see there."""

CLIENTSIDE = "clientside"
"""A callback that runs in the browser: the server has nothing to answer for it."""

PURE = "pure"
"""A callback that reads no data: it turns its inputs into an address or a label."""

DATA = "data"
"""A callback that reads the viewer's team's data."""


def _no_values(_ids: list[str]) -> dict[str, Any]:
    return {}


def _report_form(fmt: str) -> Callable[[list[str]], dict[str, Any]]:
    return lambda _ids: {"reports-group-by.value": "project", "reports-format.value": fmt}


@dataclass(frozen=True)
class Callback:
    """How to call a callback: its kind, and its inputs' and states' values by ``id.prop``."""

    kind: str
    values: Callable[[list[str]], dict[str, Any]] = _no_values
    shows: str | None = None  # for DATA: a text of acme's its callers see in the answer


CALLBACKS: dict[str, list[Callback]] = {
    "theme-toggle.title": [Callback(CLIENTSIDE)],
    "run-window.data": [Callback(CLIENTSIDE)],
    "_pages_dummy.children": [Callback(CLIENTSIDE)],
    "regions-url.search": [
        Callback(PURE, lambda ids: {"regions-choice.value": ["FR"], "regions-runs.data": ids[0]})
    ],
    "compression-url.search": [
        Callback(
            PURE, lambda _ids: {"compression-project.value": "p", "compression-per.value": "x"}
        )
    ],
    "runs-url.search": [Callback(PURE, lambda _ids: {"runs-filter-project.value": "p"})],
    "overview-url.search": [Callback(PURE, lambda _ids: {"overview-days.value": "30"})],
    "hardware-url.search": [Callback(PURE, lambda _ids: {"hardware-kind.value": "training"})],
    "..runs-compare.href...runs-compare.className...runs-regions.href..."
    "runs-regions.className...runs-selection.children..": [
        Callback(PURE, lambda ids: {"runs-table.selectedRows": [{"id": i} for i in ids]})
    ],
    "..run-power.figure...run-resolution.children..": [
        Callback(
            DATA, lambda ids: {"run-window.data": {"start": 0, "end": 15}, "run-id.data": ids[0]}
        )
    ],
    "..reports-preview.srcDoc...reports-status.children..": [
        Callback(DATA, lambda _ids: {"reports-group-by.value": "project"}, "acme-run-secret")
    ],
    "..reports-download.data...reports-status.children..": [
        Callback(
            DATA,
            _report_form(fmt),
            "acme-run-secret",
        )
        for fmt in ("html", "csv", "json", "md")  # the PDF is the HTML, printed
    ],
    ".._pages_content.children..._pages_store.data..": [],  # one per page: PAGES
}
"""Each callback (its output, ``@`` suffixes dropped): how to call it, and what it reads."""


@dataclass(frozen=True)
class Call:
    """One request of the matrix."""

    name: str
    method: str
    path: str
    public: bool
    body: dict[str, Any] | None = None
    kind: str = PURE  # DATA: the answer holds the team's data
    shows: str | None = None


@dataclass(frozen=True)
class Site:
    """A server over a store with runs of acme and globex, and keys of both teams."""

    client: TestClient
    store_url: str
    keys: dict[str, str]
    acme_ids: list[str]


def _output_name(output: str) -> str:
    """A callback's output without the ``@hash`` that ``allow_duplicate`` adds."""
    return ".".join(part.split("@")[0] for part in output.split("."))


def _outputs(output: str) -> list[dict[str, str]]:
    names = output.strip(".").split("...") if output.startswith("..") else [output]
    return [dict(zip(("id", "property"), name.rsplit(".", 1), strict=True)) for name in names]


def dash_body(dependency: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The body the browser posts to ``/_dash-update-component`` for one callback."""

    def with_values(items: list[dict[str, str]]) -> list[dict[str, Any]]:
        return [item | {"value": values.get(f"{item['id']}.{item['property']}")} for item in items]

    outputs = _outputs(dependency["output"])
    inputs = with_values(dependency["inputs"])
    return {
        "output": dependency["output"],
        "outputs": outputs if dependency["output"].startswith("..") else outputs[0],
        "inputs": inputs,
        "state": with_values(dependency["state"]),
        "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"],
    }


def readable(text: str) -> str:
    """An answer's text, with the files of ``dcc.Download`` decoded (they travel in base64)."""
    found = [text]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("base64") and isinstance(value.get("content"), str):
                found.append(base64.b64decode(value["content"]).decode("utf-8", "replace"))
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    with contextlib.suppress(ValueError):  # not JSON: the text alone
        walk(json.loads(text))
    return "\n".join(found)


def dependencies(client: TestClient) -> list[dict[str, Any]]:
    """The callbacks as the dashboard hands them to the browser (an admin session asks)."""
    answer = client.get("/_dash-dependencies")
    assert answer.status_code == 200
    found = answer.json()
    assert isinstance(found, list)
    return found


def calls(site: Site, deps: list[dict[str, Any]]) -> list[Call]:
    """Every request of the matrix, built from the rules, pages and callbacks served."""
    ids = site.acme_ids
    made: list[Call] = [
        Call(f"{method} {path}", method, path, public=access == PUBLIC)
        for access, requests in RULES.values()
        for method, path in requests
        if path != "/logout"  # last: it ends the session (see the test)
    ]
    for module, (address, shows) in PAGES.items():
        path = address.format(acme0=ids[0], acme1=ids[1])
        made.append(Call(f"page {path}", "GET", path, public=False))  # the HTML shell only
        pathname, _, search = path.partition("?")
        values = {
            "_pages_location.pathname": pathname,
            "_pages_location.search": f"?{search}" if search else "",
        }
        router = next(d for d in deps if d["output"].startswith(".._pages_content."))
        made.append(
            Call(
                f"router {module}",
                "POST",
                "/_dash-update-component",
                public=False,
                body=dash_body(router, values),
                kind=DATA,
                shows=shows,
            )
        )
    for dependency in deps:
        for n, callback in enumerate(CALLBACKS.get(_output_name(dependency["output"]), [])):
            if callback.kind == CLIENTSIDE:
                assert dependency.get("clientside_function"), dependency["output"]
                continue
            made.append(
                Call(
                    f"callback {_output_name(dependency['output'])} #{n}",
                    "POST",
                    "/_dash-update-component",
                    public=False,
                    body=dash_body(dependency, callback.values(ids)),
                    kind=callback.kind,
                    shows=callback.shows,
                )
            )
    return made


def _forged_cookie(key_id: int) -> str:
    """A session cookie for ``key_id`` signed with a secret other than the server's."""
    forger = flask.Flask("forger")
    forger.secret_key = "f" * 40
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    assert serializer is not None
    return str(serializer.dumps({"key_id": key_id}))


def become(site: Site, caller: str) -> None:
    """Make the site's client act as ``caller`` (its cookies replaced)."""
    client = site.client
    client.cookies.clear()
    if caller == "no session":
        return
    if caller == "forged cookie":
        with open_store(site.store_url).session() as session:
            row = find_key(session, site.keys["admin"])
            assert row is not None
            client.cookies.set("carbon_session", _forged_cookie(row.id))
        return
    key = site.keys[caller] if caller in site.keys else "cbn_" + "u" * 43
    answer = client.post("/login", data={"key": key, "next": "/"}, follow_redirects=False)
    refused = caller in ("unknown key", "ingest")
    assert answer.status_code == (401 if refused else 302), (caller, answer.text)
    if caller == "revoked":
        with open_store(site.store_url).session() as session:
            revoke_key(session, get_team(session, "acme"), site.keys["revoked"][:12])


@pytest.fixture
def site(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """A server over runs of acme (two) and globex (one), with keys of both teams."""
    monkeypatch.setattr(dashboard.auth, "KEY_RECHECK_S", 0.0)  # a revoked key ends at once
    monkeypatch.setattr(dashboard.auth, "LOGIN_FAILURES_BURST", 1000)  # refused logins abound
    keys = {role: make_key(store_url, "acme", role) for role in ("read", "admin", "ingest")} | {
        "revoked": make_key(store_url, "acme", "read"),
        "other read": make_key(store_url, "globex", "read"),
        "other admin": make_key(store_url, "globex", "admin"),
    }
    store = connect_store(store_url)
    try:
        with store.session() as session:
            acme, globex = get_team(session, "acme").id, get_team(session, "globex").id
        acme_ids = [
            write_run(
                store,
                RunSpec(
                    project="acme-proj-secret",
                    name=f"acme-run-secret-{n}",
                    kind=kind,
                    samples=1000,
                    tags={"acme-tag-secret": "acme-value-secret"},
                    metrics={"acme-metric-secret": 0.5, "accuracy": 0.9},
                    region="FR",
                    intensity_g_per_kwh=50.0,
                    team_id=acme,
                ),
            )
            for n, kind in enumerate(("training", "inference"))  # compression reads inference
        ]
        write_run(store, RunSpec(project="globex-proj", name=GLOBEX_RUN, team_id=globex))
    finally:
        store.dispose()
    with api(store_url, tmp_path) as client:
        yield Site(client, store_url, keys, acme_ids)


def test_every_route_page_and_callback_has_a_row(site: Site) -> None:
    mount = site.client.app.routes[-1]  # type: ignore[attr-defined]
    server: flask.Flask = mount.app.app
    assert {rule.rule for rule in server.url_map.iter_rules()} == set(RULES)
    assert set(dash.page_registry) == set(PAGES)
    become(site, "admin")
    served = {_output_name(d["output"]) for d in dependencies(site.client)}
    assert served == set(CALLBACKS)


def test_every_caller_gets_only_what_its_session_allows(site: Site) -> None:
    become(site, "admin")
    matrix = calls(site, dependencies(site.client))
    assert len(matrix) >= 30
    pure_answers: dict[str, set[str]] = {}
    problems: list[str] = []
    for caller in CALLERS:
        become(site, caller)
        logged_in = caller in ACME_SESSIONS + OTHER_SESSIONS
        for call in matrix:
            answer = site.client.request(
                call.method, call.path, json=call.body, follow_redirects=False
            )
            where = f"{caller}: {call.name}"
            if call.public:
                if answer.status_code != 200:
                    problems.append(f"{where}: {answer.status_code}, not 200")
                continue
            if not logged_in:
                if call.method == "GET" and not call.path.startswith("/_dash-"):
                    expected: Any = (302, "/login?next=")  # a page load: to the login form
                    got: Any = (answer.status_code, answer.headers.get("location", "")[:12])
                else:
                    expected = (401, {"detail": "log in first"})
                    got = (answer.status_code, answer.json())
                if got != expected:
                    problems.append(f"{where}: {got}, not {expected}")
                continue
            # 204: a callback answered nothing (the run asked for is not the viewer's).
            allowed = (200, 204) if caller in OTHER_SESSIONS and call.kind == DATA else (200,)
            if answer.status_code not in allowed:
                problems.append(f"{where}: {answer.status_code}: {answer.text[:200]}")
                continue
            text = readable(answer.text)
            asked = json.dumps(call.body) + call.path
            if call.kind == PURE and call.body is not None:
                pure_answers.setdefault(call.name, set()).add(text)
            if caller in OTHER_SESSIONS:
                secrets = [*ACME_TEXT, *site.acme_ids, *(i[:8] for i in site.acme_ids), "acme"]
                leaked = [secret for secret in secrets if secret not in asked and secret in text]
                if leaked:
                    problems.append(f"{where}: shows acme's {leaked}")
            elif call.shows is not None and call.shows not in text:
                problems.append(f"{where}: does not show {call.shows!r}")
        if logged_in:
            logout = site.client.post("/logout", follow_redirects=False)
            assert (logout.status_code, logout.headers["location"]) == (302, "/login")
            assert site.client.get("/_dash-layout").status_code == 401
    assert not problems, "\n".join(problems)
    # Callbacks that read nothing answer every team alike.
    assert {name: len(answers) for name, answers in pure_answers.items()} == {
        name: 1 for name in pure_answers
    }


def test_the_other_teams_own_runs_are_what_it_sees(site: Site) -> None:
    become(site, "other read")
    router = next(
        d for d in dependencies(site.client) if d["output"].startswith(".._pages_content.")
    )
    body = dash_body(router, {"_pages_location.pathname": "/runs", "_pages_location.search": ""})
    text = site.client.post("/_dash-update-component", json=body).text
    assert GLOBEX_RUN in text
    assert "acme" not in text
    assert site.keys["other read"][VISIBLE_PREFIX_CHARS:] not in text


@pytest.mark.parametrize(
    ("window", "run"),
    [
        ({"start": "soon", "end": 10}, "acme0"),
        ({"start": 0, "end": "1e400"}, "acme0"),  # too large for a float: infinity
        ([0, 10], "acme0"),
        ({"start": 0, "end": 10}, {"id": "acme0"}),
        ({"start": 0, "end": 10}, "globex"),
    ],
)
def test_a_forged_zoom_answers_nothing(site: Site, window: Any, run: Any) -> None:
    """The run page's zoom callback, sent what no browser sends, answers 204, never 500."""
    become(site, "read")
    zoom = next(d for d in dependencies(site.client) if d["output"].startswith("..run-power."))
    run_id = site.acme_ids[0] if run == "acme0" else run
    values = {"run-window.data": window, "run-id.data": run_id}
    answer = site.client.post("/_dash-update-component", json=dash_body(zoom, values))
    assert answer.status_code == 204, answer.text
    good = {"run-window.data": {"start": 0, "end": 10}, "run-id.data": site.acme_ids[0]}
    assert (
        site.client.post("/_dash-update-component", json=dash_body(zoom, good)).status_code == 200
    )
