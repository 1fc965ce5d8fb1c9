"""A metric logger for tests: it keeps what the integrations hand it."""

from __future__ import annotations

from collections.abc import Mapping


class RecordingLogger:
    """A :class:`carbon.integrations.loggers.MetricLogger` that keeps every call."""

    name = "recorder"

    def __init__(self) -> None:
        self.steps: list[tuple[int, dict[str, float]]] = []
        self.totals: list[tuple[dict[str, float], str, str | None]] = []

    def log_step(self, metrics: Mapping[str, float], step: int) -> None:
        """Keep one step's figures."""
        self.steps.append((step, dict(metrics)))

    def log_totals(
        self, metrics: Mapping[str, float], carbon_run_id: str, link: str | None
    ) -> None:
        """Keep the run's totals, id and link."""
        self.totals.append((dict(metrics), carbon_run_id, link))
