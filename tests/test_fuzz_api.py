"""Requests generated from the server's own OpenAPI schema (schemathesis), on both backends.

Every operation of ``/openapi.json`` gets requests built from its schema, valid ones and
ones broken on purpose (negative mode), sent with a key of each role so that they reach the
handlers, and with the ids of runs the test seeded so that they reach the store. Each answer
is checked:

- no 5xx: the server never fails (a database that answers is never "unavailable" either);
- the answer conforms to the schema: a declared status, content type, headers and body;
- every 4xx names the problem: a ``detail`` sentence that is not a generic phrase, or a
  list of errors each with a ``loc`` naming the field and a message;
- a refused ``POST`` changes no row of any table.

After the run the store holds no partial batch: its receipts are exactly the batches
answered ``stored: true``, and per run and rank the samples (count and energy), work rows and
windows are exactly theirs. At least 1,000 requests are sent per backend, counted and
asserted; hypothesis is derandomized so CI sends the same requests each time.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import given, reject
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.generation.feedback import NO_FEEDBACK
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from carbon import wire
from tests.api_helpers import TestClient, api, batch, bearer, body, make_key, run_end, run_start
from tests.fuzz_helpers import (
    SentBatches,
    batches,
    fuzz_settings,
    partial_batches,
    stored_batches,
    table_rows,
)

MIN_REQUESTS = 1_000
"""Requests each backend must get, across all operations."""

ROLES = ("ingest", "read", "admin")

Answer = Any
"""A response of the test client (httpx's, whichever package the installed Starlette uses)."""

POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE


@dataclass(frozen=True)
class Plan:
    """How many examples an operation gets in each mode.

    Hypothesis stops early when an operation has fewer distinct requests than that: one
    without parameters gets one request per role. Large bodies cost the most to generate
    (a batch about ten times a query), so they get fewer examples than cheap reads.
    """

    positive: int
    negative: int = 0


PLANS = {
    "POST /api/v1/runs": Plan(60, 40),
    "POST /api/v1/runs/{run_id}/batches": Plan(60, 40),
    "POST /api/v1/runs/{run_id}/end": Plan(70, 50),
    "POST /api/v1/runs/{run_id}/heartbeat": Plan(80, 40),
    "GET /api/v1/runs": Plan(100, 60),
    "GET /api/v1/runs/{run_id}": Plan(120),
    "GET /api/v1/compare": Plan(90, 40),
    "GET /api/v1/reports": Plan(60, 30),
    "GET /api/v1/projects": Plan(10),
    "GET /api/v1/team": Plan(10),
    "GET /api/v1/hardware": Plan(10),
    "GET /api/v1/regions": Plan(10),
    "GET /healthz": Plan(10),
    "GET /metrics": Plan(10),
}
"""Every operation of the schema, and its share of the requests."""

PLAUSIBLE_BATCHES = 100
"""Batches drawn from the wire's own strategy for the seeded runs, most of them stored."""

SEEDED = {
    "started": uuid.UUID(int=1).hex,
    "ended": uuid.UUID(int=2).hex,
    "other team's": uuid.UUID(int=3).hex,
}
"""Runs made before the requests, so that ids in paths and bodies name real runs."""

SCHEMA_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

GENERIC_DETAILS = frozenset(
    {
        "bad request",
        "not found",
        "forbidden",
        "unauthorized",
        "unprocessable entity",
        "method not allowed",
        "there was an error parsing the body",
        "internal server error",
        "validation error",
    }
)
"""Starlette's and FastAPI's stock phrases: an answer made only of one names nothing."""


def names_the_problem(answer: Answer) -> str | None:
    """Why a 4xx answer does not say what was wrong; ``None`` when it does."""
    try:
        detail = answer.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return f"no JSON detail: {answer.text[:200]!r}"
    if isinstance(detail, str):
        words = detail.strip().rstrip(".").lower()
        if len(words) < 12 or words in GENERIC_DETAILS:
            return f"detail {detail!r} is generic"
        return None
    if not isinstance(detail, list) or not detail:
        return f"detail {detail!r} is neither a sentence nor a list of errors"
    for error in detail:
        loc, message = error.get("loc"), str(error.get("msg", "")).strip()
        if (
            not isinstance(loc, list)
            or not loc
            or loc[0] not in ("body", "query", "path", "header")
        ):
            return f"error {error!r} does not say where"
        if len(loc) == 1 and len(message) < 20:  # the whole body: the message must say what
            return f"error {error!r} names no field and says little"
        if not message or message.lower() in GENERIC_DETAILS:
            return f"error {error!r} has no message"
    return None


@dataclass
class Fuzzer:
    """Sends generated cases through a test client and checks each answer."""

    client: TestClient
    store_url: str
    keys: dict[str, str]
    sent: SentBatches
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)

    def send(self, case: Case[Any]) -> Answer:
        """The case as an HTTP request; a request the client cannot even encode is skipped."""
        kwargs = case.as_transport_kwargs(base_url=str(self.client.base_url))
        content = kwargs.get("data")
        if "json" in kwargs:
            content = json.dumps(kwargs["json"]).encode()
        url, params = kwargs["url"], kwargs.get("params")
        if isinstance(params, str):
            url, params = f"{url}?{params}", None
        try:
            request = self.client.build_request(
                kwargs["method"],
                url,
                params=params or None,
                headers=kwargs["headers"],
                content=content,
            )
        except Exception:  # nothing was sent: the client refused to encode the request
            reject()
        return self.client.send(request)

    def check(self, case: Case[Any], label: str) -> Answer:
        """Send a case and check its answer (see the module docstring)."""
        before = table_rows(self.store_url) if case.method == "POST" else None
        answer = self.send(case)
        self.requests[label] += 1
        self.statuses[(label, answer.status_code)] += 1
        where = f"{case.method} {answer.request.url} -> {answer.status_code}: {answer.text[:300]}"
        assert answer.status_code < 500, where
        case.validate_response(answer, checks=SCHEMA_CHECKS)
        if 400 <= answer.status_code < 500:
            problem = names_the_problem(answer)
            assert problem is None, f"{where}\n{problem}"
            if before is not None:
                assert table_rows(self.store_url) == before, f"{where}\nchanged the store"
        if label.endswith("/batches") and answer.status_code == 200 and answer.json()["stored"]:
            self.sent.add(wire.Batch.model_validate(case.body))
        return answer


def _seed(client: TestClient, keys: dict[str, str], rival: str, sent: SentBatches) -> None:
    """Runs the requests can name: one started with a batch, one ended, one of another team."""
    started_at = datetime.now(UTC) - timedelta(hours=1)
    for name, run_id in SEEDED.items():
        key = rival if name == "other team's" else keys["ingest"]
        start = run_start(run_id, started_at=started_at)
        assert client.post("/api/v1/runs", json=body(start), headers=bearer(key)).status_code == 201
        first = batch(run_id, 0)
        answer = client.post(
            f"/api/v1/runs/{run_id}/batches", json=body(first), headers=bearer(key)
        )
        assert answer.json()["stored"] is True
        sent.add(first)
        if name == "ended":
            end = body(run_end(run_id))
            assert client.post(
                f"/api/v1/runs/{run_id}/end", json=end, headers=bearer(key)
            ).is_success


def _cases(
    operation: Any, mode: GenerationMode, keys: dict[str, str]
) -> st.SearchStrategy[Case[Any]]:
    """Cases of an operation with a key of each role; on a run, generated and seeded ids.

    A valid body for a seeded run names the run in its ``run_id`` too, so that batches and
    ends get past the path check to the store; comparisons also get the seeded runs' ids.
    Generation learns nothing from earlier answers (``NO_FEEDBACK``), so the requests depend
    on the schema and hypothesis' fixed seed only, the same in every run.
    """
    choices = []
    run_ids: list[str | None] = [None]
    if "{run_id}" in operation.path:
        run_ids += list(SEEDED.values())
    for role in ROLES:
        for run_id in run_ids:
            strategy = operation.as_strategy(
                generation_mode=mode,
                feedback=NO_FEEDBACK,
                headers={"Authorization": f"Bearer {keys[role]}"},
                path_parameters={"run_id": run_id} if run_id else None,
            )
            if run_id and mode is POSITIVE:
                strategy = strategy.map(_naming_run(run_id))
            choices.append(strategy)
    if operation.path == "/api/v1/compare":
        pairs = ",".join(SEEDED.values()), f"{SEEDED['started']},{SEEDED['ended'][:8]}"
        for ids in pairs:
            choices.append(
                operation.as_strategy(
                    generation_mode=mode,
                    feedback=NO_FEEDBACK,
                    headers={"Authorization": f"Bearer {keys['read']}"},
                    query={"ids": ids},
                )
            )
    return st.one_of(choices)


def _naming_run(run_id: str) -> Callable[[Case[Any]], Case[Any]]:
    def name(case: Case[Any]) -> Case[Any]:
        if isinstance(case.body, dict) and "run_id" in case.body:
            case.body["run_id"] = run_id
        return case

    return name


def _fuzz(fuzzer: Fuzzer, operation: Any, mode: GenerationMode, examples: int) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    @fuzz_settings(examples, shrink=False)
    @given(case=_cases(operation, mode, fuzzer.keys))
    def requests_to(case: Case[Any]) -> None:
        fuzzer.check(case, label)

    requests_to()


def _plausible_batches(fuzzer: Fuzzer, schema: Any) -> None:
    """Batches the wire accepts for the seeded runs, posted whole: most reach the store."""
    operation = schema["/api/v1/runs/{run_id}/batches"]["POST"]
    label = "POST /api/v1/runs/{run_id}/batches"
    run_id = SEEDED["started"]

    @fuzz_settings(PLAUSIBLE_BATCHES, shrink=False)
    @given(
        sent=batches(run_id=run_id, rank=0, devices=3, max_duration_s=3000.0, max_rows=30),
        role=st.sampled_from(ROLES),
    )
    def batches_of_a_run(sent: wire.Batch, role: str) -> None:
        case = operation.Case(
            path_parameters={"run_id": run_id},
            headers={"Authorization": f"Bearer {fuzzer.keys[role]}"},
            body=sent.model_dump(mode="json"),
            media_type="application/json",
        )
        answer = fuzzer.check(case, label)
        if role != "read":
            assert answer.status_code == 200, answer.text

    batches_of_a_run()


@contextmanager
def _server(store_url: str, tmp_path: Path) -> Iterator[tuple[Fuzzer, Any]]:
    keys = {role: make_key(store_url, "acme", role) for role in ROLES}
    rival = make_key(store_url, "rival", "ingest")
    with api(store_url, tmp_path, rate_limit_per_s=1e9) as client:
        fuzzer = Fuzzer(client, store_url, keys, SentBatches.empty())
        _seed(client, keys, rival, fuzzer.sent)
        spec = client.get("/openapi.json")
        assert spec.status_code == 200
        yield fuzzer, schemathesis.openapi.from_dict(spec.json())


def test_generated_requests_get_no_5xx_only_4xx_naming_the_problem_and_no_partial_batch(
    store_url: str, tmp_path: Path
) -> None:
    with _server(store_url, tmp_path) as (fuzzer, schema):
        operations = [result.ok() for result in schema.get_all_operations()]
        labels = {f"{op.method.upper()} {op.path}" for op in operations}
        assert labels == set(PLANS), f"operations without a plan: {labels - set(PLANS)}"
        for operation in operations:
            plan = PLANS[f"{operation.method.upper()} {operation.path}"]
            _fuzz(fuzzer, operation, POSITIVE, plan.positive)
            if plan.negative:
                _fuzz(fuzzer, operation, NEGATIVE, plan.negative)
        _plausible_batches(fuzzer, schema)
    total = sum(fuzzer.requests.values())
    assert total >= MIN_REQUESTS, fuzzer.requests
    assert set(fuzzer.requests) == set(PLANS), fuzzer.requests
    stored = {(label, status) for label, status in fuzzer.statuses if 200 <= status < 300}
    assert ("POST /api/v1/runs/{run_id}/batches", 200) in stored  # batches reached the store
    assert ("POST /api/v1/runs", 201) in stored  # and runs were started
    assert partial_batches(stored_batches(store_url), fuzzer.sent) == []
