"""The remote agent against a fake team server: spool, sender, HttpSink and sync."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import carbon
from carbon import wire
from carbon.cli import app
from carbon.errors import ConfigError, RunNotFound, StoreError
from carbon.remote.client import OutcomeKind, ServerClient
from carbon.remote.sender import SenderTiming
from carbon.remote.senders import close_senders, sender_for
from carbon.remote.sink import HttpSink
from carbon.remote.spool import BYTES_PER_MB, Spool
from carbon.remote.sync import sync
from carbon.settings import Settings, load_settings
from carbon.sources.base import Component
from carbon.testing import ConstantPowerSource
from tests.test_spool import SPAWN, _leave_a_run_open, batch, new_run_id, run_end, run_start

API_KEY = "ingest-key-5f3a9c"
FAST = SenderTiming(
    initial_backoff_s=0.01,
    max_backoff_s=0.05,
    unauthorized_backoff_s=0.05,
    heartbeat_interval_s=3600.0,
)


@dataclass
class Request:
    """One request as the fake server saw it."""

    method: str
    path: str
    body: dict[str, Any]
    at_s: float
    answered: int | None  # status code, None when the network "failed"


class FakeServer:
    """The team server's HTTP contract, in memory, with switches for trouble."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.stored: list[tuple[str, int | None]] = []  # (kind, seq) of records stored
        self.down = False
        self.status_for_all: int | None = None
        self.answers: dict[tuple[str, int | None], list[httpx.Response]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self._seen: set[tuple[str, int, int]] = set()
        self._lock = threading.Lock()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            return self._handle(request)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        seen = Request(request.method, request.url.path, body, time.monotonic(), None)
        self.requests.append(seen)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"
        assert request.headers["User-Agent"].startswith("carbon/")
        response = self._answer(request, body)
        seen.answered = response.status_code
        return response

    def _answer(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        if self.status_for_all is not None:
            return httpx.Response(self.status_for_all, json={"detail": "no"})
        parts = request.url.path.removeprefix("/api/v1/runs").strip("/").split("/")
        if request.method == "GET":
            run = self.runs.get(parts[0])
            return httpx.Response(200, json=run) if run else httpx.Response(404, json={})
        kind = {"": "start", "batches": "batch", "end": "end", "heartbeat": "heartbeat"}[
            parts[-1] if len(parts) > 1 else ""
        ]
        scripted = self.answers.get((kind, body.get("seq")))
        if scripted:
            return scripted.pop(0)
        if kind == "start":
            self.stored.append(("start", None))
            ack: dict[str, Any] = {"run_id": body["id"], "rank": body["rank"], "created": True}
            return httpx.Response(201, json=ack)
        if kind == "batch":
            key = (body["run_id"], body["rank"], body["seq"])
            stored = key not in self._seen
            self._seen.add(key)
            if stored:
                self.stored.append(("batch", body["seq"]))
            ack = {"run_id": key[0], "rank": key[1], "seq": key[2], "stored": stored}
            return httpx.Response(200, json=ack)
        if kind == "end":
            self.stored.append(("end", None))
        return httpx.Response(200, json={"run_id": parts[0], "status": "running"})

    def posts(self, kind: str) -> list[Request]:
        suffix = {"start": "/runs", "batch": "/batches", "end": "/end", "heartbeat": "/heartbeat"}
        return [r for r in self.requests if r.method == "POST" and r.path.endswith(suffix[kind])]


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def remote_settings(tmp_path: Path) -> Iterator[Settings]:
    settings = load_settings(
        home=tmp_path / "home",
        server_url="http://carbon.test",
        api_key=API_KEY,
        flush_timeout_s=5.0,
    )
    yield settings
    close_senders(timeout_s=0.0)


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def make_sink(settings: Settings, server: FakeServer) -> HttpSink:
    return HttpSink.from_settings(settings, transport=server.transport(), timing=FAST)


def test_records_wait_while_the_server_is_down_then_arrive_once_in_order(
    remote_settings: Settings, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.down = True
    sink = make_sink(remote_settings, server)
    run_id = new_run_id()
    sink.start_run(run_start(run_id))
    for seq in range(5):
        sink.write(batch(run_id, seq))
    wait_for(lambda: len(server.requests) >= 3)
    assert server.stored == []
    assert sink.sender.spool.count(run_id=run_id) == 6
    assert {r.path for r in server.requests} == {"/api/v1/runs"}  # the start, again and again

    server.down = False
    sink.finish_run(run_end(run_id))

    assert server.stored == [("start", None), *(("batch", s) for s in range(5)), ("end", None)]
    assert sink.sender.spool.count() == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one "cannot send yet" for the whole outage, none at the end
    assert "ConnectError" in warnings[0]
    assert str(remote_settings.spool_path) in warnings[0]
    assert sink.display_name == "server http://carbon.test"


def test_a_tracked_run_reaches_the_server_with_its_exact_energy(
    remote_settings: Settings, server: FakeServer
) -> None:
    # carbon.track() opens HttpSink.from_settings, which reuses this process's sender.
    sender = sender_for(remote_settings, transport=server.transport(), timing=FAST)
    source = ConstantPowerSource(45.0, component=Component.CPU, name="test cpu")
    with carbon.track(
        project="p", name="remote", settings=remote_settings, sources=[source]
    ) as run:
        time.sleep(1.3)
        run.step(samples=8)

    seqs = [seq for kind, seq in server.stored if kind == "batch"]
    assert server.stored == [("start", None), *(("batch", s) for s in seqs), ("end", None)]
    assert seqs == list(range(len(seqs)))
    assert len(seqs) >= 2
    totals = server.posts("batch")[-1].body["totals"]
    assert totals["device_energy_j"][0] == pytest.approx(45.0 * totals["duration_s"], rel=1e-6)
    assert totals["samples"] == 8
    (end,) = server.posts("end")
    assert (end.body["run_id"], end.body["status"]) == (run.id, "completed")
    assert sender.spool.count() == 0


def test_a_batch_sent_twice_is_acknowledged_and_deleted(
    remote_settings: Settings, server: FakeServer
) -> None:
    sink = make_sink(remote_settings, server)
    run_id = new_run_id()
    timeout = httpx.Response(504, json={"detail": "gateway timeout"})
    sink.start_run(run_start(run_id))
    sink.write(batch(run_id, 0))
    server.answers[("batch", 1)] = [timeout]  # stored by nobody, answered with an error
    sink.write(batch(run_id, 1))
    sink.finish_run(run_end(run_id))
    assert [r.answered for r in server.posts("batch")] == [200, 504, 200]
    assert server.stored == [("start", None), ("batch", 0), ("batch", 1), ("end", None)]


@pytest.mark.parametrize("status", [503, 429])
def test_retry_after_is_honoured(
    remote_settings: Settings, server: FakeServer, status: int
) -> None:
    sink = make_sink(remote_settings, server)
    run_id = new_run_id()
    busy = httpx.Response(status, headers={"Retry-After": "1"}, json={"detail": "busy"})
    server.answers[("batch", 0)] = [busy]
    sink.start_run(run_start(run_id))
    sink.write(batch(run_id, 0))
    wait_for(lambda: len(server.posts("batch")) == 2)

    first, second = server.posts("batch")
    assert (first.answered, second.answered) == (status, 200)
    assert second.at_s - first.at_s >= 1.0
    assert second.at_s - first.at_s < 2.0


def test_a_refused_record_is_set_aside_and_later_ones_still_go(
    remote_settings: Settings, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    sink = make_sink(remote_settings, server)
    run_id = new_run_id()
    detail = [{"loc": ["body", "totals", "duration_s"], "msg": "must be >= 0"}]
    server.answers[("batch", 1)] = [httpx.Response(422, json={"detail": detail})]
    sink.start_run(run_start(run_id))
    for seq in range(3):
        sink.write(batch(run_id, seq))
    sink.finish_run(run_end(run_id))

    assert server.stored == [("start", None), ("batch", 0), ("batch", 2), ("end", None)]
    (rejected,) = sink.sender.spool.rejected()
    assert (rejected.kind, rejected.seq, rejected.status_code) == ("batch", 1, 422)
    assert rejected.reason == "HTTP 422: body.totals.duration_s: must be >= 0"
    assert wire.Batch.model_validate_json(rejected.body) == batch(run_id, 1)
    assert sink.sender.spool.count() == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "body.totals.duration_s" in errors[0]
    assert "seq 1" in errors[0]
    assert sink.sender.stats().rejected == 1


def test_a_refused_key_keeps_the_records_and_says_so_once(
    remote_settings: Settings, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.status_for_all = 401
    settings = remote_settings.model_copy(update={"flush_timeout_s": 0.3})
    sink = make_sink(settings, server)
    run_id = new_run_id()
    sink.start_run(run_start(run_id))
    sink.write(batch(run_id, 0))
    sink.finish_run(run_end(run_id))

    assert len(server.requests) >= 3  # tried again and again, backing off
    assert sink.sender.spool.count(run_id=run_id) == 3
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "refused the API key" in errors[0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"carbon: 3 record(s) of run {run_id} are not on the server")
    assert str(settings.spool_path) in warnings[0]
    assert "carbon sync" in warnings[0]
    assert all(API_KEY not in r.getMessage() for r in caplog.records)


def test_flush_gives_up_after_its_timeout_and_says_what_remains(
    remote_settings: Settings, server: FakeServer
) -> None:
    server.down = True
    sink = make_sink(remote_settings, server)
    run_id = new_run_id()
    sink.start_run(run_start(run_id))
    sink.write(batch(run_id, 0))
    other = new_run_id()
    sink.start_run(run_start(other))

    started = time.monotonic()
    remaining = sink.sender.flush(run_id, timeout_s=0.3)
    elapsed_s = time.monotonic() - started

    assert remaining == 2
    assert 0.25 <= elapsed_s < 1.0
    assert sink.sender.flush(None, timeout_s=0.0) == 3
    assert "unreachable" in (sink.sender.last_problem or "")


def test_flush_returns_at_once_when_the_next_try_comes_after_its_timeout(
    remote_settings: Settings, server: FakeServer
) -> None:
    server.down = True
    slow = SenderTiming(initial_backoff_s=20.0, max_backoff_s=20.0)
    sender = sender_for(remote_settings, transport=server.transport(), timing=slow)
    sender.spool.append(run_start(new_run_id()))
    started = time.monotonic()
    assert sender.flush(None, timeout_s=5.0) == 1
    assert time.monotonic() - started < 2.0


def test_an_open_run_with_nothing_to_send_gets_heartbeats(
    remote_settings: Settings, server: FakeServer
) -> None:
    timing = SenderTiming(heartbeat_interval_s=0.1)
    sink = HttpSink.from_settings(remote_settings, transport=server.transport(), timing=timing)
    run_id = new_run_id()
    sink.start_run(run_start(run_id, rank=2))
    wait_for(lambda: len(server.posts("heartbeat")) >= 2)
    beat = server.posts("heartbeat")[0]
    assert beat.path == f"/api/v1/runs/{run_id}/heartbeat"
    assert beat.body == {"rank": 2}
    sink.finish_run(run_end(run_id, rank=2))
    count = len(server.posts("heartbeat"))
    time.sleep(0.3)
    assert len(server.posts("heartbeat")) == count  # an ended run gets none


def test_sync_ends_a_dead_process_run_as_interrupted_and_sends_it(
    remote_settings: Settings, server: FakeServer
) -> None:
    run_id = new_run_id()
    child = SPAWN.Process(target=_leave_a_run_open, args=(str(remote_settings.spool_path), run_id))
    child.start()
    child.join(60)
    assert child.exitcode == 0

    report = sync(remote_settings, timeout_s=5.0, transport=server.transport(), timing=FAST)

    assert (report.sent, report.remaining, report.rejected, report.interrupted) == (4, 0, 0, 1)
    assert server.stored == [("start", None), ("batch", 0), ("batch", 1), ("end", None)]
    (end,) = server.posts("end")
    assert end.body["status"] == "interrupted"
    assert end.body["error"].startswith(f"the agent process {child.pid} on ")
    assert report.lines() == [
        "sent 4 record(s) to http://carbon.test; closed 1 run(s) of ended processes as "
        "interrupted; the spool is empty"
    ]


def test_sync_reports_why_records_remain(remote_settings: Settings, server: FakeServer) -> None:
    server.down = True
    spool = Spool(remote_settings.spool_path, max_bytes=BYTES_PER_MB)
    spool.append(run_start(new_run_id()))
    spool.close()
    report = sync(remote_settings, timeout_s=0.3, transport=server.transport(), timing=FAST)
    assert (report.sent, report.remaining) == (0, 1)
    assert report.lines()[1].startswith(f"1 record(s) remain in {remote_settings.spool_path}: ")
    assert "unreachable" in report.lines()[1]


def test_carbon_sync_exits_1_when_the_server_cannot_be_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARBON_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CARBON_SERVER_URL", "http://127.0.0.1:9")  # the discard port: refused
    monkeypatch.setenv("CARBON_API_KEY", API_KEY)
    spool = Spool(tmp_path / "home" / "spool.db", max_bytes=BYTES_PER_MB)
    spool.append(run_start(new_run_id()))
    spool.close()

    result = CliRunner().invoke(app, ["sync", "--timeout", "0.5"])

    assert result.exit_code == 1
    assert result.stdout.startswith("sent 0 record(s) to http://127.0.0.1:9")
    assert "1 record(s) remain in" in result.stderr
    assert "unreachable" in result.stderr


def test_carbon_sync_with_nothing_spooled_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBON_SERVER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CARBON_API_KEY", API_KEY)
    result = CliRunner().invoke(app, ["sync"])
    assert result.exit_code == 0
    assert result.stdout == "sent 0 record(s) to http://127.0.0.1:9; the spool is empty\n"


def test_a_server_url_without_a_key_is_a_config_error(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, server_url="http://carbon.test")
    with pytest.raises(ConfigError, match="CARBON_API_KEY"):
        HttpSink.from_settings(settings)


def test_summary_comes_from_the_server(remote_settings: Settings, server: FakeServer) -> None:
    sink = make_sink(remote_settings, server)
    run_id = new_run_id()
    server.runs[run_id] = {"id": run_id, "energy_j": 12.5}
    assert sink.summary(run_id) == {"id": run_id, "energy_j": 12.5}
    with pytest.raises(RunNotFound):
        sink.summary(new_run_id())
    server.status_for_all = 403
    with pytest.raises(StoreError, match="role read or admin"):
        sink.summary(run_id)


def test_the_client_classifies_answers(server: FakeServer) -> None:
    key = load_settings(api_key=API_KEY).api_key
    assert key is not None
    client = ServerClient("http://carbon.test", key, transport=server.transport())
    spool_record = _spooled_start()
    expected = {
        400: OutcomeKind.REJECTED,
        401: OutcomeKind.UNAUTHORIZED,
        403: OutcomeKind.UNAUTHORIZED,
        409: OutcomeKind.REJECTED,
        413: OutcomeKind.REJECTED,
        429: OutcomeKind.RETRY,
        500: OutcomeKind.RETRY,
        503: OutcomeKind.RETRY,
        404: OutcomeKind.RETRY,  # for a start: the URL does not lead to a carbon server
    }
    for status, kind in expected.items():
        server.status_for_all = status
        outcome = client.send(spool_record)
        assert (outcome.kind, outcome.status_code) == (kind, status)
    server.status_for_all = 200  # 200 without an acknowledgement: kept, not deleted
    assert client.send(spool_record).kind is OutcomeKind.RETRY
    server.status_for_all = None
    assert client.send(spool_record).kind is OutcomeKind.ACKED
    client.close()


def _spooled_start() -> Any:
    from carbon.remote.spool import SpoolRecord

    start = run_start(new_run_id())
    return SpoolRecord(1, start.id, 0, "start", None, start.model_dump_json().encode())


def test_import_carbon_does_not_import_the_remote_agent() -> None:
    code = (
        "import sys, json, carbon, carbon.cli; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m in ('httpx', 'psutil', 'sqlite3') or m.startswith('carbon.remote'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


def test_doctor_says_where_runs_go_and_what_the_spool_holds(tmp_path: Path) -> None:
    from carbon.remote.spool import Spool
    from tests.test_cli import cli

    env = {
        "CARBON_HOME": str(tmp_path),
        "CARBON_SERVER_URL": "http://127.0.0.1:9",
        "CARBON_API_KEY": "cbn_secret_not_to_print",
    }
    empty = cli("doctor", env=env)
    assert empty.returncode == 0, empty.stderr
    assert "server     http://127.0.0.1:9 (key set)" in empty.stdout
    assert f"spool      {tmp_path / 'spool.db'}: empty" in empty.stdout
    assert "cbn_secret" not in empty.stdout
    spool = Spool(tmp_path / "spool.db")
    try:
        spool.append(run_start(new_run_id()))
    finally:
        spool.close()
    report = json.loads(cli("doctor", "--json", env=env).stdout)
    assert report["server_url"] == "http://127.0.0.1:9"
    assert report["spool"]["records"] == 1
    assert report["spool"]["rejected"] == 0
    assert report["spool"]["size_bytes"] > 0
