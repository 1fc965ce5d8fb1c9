"""The server's Prometheus metrics: energy and CO2e ingested, batches, requests, latency.

Names follow Prometheus' conventions: the ``carbon_`` prefix, base units (joules, grams,
seconds) and ``_total`` on counters. Labels are few and bounded (team, project, device
model, route template, outcome); never a run id or a raw path.

Each application has its own :class:`~prometheus_client.CollectorRegistry`, so several apps
in one process (tests) do not share counts. With ``carbon serve --workers N`` every worker
is a process of its own: ``carbon serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
folder, prometheus-client writes each worker's values there, and ``/metrics`` sums them all
whichever worker answers.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carbon.store.ingest import BatchResult

UNMATCHED_ROUTE = "<unmatched>"
"""The ``route`` label of requests no route matched (404s of unknown paths)."""

BATCH_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
"""Histogram buckets of the time to store a batch, seconds."""


class ServerMetrics:
    """The counters and histogram the server keeps, and their exposition.

    Args:
        multiprocess_dir: The folder prometheus-client's multiprocess mode writes to (set
            by ``carbon serve --workers N``); ``None`` in a single process.
    """

    def __init__(self, *, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        registry = self.registry
        self.energy_j = Counter(
            "carbon_energy_joules_total",
            "Energy of the samples ingested, joules, by device model.",
            ["team", "project", "component", "device_model"],
            registry=registry,
        )
        self.co2e_g = Counter(
            "carbon_co2e_grams_total",
            "Location-based CO2e added to runs by ingested batches, grams.",
            ["team", "project"],
            registry=registry,
        )
        self.batches = Counter(
            "carbon_ingest_batches_total",
            "Sample batches received, by outcome: stored, duplicate (a retry) or rejected.",
            ["outcome"],
            registry=registry,
        )
        self.samples = Counter(
            "carbon_ingest_samples_total",
            "Samples stored (one device over one interval each).",
            registry=registry,
        )
        self.requests = Counter(
            "carbon_http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "carbon_ingest_batch_duration_seconds",
            "Time to store one batch (its database transaction), seconds.",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=registry,
        )
        self.runs_interrupted = Counter(
            "carbon_runs_interrupted_total",
            "Runs marked interrupted because their agent went silent.",
            registry=registry,
        )

    def record_batch(
        self, *, team: str, project: str, result: BatchResult, duration_s: float
    ) -> None:
        """Count a batch that was stored, or recognised as a retry."""
        self.batch_seconds.observe(duration_s)
        if not result.stored:
            self.batches.labels(outcome="duplicate").inc()
            return
        self.batches.labels(outcome="stored").inc()
        self.samples.inc(result.samples)
        for (component, model), energy_j in result.energy_j_by_device.items():
            if energy_j > 0:
                self.energy_j.labels(
                    team=team, project=project, component=component, device_model=model
                ).inc(energy_j)
        added_g = result.co2e_g_added
        if added_g is not None and added_g > 0:
            self.co2e_g.labels(team=team, project=project).inc(added_g)

    def record_rejected_batch(self) -> None:
        """Count a batch the server refused (unknown run, invalid content)."""
        self.batches.labels(outcome="rejected").inc()

    def render(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        combined = CollectorRegistry()
        MultiProcessCollector(combined, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(combined), CONTENT_TYPE_LATEST


class RequestMetrics:
    """ASGI middleware counting answered requests by route template, method and status.

    The template (``/api/v1/runs/{run_id}``) is read from the route the router matched, so
    run ids never become label values.
    """

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on and count its answer (500 when the application raised)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            template = getattr(scope.get("route"), "path", None)
            if not isinstance(template, str):
                template = None
            self.metrics.requests.labels(
                route=template or UNMATCHED_ROUTE, method=scope["method"], status=str(status)
            ).inc()
