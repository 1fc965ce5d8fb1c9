"""Who may do what: every route against every kind of caller, and teams kept apart.

The matrix sends each route's request as: no key, a string that is no key, an unknown key,
a revoked key, the owning team's ingest, read and admin keys, and another team's ingest,
read and admin keys, and checks the exact status. After every request, the data of the
team that did not act is compared with a snapshot: a refused request changes nobody's data,
and an accepted one only its own team's. The routes are read from the application itself,
so a route added without a row in :data:`ROUTES` fails the test; the dashboard mounted at
``/`` has its own matrix (``tests/test_security_dashboard.py``).
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select
from starlette.routing import Mount

from carbon.server import auth
from carbon.server.app import create_app
from carbon.settings import load_settings
from carbon.store import open_store
from carbon.store.models import BatchReceipt, Device, Project, Run, RunRank, Sample
from carbon.store.teams import get_team, revoke_key
from tests.api_helpers import (
    TestClient,
    api,
    batch,
    bearer,
    body,
    make_key,
    new_run_id,
    run_end,
    run_start,
)


def team_snapshot(store_url: str, team: str) -> dict[str, Any]:
    """Everything of a team's runs that a request could change."""
    with open_store(store_url).session() as session:
        team_id = get_team(session, team).id
        runs = select(Run.id).where(Run.team_id == team_id)
        return {
            "projects": sorted(
                session.scalars(select(Project.name).where(Project.team_id == team_id))
            ),
            "runs": sorted(
                tuple(row)
                for row in session.execute(
                    select(Run.id, Run.status, Run.energy_j, Run.co2e_g, Run.last_seen_at).where(
                        Run.team_id == team_id
                    )
                )
            ),
            "ranks": sorted(
                tuple(row)
                for row in session.execute(
                    select(
                        RunRank.run_id, RunRank.rank, RunRank.status, RunRank.last_seen_at
                    ).where(RunRank.run_id.in_(runs))
                )
            ),
            "devices": session.scalar(
                select(func.count()).select_from(Device).where(Device.run_id.in_(runs))
            ),
            "samples": session.scalar(
                select(func.count()).select_from(Sample).where(Sample.run_id.in_(runs))
            ),
            "receipts": session.scalar(
                select(func.count()).select_from(BatchReceipt).where(BatchReceipt.run_id.in_(runs))
            ),
        }


@dataclass(frozen=True)
class Route:
    """A route and how to call it for a run of team acme."""

    method: str
    path: str
    kind: str  # "ingest", "read", or "open" (the same answer whoever calls)
    ok: int  # the status when allowed
    other_team: int  # the status for a key of another team with the right role
    json: Callable[[str, int], dict[str, Any]] | None = None  # (run id, call number) -> body

    @property
    def template(self) -> str:
        """The route's path as the application declares it (without the query)."""
        return self.path.split("?")[0]


def _start_body(run_id: str, n: int) -> dict[str, Any]:
    return body(run_start(run_id, rank=n, world_size=1000))  # a new rank at every call


def _batch_body(run_id: str, n: int) -> dict[str, Any]:
    return body(batch(run_id, n))  # a new seq at every call


def _beat_body(run_id: str, n: int) -> dict[str, Any]:
    return {"rank": 0}


def _end_body(run_id: str, n: int) -> dict[str, Any]:
    return body(run_end(run_id))


RUN = "/api/v1/runs/{run_id}"
ROUTES = [
    Route("POST", "/api/v1/runs", "ingest", 201, 409, _start_body),
    Route("POST", RUN + "/batches", "ingest", 200, 404, _batch_body),
    Route("POST", RUN + "/heartbeat", "ingest", 200, 404, _beat_body),
    Route("POST", RUN + "/end", "ingest", 200, 404, _end_body),
    Route("GET", "/api/v1/runs", "read", 200, 200),
    Route("GET", RUN, "read", 200, 404),
    Route("GET", "/api/v1/compare?ids={run_id},{run_id}", "read", 200, 404),
    Route("GET", "/api/v1/projects", "read", 200, 200),
    Route("GET", "/api/v1/team", "read", 200, 200),
    Route("GET", "/api/v1/hardware", "read", 200, 200),
    Route("GET", "/api/v1/regions", "read", 200, 200),
    Route("GET", "/api/v1/reports?format=csv", "read", 200, 200),
    Route("GET", "/healthz", "open", 200, 200),
    Route("GET", "/metrics", "open", 200, 200),  # CARBON_METRICS_TOKEN: test_api_metrics.py
    *(
        Route(method, path, "open", 200, 200)  # the API's schema and its viewers: no data
        for path in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
        for method in ("GET", "HEAD")
    ),
    *(  # any other path under /api/: a JSON 404, not the dashboard's page
        Route(method, "/api/{path:path}", "open", 404, 404)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    ),
]
CALLERS = [
    "no key",
    "not a key",
    "unknown key",
    "revoked",
    "ingest",
    "read",
    "admin",
    "other ingest",
    "other read",
    "other admin",
]
OTHER_TEAM = "other "


def expected_status(route: Route, caller: str) -> int:
    if route.kind == "open":
        return route.ok
    if caller in ("no key", "not a key", "unknown key", "revoked"):
        return 401
    role = caller.removeprefix(OTHER_TEAM)
    if role not in ("admin", route.kind):
        return 403  # the role is checked first: a refused caller learns nothing of the run
    return route.other_team if caller.startswith(OTHER_TEAM) else route.ok


def _call(client: TestClient, route: Route, run_id: str, key: str | None, n: int) -> Any:
    headers = bearer(key) if key else {}
    path = route.path.replace("{path:path}", "v0/nothing").format(run_id=run_id)
    body = route.json(run_id, n) if route.json is not None else None
    return client.request(route.method, path, json=body, headers=headers)


def registered_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path template) the application answers outside the dashboard."""
    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, Mount):
            assert context.original_route.path == ""  # the dashboard, at / (see the docstring)
            continue
        for method in context.methods or ():
            found.add((method, str(context.path)))
    return found


def test_the_matrix_has_a_row_for_every_route_the_app_registers(
    sqlite_template: Path, tmp_path: Path
) -> None:
    app = create_app(
        load_settings(home=tmp_path, database_url=f"sqlite:///{sqlite_template}"),
        require_auth=True,
    )
    registered = registered_routes(app)
    listed = {(route.method, route.template) for route in ROUTES}
    assert registered - listed == set(), "routes without a row in ROUTES"
    assert listed - registered == set(), "rows of ROUTES the app does not have"
    assert len(registered) == 27
    mounts = [r for r in app.routes if isinstance(r, Mount)]
    assert [(mount.path, type(mount.app).__name__) for mount in mounts] == [("", "WSGIMiddleware")]


def test_every_route_answers_every_caller_as_its_role_allows(
    store_url: str, tmp_path: Path
) -> None:
    keys: dict[str, str | None] = {
        "no key": None,
        "not a key": "password123",
        "unknown key": "cbn_" + "x" * 43,
        "revoked": make_key(store_url, "acme", "admin", revoked=True),
        **{role: make_key(store_url, "acme", role) for role in ("ingest", "read", "admin")},
        **{
            OTHER_TEAM + role: make_key(store_url, "globex", role)
            for role in ("ingest", "read", "admin")
        },
    }
    run_id = new_run_id()
    calls = itertools.count(1)
    with api(store_url, tmp_path) as client:
        admin = bearer(keys["admin"] or "")
        started = client.post("/api/v1/runs", json=_start_body(run_id, 0), headers=admin)
        assert started.status_code == 201
        sent = client.post(
            f"/api/v1/runs/{run_id}/batches", json=_batch_body(run_id, 0), headers=admin
        )
        assert sent.status_code == 200
        assert team_snapshot(store_url, "acme")["samples"] == 15
        after = {team: team_snapshot(store_url, team) for team in ("acme", "globex")}
        for route, caller in itertools.product(ROUTES, CALLERS):
            acting = "globex" if caller.startswith(OTHER_TEAM) else "acme"
            bystander = "acme" if acting == "globex" else "globex"
            before = after
            answer = _call(client, route, run_id, keys[caller], next(calls))
            assert answer.status_code == expected_status(route, caller), (
                route.method,
                route.path,
                caller,
                answer.text,
            )
            if answer.status_code >= 400:
                assert answer.json()["detail"]
            if caller.startswith(OTHER_TEAM) and answer.status_code < 400:
                assert run_id not in answer.text, (route.path, caller)
            after = {team: team_snapshot(store_url, team) for team in ("acme", "globex")}
            assert after[bystander] == before[bystander], (route.path, caller)
            if answer.status_code >= 400:
                assert after[acting] == before[acting], (route.path, caller)
            if answer.status_code == 401:
                assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_the_other_teams_reads_show_none_of_our_data(store_url: str, tmp_path: Path) -> None:
    ours = make_key(store_url, "acme", "admin")
    theirs = make_key(store_url, "globex", "admin")
    start = run_start(project="acme-secret-project", name="acme-secret-run")
    with api(store_url, tmp_path) as client:
        client.post("/api/v1/runs", json=body(start), headers=bearer(ours))
        client.post(
            f"/api/v1/runs/{start.id}/batches", json=body(batch(start.id, 0)), headers=bearer(ours)
        )
        for path in ("/api/v1/runs", "/api/v1/projects", "/api/v1/hardware", "/api/v1/regions"):
            assert client.get(path, headers=bearer(theirs)).json() == [], path
            assert client.get(path, headers=bearer(ours)).json() != [], path
        assert client.get("/api/v1/team", headers=bearer(theirs)).json()["team"] == "globex"
        for path in (f"/api/v1/runs/{start.id}", f"/api/v1/compare?ids={start.id},{start.id}"):
            refused = client.get(path, headers=bearer(theirs))
            assert refused.status_code == 404, path
            assert client.get(path, headers=bearer(ours)).status_code == 200, path
        # Reports, in every format, name none of the other team's runs or projects.
        for fmt in ("json", "csv", "md", "html"):
            path = f"/api/v1/reports?format={fmt}&project=acme-secret-project"
            mine = client.get(path, headers=bearer(ours))
            other = client.get(path, headers=bearer(theirs))
            assert (mine.status_code, other.status_code) == (200, 200), fmt
            assert "acme-secret-run" in mine.text, fmt  # the check below can fail
            for secret in (start.id[:8], "acme-secret-run", "acme"):
                assert secret not in other.text.replace("acme-secret-project", ""), (fmt, secret)
        rows = list(
            csv.DictReader(
                io.StringIO(client.get("/api/v1/reports?format=csv", headers=bearer(theirs)).text)
            )
        )
        assert rows == []


def test_a_revoked_key_stops_working_within_the_cache_delay(store_url: str, tmp_path: Path) -> None:
    now = [1000.0]
    key = make_key(store_url, "acme", "read")
    with api(store_url, tmp_path) as client:
        state = client.app.state.server  # type: ignore[attr-defined]
        state.keys = auth.KeyAuthenticator(state.store, clock=lambda: now[0])
        assert client.get("/api/v1/team", headers=bearer(key)).status_code == 200
        with open_store(store_url).session() as session:
            revoke_key(session, get_team(session, "acme"), key[:12])
        # Within the cache delay the answer may still be the cached one...
        now[0] += auth.KEY_CACHE_TTL_S / 2
        assert client.get("/api/v1/team", headers=bearer(key)).status_code == 200
        # ...past it, the key is refused.
        now[0] += auth.KEY_CACHE_TTL_S
        assert client.get("/api/v1/team", headers=bearer(key)).status_code == 401


def test_a_keys_last_use_is_noted_at_most_once_a_minute(store_url: str, tmp_path: Path) -> None:
    from carbon.store.models import ApiKey
    from carbon.store.teams import hash_key

    key = make_key(store_url, "acme", "read")

    def last_used() -> Any:
        with open_store(store_url).session() as session:
            return session.scalar(
                select(ApiKey.last_used_at).where(ApiKey.key_hash == hash_key(key))
            )

    assert last_used() is None
    with api(store_url, tmp_path) as client:
        client.get("/api/v1/team", headers=bearer(key))
        first = last_used()
        assert first is not None
        for _ in range(3):
            client.get("/api/v1/team", headers=bearer(key))
        assert last_used() == first
