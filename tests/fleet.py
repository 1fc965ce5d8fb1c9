"""Runs with known figures, written through the store's real write path.

For query and dashboard tests.

Every device draws a constant power, so a run's energy is power x duration exactly, and a
test compares what a page or query shows with that product, not with the code under test.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from carbon import wire
from carbon.store import Store
from carbon.store.context import start_run
from carbon.store.ingest import write_batch
from carbon.store.lifecycle import finish_run
from carbon.store.models import DEFAULT_TEAM_ID

H100 = "NVIDIA H100 80GB HBM3"
CPU = "AMD EPYC 7763 64-Core Processor"
BASE_TIME = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class RunSpec:
    """What to write; devices are ``(component, name, power_w, provenance)``."""

    project: str = "bert"
    name: str = "fine-tune"
    kind: str = "training"
    started_at: datetime = BASE_TIME
    seconds: int = 20
    devices: Sequence[tuple[str, str, float, str]] = (
        ("gpu", H100, 300.0, "measured"),
        ("cpu", CPU, 50.0, "estimated"),
    )
    region: str | None = None
    intensity_g_per_kwh: float | None = None
    compression: Mapping[str, Any] = field(default_factory=lambda: {"precision": "bf16"})
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    samples: int | None = None
    flops: float | None = None
    precision: str | None = None
    status: wire.FinalStatus | None = "completed"
    team_id: int = DEFAULT_TEAM_ID

    @property
    def energy_j(self) -> float:
        """The run's exact energy: each device's power x the duration."""
        return sum(power_w for _, _, power_w, _ in self.devices) * self.seconds


def write_run(store: Store, spec: RunSpec) -> str:
    """Write ``spec`` as one batch per 10 seconds, end it, and return the run's id."""
    run_id = uuid.uuid4().hex
    intensity = (
        wire.IntensityInfo(
            intensity_g_per_kwh=spec.intensity_g_per_kwh, source="test factor", zone=spec.region
        )
        if spec.intensity_g_per_kwh is not None and spec.region is not None
        else None
    )
    start = wire.RunStart(
        id=run_id,
        project=spec.project,
        name=spec.name,
        kind=spec.kind,  # type: ignore[arg-type]
        started_at=spec.started_at,
        host="node-1",
        region=spec.region,
        pue=1.0,
        intensity=intensity,
        sample_hz=10,
        carbon_version="test",
        compression=dict(spec.compression),
        tags=dict(spec.tags),
        devices=[
            wire.DeviceSpec(
                position=position,
                component=component,
                name=name,
                method="nvml_energy" if component == "gpu" else "tdp_estimate",
                provenance=provenance,
                detail=f"test {component}",
                index=position if component == "gpu" else None,
            )
            for position, (component, name, _, provenance) in enumerate(spec.devices)
        ],
    )
    with store.session() as session:
        context = start_run(session, start, team_id=spec.team_id)
    assert context is not None
    for seq, first_s in enumerate(range(0, spec.seconds, 10)):
        count = min(10, spec.seconds - first_s)
        end_s = float(first_s + count)
        devices, offsets, energies, utilization = [], [], [], []
        for position, (_, _, power_w, _) in enumerate(spec.devices):
            for k in range(count):
                devices.append(position)
                offsets.append(float(first_s + k + 1))
                energies.append(power_w)
                utilization.append(0.5)
        share = end_s / spec.seconds
        batch = wire.Batch(
            run_id=run_id,
            rank=0,
            seq=seq,
            sample_device=devices,
            sample_offset_s=offsets,
            sample_interval_s=[1.0] * len(devices),
            sample_energy_j=energies,
            sample_utilization=utilization,
            work_offset_s=[end_s],
            work_interval_s=[float(count)],
            work_steps=[count],
            work_samples=[0],
            work_tokens=[0],
            work_flops=[0.0],
            totals=wire.Totals(
                duration_s=end_s,
                device_energy_j=[power_w * end_s for _, _, power_w, _ in spec.devices],
                steps=int(end_s),
                samples=round(spec.samples * share) if spec.samples is not None else None,
                flops=spec.flops * share if spec.flops is not None else None,
                flops_method="analytic" if spec.flops is not None else None,
                precision=spec.precision,
                metrics=dict(spec.metrics),
            ),
        )
        with store.transaction() as connection:
            write_batch(connection, context, batch)
    if spec.status is not None:
        end = wire.RunEnd(
            run_id=run_id,
            rank=0,
            status=spec.status,
            ended_at=spec.started_at + timedelta(seconds=spec.seconds),
        )
        with store.session() as session:
            finish_run(session, end, team_id=spec.team_id)
    return run_id
