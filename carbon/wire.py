"""The records an agent sends to a store, defined once.

The local sink writes them to SQL; a remote sink sends them as JSON to the team server, which
validates them with the same models. Sample batches are columnar (one list per field) and
carry a per-run sequence number, so a retried batch can be recognised.

Times inside a run are offsets in seconds from the run's start, measured on the monotonic
clock; wall-clock time appears once, as ``started_at``, so a clock jump during a run moves
no interval.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, FiniteFloat, model_validator

RunKind = Literal["training", "inference"]
FinalStatus = Literal["completed", "failed", "interrupted"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

MAX_BATCH_ROWS = 100_000
"""Most samples (or work rows) one batch may carry."""


class DeviceSpec(BaseModel):
    """A device as measured in one run; ``position`` orders devices within the run."""

    model_config = _FROZEN

    position: int = Field(ge=0)
    component: Literal["gpu", "cpu", "ram"]
    name: str
    method: str
    provenance: Literal["measured", "integrated", "estimated"]
    detail: str
    index: int | None = None
    uuid: str | None = None
    power_limit_w: float | None = Field(default=None, ge=0)
    memory_bytes: int | None = Field(default=None, ge=0)


class IntensityInfo(BaseModel):
    """The grid carbon intensity a run's CO2e is computed with, and where it came from."""

    model_config = _FROZEN

    intensity_g_per_kwh: float = Field(ge=0, allow_inf_nan=False)
    source: str
    zone: str
    year: int | None = None
    factor_type: str | None = None
    fallback: bool = False
    fallback_reason: str | None = None


class RunStart(BaseModel):
    """Everything known when a run starts."""

    model_config = _FROZEN

    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    project: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    kind: RunKind
    started_at: AwareDatetime
    host: str
    region: str | None
    pue: float = Field(ge=1.0, allow_inf_nan=False)
    pue_source: str | None = None
    intensity: IntensityInfo | None
    sample_hz: float = Field(gt=0, allow_inf_nan=False)
    carbon_version: str
    simulated: bool = False
    rank: int = Field(default=0, ge=0)
    world_size: int = Field(default=1, ge=1)
    job_id: str | None = Field(default=None, max_length=128)
    hardware: dict[str, Any] = Field(default_factory=dict)
    compression: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    devices: list[DeviceSpec]


class Totals(BaseModel):
    """Cumulative figures of a run so far; each batch carries the latest ones."""

    model_config = _FROZEN

    duration_s: float = Field(ge=0, allow_inf_nan=False)
    device_energy_j: list[float]
    steps: int = Field(ge=0)
    samples: int | None = Field(default=None, ge=0)
    tokens: int | None = Field(default=None, ge=0)
    flops: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    flops_method: str | None = None
    precision: str | None = None
    metrics: dict[str, FiniteFloat] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _finite_energy(self) -> Self:
        for value in self.device_energy_j:
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"device_energy_j holds {value!r}; energy must be finite and >= 0")
        return self


class WindowRecord(BaseModel):
    """A closed measurement window (``with run.measure(name)``) and its figures."""

    model_config = _FROZEN

    name: str = Field(min_length=1, max_length=200)
    start_s: float = Field(ge=0, allow_inf_nan=False)
    duration_s: float = Field(ge=0, allow_inf_nan=False)
    energy_j: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    energy_gpu_j: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    energy_cpu_j: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    energy_ram_j: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    steps: int = Field(ge=0)
    samples: int | None = Field(default=None, ge=0)
    tokens: int | None = Field(default=None, ge=0)
    flops: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class Batch(BaseModel):
    """Samples and work deltas of a run since the previous batch, column by column.

    ``sample_offset_s`` is the end of each sample's interval, in seconds from the run's
    start; a device's samples come in time order and end no later than the run's
    ``totals.duration_s``.
    """

    model_config = _FROZEN

    run_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    rank: int = Field(default=0, ge=0)
    seq: int = Field(ge=0, le=2**31 - 1)
    sample_device: list[int] = Field(default_factory=list, max_length=MAX_BATCH_ROWS)
    sample_offset_s: list[FiniteFloat] = Field(default_factory=list)
    sample_interval_s: list[FiniteFloat] = Field(default_factory=list)
    sample_energy_j: list[FiniteFloat] = Field(default_factory=list)
    sample_utilization: list[FiniteFloat | None] = Field(default_factory=list)
    work_offset_s: list[FiniteFloat] = Field(default_factory=list, max_length=MAX_BATCH_ROWS)
    work_interval_s: list[FiniteFloat] = Field(default_factory=list)
    work_steps: list[int] = Field(default_factory=list)
    work_samples: list[int] = Field(default_factory=list)
    work_tokens: list[int] = Field(default_factory=list)
    work_flops: list[FiniteFloat] = Field(default_factory=list)
    windows: list[WindowRecord] = Field(default_factory=list, max_length=10_000)
    totals: Totals
    failed_devices: dict[int, str] = Field(default_factory=dict)
    failed_at_s: dict[int, FiniteFloat] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _columns_agree(self) -> Self:
        sample_cols = (
            self.sample_offset_s,
            self.sample_interval_s,
            self.sample_energy_j,
            self.sample_utilization,
        )
        if any(len(col) != len(self.sample_device) for col in sample_cols):
            raise ValueError("sample columns differ in length")
        work_cols = (
            self.work_interval_s,
            self.work_steps,
            self.work_samples,
            self.work_tokens,
            self.work_flops,
        )
        if any(len(col) != len(self.work_offset_s) for col in work_cols):
            raise ValueError("work columns differ in length")
        for value in self.sample_energy_j:
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"sample_energy_j holds {value!r}; energy must be finite and >= 0")
        for value in self.sample_interval_s:
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"sample_interval_s holds {value!r}; intervals must be > 0")
        slack_s = 1e-6 * max(1.0, self.totals.duration_s)
        last_end_s: dict[int, float] = {}
        for device, end_s, interval_s in zip(
            self.sample_device, self.sample_offset_s, self.sample_interval_s, strict=True
        ):
            if device < 0:
                raise ValueError(f"sample_device holds {device}; positions are >= 0")
            if end_s - interval_s < -slack_s or end_s > self.totals.duration_s + slack_s:
                raise ValueError(
                    f"sample_offset_s holds {end_s!r}: outside the run so far "
                    f"(0 to totals.duration_s = {self.totals.duration_s!r} s)"
                )
            if end_s - interval_s < last_end_s.get(device, -math.inf) - slack_s:
                raise ValueError(
                    f"sample_offset_s: device {device}'s samples are out of time order "
                    f"({end_s!r} s after {last_end_s[device]!r} s)"
                )
            last_end_s[device] = end_s
        for value in (*self.work_steps, *self.work_samples, *self.work_tokens, *self.work_flops):
            if value < 0:
                raise ValueError(f"work counters hold {value}; counts are >= 0")
        return self


class RunEnd(BaseModel):
    """How a run ended."""

    model_config = _FROZEN

    run_id: str
    rank: int = Field(default=0, ge=0)
    status: FinalStatus
    ended_at: AwareDatetime
    error: str | None = None


class Heartbeat(BaseModel):
    """A sign of life from an agent whose run has nothing else to send yet."""

    model_config = _FROZEN

    rank: int = Field(default=0, ge=0)


class StartAck(BaseModel):
    """The server's answer to a :class:`RunStart`: ``created`` is false for a repeat."""

    model_config = _FROZEN

    run_id: str
    rank: int
    created: bool


class BatchAck(BaseModel):
    """The server's answer to a :class:`Batch`: ``stored`` is false when it already had it."""

    model_config = _FROZEN

    run_id: str
    rank: int
    seq: int
    stored: bool


class RunStatusAck(BaseModel):
    """The server's answer to a :class:`RunEnd` or a :class:`Heartbeat`: the run's status."""

    model_config = _FROZEN

    run_id: str
    status: str
