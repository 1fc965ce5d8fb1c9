"""Helpers of the API tests: valid wire records, teams and keys, a test client, row counts."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from carbon import wire
from carbon.server.app import create_app
from carbon.settings import load_settings
from carbon.store import open_store
from carbon.store.models import (
    BatchReceipt,
    Device,
    Project,
    Run,
    RunEnergyHour,
    RunRank,
    Sample,
    Window,
    Work,
)
from carbon.store.teams import create_key, create_team, get_team, revoke_key

with warnings.catch_warnings():
    # Starlette asks for the `httpx2` package; the installed httpx works the same here.
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

INTENSITY_G_PER_KWH = 50.0
PUE = 1.2
GPU_MODEL = "NVIDIA A100-SXM4-40GB"
CPU_MODEL = "AMD EPYC 7763"
COUNTED_TABLES = (Project, Run, RunRank, Device, Sample, Work, Window, RunEnergyHour, BatchReceipt)


def new_run_id() -> str:
    return uuid.uuid4().hex


def run_start(
    run_id: str | None = None,
    *,
    project: str = "bert",
    name: str = "fine-tune",
    rank: int = 0,
    world_size: int = 1,
    started_at: datetime | None = None,
    region: str | None = "FR",
) -> wire.RunStart:
    """A start record with two GPUs and a CPU (positions 0, 1, 2), priced at 50 g/kWh."""
    devices = [
        wire.DeviceSpec(
            position=position,
            component="gpu",
            name=GPU_MODEL,
            method="nvml_energy",
            provenance="measured",
            detail="test GPU",
            index=position,
        )
        for position in range(2)
    ]
    devices.append(
        wire.DeviceSpec(
            position=2,
            component="cpu",
            name=CPU_MODEL,
            method="rapl",
            provenance="measured",
            detail="test CPU",
        )
    )
    intensity = (
        wire.IntensityInfo(intensity_g_per_kwh=INTENSITY_G_PER_KWH, source="test", zone=region)
        if region
        else None
    )
    return wire.RunStart(
        id=run_id or new_run_id(),
        project=project,
        name=name,
        kind="training",
        started_at=started_at or datetime.now(UTC),
        host="node-1",
        region=region,
        pue=PUE,
        intensity=intensity,
        sample_hz=10,
        carbon_version="test",
        rank=rank,
        world_size=world_size,
        devices=devices,
    )


POWER_W = (300.0, 250.0, 40.0)
"""Constant power of the devices of :func:`run_start`, watts."""


def batch(
    run_id: str, seq: int, *, seconds: int = 5, first_s: int = 0, rank: int = 0
) -> wire.Batch:
    """``seconds`` one-second samples of each device, from ``first_s``, at :data:`POWER_W`."""
    devices, ends, energies = [], [], []
    for position, power_w in enumerate(POWER_W):
        for k in range(seconds):
            devices.append(position)
            ends.append(float(first_s + k + 1))
            energies.append(power_w)
    duration_s = float(first_s + seconds)
    return wire.Batch(
        run_id=run_id,
        rank=rank,
        seq=seq,
        sample_device=devices,
        sample_offset_s=ends,
        sample_interval_s=[1.0] * len(devices),
        sample_energy_j=energies,
        sample_utilization=[None] * len(devices),
        work_offset_s=[duration_s],
        work_interval_s=[float(seconds)],
        work_steps=[seconds],
        work_samples=[8 * seconds],
        work_tokens=[0],
        work_flops=[0.0],
        totals=wire.Totals(
            duration_s=duration_s,
            device_energy_j=[power_w * duration_s for power_w in POWER_W],
            steps=int(duration_s),
            samples=8 * int(duration_s),
        ),
    )


def batch_energy_j(sent: wire.Batch) -> float:
    """The energy of a batch's samples, joules."""
    return sum(sent.sample_energy_j)


def run_end(run_id: str, *, rank: int = 0, status: wire.FinalStatus = "completed") -> wire.RunEnd:
    return wire.RunEnd(run_id=run_id, rank=rank, status=status, ended_at=datetime.now(UTC))


def body(record: wire.BaseModel) -> dict[str, Any]:
    """A record as the agent sends it (JSON-ready)."""
    return record.model_dump(mode="json")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_key(store_url: str, team: str, role: str, *, revoked: bool = False) -> str:
    """A key of ``team`` (made if new) with ``role``; revoked at once when asked."""
    with open_store(store_url).session() as session:
        try:
            found = get_team(session, team)
        except ValueError:
            found = create_team(session, team)
        row, key = create_key(session, found, f"{role} key", role)
        if revoked:
            revoke_key(session, found, str(row.id))
    return key


@contextmanager
def api(
    store_url: str, tmp_path: Path, *, require_auth: bool = True, **settings: Any
) -> Iterator[TestClient]:
    """A test client of a server on the store (lifespan run: schema checked, upkeep on)."""
    app = create_app(
        load_settings(home=tmp_path / "server", database_url=store_url, **settings),
        require_auth=require_auth,
    )
    with TestClient(app) as client:
        yield client


def row_counts(store_url: str) -> dict[str, int]:
    """How many rows each table of runs holds."""
    with open_store(store_url).session() as session:
        return {
            str(model.__tablename__): int(
                session.scalar(select(func.count()).select_from(model)) or 0
            )
            for model in COUNTED_TABLES
        }


def team_energy_j(store_url: str, team: str) -> float:
    """Total energy of a team's runs as stored, joules."""
    with open_store(store_url).session() as session:
        team_id = get_team(session, team).id
        total = session.scalar(select(func.sum(Run.energy_j)).where(Run.team_id == team_id))
    return float(total or 0.0)
