"""Electricity Maps provider against a fake API on 127.0.0.1: parsing, cache, back-off, errors."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from carbon.accounting.providers.electricitymaps import (
    ElectricityMapsAuthError,
    ElectricityMapsBackoffError,
    ElectricityMapsConnectionError,
    ElectricityMapsError,
    ElectricityMapsProvider,
    ElectricityMapsResponseError,
    ElectricityMapsServerError,
    ElectricityMapsTimeoutError,
    ElectricityMapsZoneError,
)
from carbon.errors import ConfigError, SourceError

TOKEN = "s3cr3t-T0KEN-do-not-log"
KNOWN_ZONES = {"FR": 56, "DE": 380}


@dataclass
class Call:
    path: str
    zone: str
    token: str | None


@dataclass
class FakeApi:
    """What the fake server answers, and the calls it received."""

    base_url: str = ""
    calls: list[Call] = field(default_factory=list)
    status: int = 200
    body: Any = None  # overrides the canned answer (bytes are sent as they are)
    delay_s: float = 0.0
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, path: str, zone: str) -> tuple[int, Any]:
        if self.status != 200:
            return self.status, {"error": f"fake failure {self.status}, token {TOKEN}"}
        if self.body is not None:
            return 200, self.body
        if zone not in KNOWN_ZONES:
            return 404, {"error": f"Zone '{zone}' does not exist."}
        point = {
            "zone": zone,
            "carbonIntensity": KNOWN_ZONES[zone],
            "datetime": "2024-05-01T10:00:00.000Z",
            "updatedAt": "2024-05-01T10:41:12.000Z",
            "emissionFactorType": "lifecycle",
            "isEstimated": False,
            "estimationMethod": None,
        }
        if path.endswith("/latest"):
            return 200, point
        history = [
            {**point, "datetime": "2024-05-01T09:00:00.000Z", "carbonIntensity": 60},
            {**point, "datetime": "2024-05-01T08:00:00.000Z", "carbonIntensity": None},
            point,
            {**point, "datetime": "2024-05-01T07:00:00.000Z", "isEstimated": True},
        ]
        return 200, {"zone": zone, "history": history}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        api: FakeApi = self.server.api  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        zone = parse_qs(url.query).get("zone", [""])[0]
        api.calls.append(Call(url.path, zone, self.headers.get("auth-token")))
        if api.delay_s:
            api.release.wait(api.delay_s)
        status, body = api.answer(url.path, zone)
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls go straight to 127.0.0.1 whatever proxy the machine has set."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake = FakeApi(base_url=f"http://127.0.0.1:{server.server_address[1]}")
    server.api = fake  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield fake
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1_000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def provider(api: FakeApi, clock: FakeClock, **kwargs: Any) -> ElectricityMapsProvider:
    return ElectricityMapsProvider(TOKEN, base_url=api.base_url, clock=clock, **kwargs)


def test_latest_sends_the_token_header_and_parses(api: FakeApi, clock: FakeClock) -> None:
    live = provider(api, clock).latest("FR")
    assert live.zone == "FR"
    assert live.intensity_g_per_kwh == 56.0
    assert live.datetime_utc == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert live.factor_type == "lifecycle"
    assert live.is_estimated is False
    assert "Electricity Maps API" in live.source
    assert "lifecycle" in live.source
    assert api.calls == [Call("/v3/carbon-intensity/latest", "FR", TOKEN)]


def test_history_is_sorted_and_leaves_out_hours_without_a_figure(
    api: FakeApi, clock: FakeClock
) -> None:
    points = provider(api, clock).history("DE")
    assert [(p.datetime_utc.hour, p.intensity_g_per_kwh) for p in points] == [
        (7, 380.0),
        (9, 60.0),
        (10, 380.0),
    ]
    assert points[0].is_estimated is True
    assert api.calls == [Call("/v3/carbon-intensity/history", "DE", TOKEN)]


def test_answers_are_cached_per_zone_until_the_ttl_passes(api: FakeApi, clock: FakeClock) -> None:
    em = provider(api, clock, cache_ttl_s=900.0)
    em.latest("FR")
    em.latest("FR")
    em.history("FR")
    em.history("FR")
    em.latest("DE")
    assert [(c.path.rsplit("/", 1)[1], c.zone) for c in api.calls] == [
        ("latest", "FR"),
        ("history", "FR"),
        ("latest", "DE"),
    ]
    clock.now_s += 899.0
    em.latest("FR")
    assert len(api.calls) == 3
    clock.now_s += 1.0
    em.latest("FR")
    assert len(api.calls) == 4


def test_history_callers_cannot_change_the_cache(api: FakeApi, clock: FakeClock) -> None:
    em = provider(api, clock)
    em.history("FR").clear()
    assert len(em.history("FR")) == 3


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (401, ElectricityMapsAuthError, "refused the API token (HTTP 401"),
        (403, ElectricityMapsAuthError, "refused the API token (HTTP 403"),
        (400, ElectricityMapsZoneError, "does not know zone 'FR' (HTTP 400"),
        (404, ElectricityMapsZoneError, "does not know zone 'FR' (HTTP 404"),
        (500, ElectricityMapsServerError, "failed on its side (HTTP 500"),
        (503, ElectricityMapsServerError, "failed on its side (HTTP 503"),
        (429, ElectricityMapsResponseError, "answered HTTP 429"),
    ],
)
def test_http_errors_map_to_source_errors(
    api: FakeApi, clock: FakeClock, status: int, error: type[Exception], words: str
) -> None:
    api.status = status
    with pytest.raises(error) as caught:
        provider(api, clock).latest("FR")
    assert isinstance(caught.value, SourceError)
    assert words in str(caught.value)
    # The fake echoes the token in its error body; it must not reach the message.
    assert TOKEN not in str(caught.value)
    assert "<token>" in str(caught.value)


def test_unknown_zone(api: FakeApi, clock: FakeClock) -> None:
    with pytest.raises(ElectricityMapsZoneError, match=r"zone 'XX' \(HTTP 404: Zone 'XX'"):
        provider(api, clock).latest("XX")


def test_a_slow_answer_times_out(api: FakeApi, clock: FakeClock) -> None:
    api.delay_s = 5.0
    started = time.monotonic()
    with pytest.raises(ElectricityMapsTimeoutError, match=r"did not answer within 0.2 s"):
        provider(api, clock, timeout_s=0.2).latest("FR")
    assert time.monotonic() - started < 3.0


def test_an_unreachable_server(clock: FakeClock) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    em = ElectricityMapsProvider(TOKEN, base_url=f"http://127.0.0.1:{port}", clock=clock)
    with pytest.raises(ElectricityMapsConnectionError, match="could not be reached"):
        em.latest("FR")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"<html>maintenance</html>", "other than JSON"),
        ({"zone": "FR", "datetime": "2024-05-01T10:00:00Z"}, "no carbon intensity"),
        ({"zone": "FR", "carbonIntensity": None}, "no carbon intensity"),
        ({"zone": "FR", "carbonIntensity": -3, "datetime": "x"}, "impossible"),
        ({"zone": "FR", "carbonIntensity": 50, "datetime": "soon"}, "no usable datetime"),
        ([1, 2, 3], "is odd"),
    ],
)
def test_malformed_answers(api: FakeApi, clock: FakeClock, body: Any, words: str) -> None:
    api.body = body
    with pytest.raises(ElectricityMapsResponseError, match=words):
        provider(api, clock).latest("FR")


def test_history_without_a_list(api: FakeApi, clock: FakeClock) -> None:
    api.body = {"zone": "FR"}
    with pytest.raises(ElectricityMapsResponseError, match="no 'history' list"):
        provider(api, clock).history("FR")


def test_back_off_grows_after_each_failure_and_resets_on_success(
    api: FakeApi, clock: FakeClock
) -> None:
    em = provider(api, clock, backoff_initial_s=10.0, backoff_max_s=25.0)
    api.status = 500
    with pytest.raises(ElectricityMapsServerError):
        em.latest("FR")
    assert len(api.calls) == 1

    # 1 failure: 10 s pause, no call made, whatever the zone.
    with pytest.raises(ElectricityMapsBackoffError, match=r"another 10 s after 1 consecutive"):
        em.latest("FR")
    clock.now_s += 9.9
    with pytest.raises(ElectricityMapsBackoffError):
        em.history("DE")
    assert len(api.calls) == 1

    clock.now_s += 0.1
    with pytest.raises(ElectricityMapsServerError):
        em.latest("FR")
    assert len(api.calls) == 2

    # 2 failures: 20 s.
    clock.now_s += 19.0
    with pytest.raises(ElectricityMapsBackoffError, match="HTTP 500"):
        em.latest("FR")
    clock.now_s += 1.0
    with pytest.raises(ElectricityMapsServerError):
        em.latest("FR")
    assert len(api.calls) == 3

    # 3 failures: 40 s, capped at 25 s.
    clock.now_s += 24.0
    with pytest.raises(ElectricityMapsBackoffError):
        em.latest("FR")
    clock.now_s += 1.0
    api.status = 200
    assert em.latest("FR").intensity_g_per_kwh == 56.0
    assert len(api.calls) == 4

    # A success resets the count: the next failure pauses for 10 s again.
    api.status = 503
    with pytest.raises(ElectricityMapsServerError):
        em.latest("DE")
    clock.now_s += 10.0
    with pytest.raises(ElectricityMapsServerError):
        em.latest("DE")
    assert len(api.calls) == 6


def test_cached_answers_are_served_during_back_off(api: FakeApi, clock: FakeClock) -> None:
    em = provider(api, clock)
    em.latest("FR")
    api.status = 500
    with pytest.raises(ElectricityMapsServerError):
        em.latest("DE")
    assert em.latest("FR").intensity_g_per_kwh == 56.0
    assert len(api.calls) == 2


def test_the_token_never_reaches_logs_messages_or_repr(
    api: FakeApi, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    em = provider(api, clock, timeout_s=0.2, backoff_initial_s=0.0)
    em.latest("FR")
    messages = []
    for status in (401, 404, 500, 429):
        api.status = status
        with pytest.raises(ElectricityMapsError) as caught:
            em.latest("DE")
        messages.append(str(caught.value))
    api.status, api.delay_s = 200, 5.0
    with pytest.raises(ElectricityMapsTimeoutError) as timed_out:
        em.latest("DE")
    messages.append(str(timed_out.value))
    from carbon.accounting.resolve import resolve

    reason = resolve("DE", live=em).intensity.fallback_reason
    assert reason is not None
    messages.append(reason)
    assert caplog.records, "the failures should have been logged"
    assert TOKEN not in caplog.text
    assert all(TOKEN not in message for message in messages)
    assert TOKEN not in repr(em)
    assert "<hidden>" in repr(em)


def test_resolve_prices_with_the_live_figure(api: FakeApi, clock: FakeClock) -> None:
    from carbon.accounting.resolve import resolve

    factor = resolve("FRA", live=provider(api, clock)).intensity
    assert factor.intensity_g_per_kwh == 56.0  # the fake server's figure for FR
    assert factor.fallback is False
    assert "Electricity Maps API" in factor.source
    assert api.calls[-1].zone == "FR"


def test_resolve_falls_back_with_the_reason(api: FakeApi, clock: FakeClock) -> None:
    from carbon.accounting.resolve import resolve

    api.status = 500
    factor = resolve("FR", live=provider(api, clock)).intensity
    assert factor.fallback is True
    assert "HTTP 500" in (factor.fallback_reason or "")
    assert TOKEN not in (factor.fallback_reason or "")
    assert factor.intensity_g_per_kwh == resolve("FR").intensity.intensity_g_per_kwh


def test_a_run_records_the_live_figure(api: FakeApi, clock: FakeClock, tmp_path: Any) -> None:
    import time

    import carbon
    from carbon.settings import load_settings
    from carbon.testing import ConstantPowerSource

    settings = load_settings(
        home=tmp_path,
        region="FR",
        electricitymaps_token=TOKEN,
        electricitymaps_url=api.base_url,
    )
    with carbon.track(settings=settings, sources=[ConstantPowerSource(100.0)]) as run:
        time.sleep(0.1)
    s = run.summary()
    assert s["intensity_g_per_kwh"] == 56.0
    assert "Electricity Maps API" in s["intensity_source"]
    assert s["intensity_fallback"] is False


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"token": ""}, "token is empty"),
        ({"token": "abc\n"}, "line break"),
        ({"base_url": "ftp://example.org"}, "must be http"),
        ({"timeout_s": 0.0}, "timeout_s"),
        ({"cache_ttl_s": -1.0}, "cache_ttl_s"),
        ({"backoff_max_s": float("inf")}, "backoff_max_s"),
    ],
)
def test_bad_settings(kwargs: dict[str, Any], words: str) -> None:
    arguments: dict[str, Any] = {"token": TOKEN, **kwargs}
    token = arguments.pop("token")
    with pytest.raises(ConfigError, match=words) as caught:
        ElectricityMapsProvider(token, **arguments)
    assert TOKEN not in str(caught.value)


def test_empty_zone_is_refused_without_a_call(api: FakeApi, clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="zone must not be empty"):
        provider(api, clock).latest("  ")
    assert api.calls == []
