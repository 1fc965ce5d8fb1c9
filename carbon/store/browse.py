"""Finding runs by what a person filters on, and the choices each filter offers.

Filters: project, kind, status, hardware, region, time, compression and tags.

The dashboard's Runs page and reports read runs through :func:`find_runs`. Columns of the
``run`` table are filtered in SQL; compression and tags are free-form JSON that PostgreSQL
and SQLite query differently, so those two are matched in Python on the rows SQL kept,
which is why a search reads at most :data:`MAX_SCANNED` runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from carbon.accounting.compression import compression_label
from carbon.errors import ConfigError
from carbon.store.models import Device, Project, Run
from carbon.store.queries import runs_query

MAX_SCANNED = 20_000
"""Most runs one search reads from the database before matching compression and tags."""


@dataclass(frozen=True, slots=True)
class RunFilter:
    """What to show; every field left ``None`` (or empty) means "any".

    Attributes:
        project: Runs of this project.
        kind: ``training`` or ``inference``.
        status: ``running``, ``completed``, ``failed`` or ``interrupted``.
        hardware: Runs with a device of exactly this model name (GPU, CPU or RAM).
        region: Runs priced in this region (as stored: ``FRA``, ``gcp:europe-west1``).
        compression: Runs whose compression label (see
            :func:`carbon.accounting.compression.compression_label`) is this one.
        tags: Runs carrying every one of these tags with these values.
        since: Runs started at or after this time.
        until: Runs started before this time.
    """

    project: str | None = None
    kind: str | None = None
    status: str | None = None
    hardware: str | None = None
    region: str | None = None
    compression: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ConfigError(f"{name}={value.isoformat()} has no time zone; give UTC")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ConfigError(
                f"since={self.since.isoformat()} is not before until={self.until.isoformat()}"
            )


def find_runs(
    session: Session,
    run_filter: RunFilter,
    *,
    team_id: int | None = None,
    limit: int | None = 1000,
) -> list[Run]:
    """Runs matching ``run_filter``, newest first, with project and devices loaded.

    Args:
        session: An open session.
        run_filter: What to match.
        team_id: Only this team's runs; ``None`` for every team's (the local CLI).
        limit: At most this many runs; ``None`` for all.
    """
    query = runs_query(team_id).order_by(Run.started_at.desc(), Run.id)
    f = run_filter
    if f.project is not None:
        query = query.join(Run.project).where(Project.name == f.project)
    for column, value in ((Run.kind, f.kind), (Run.status, f.status), (Run.region, f.region)):
        if value is not None:
            query = query.where(column == value)
    if f.since is not None:
        query = query.where(Run.started_at >= f.since)
    if f.until is not None:
        query = query.where(Run.started_at < f.until)
    if f.hardware is not None:
        query = query.where(exists().where(Device.run_id == Run.id, Device.name == f.hardware))
    if f.compression is None and not f.tags:
        return list(session.scalars(query.limit(limit)))
    found: list[Run] = []
    for run in session.scalars(query.limit(MAX_SCANNED)):
        if _matches_json(run, f):
            found.append(run)
            if limit is not None and len(found) >= limit:
                break
    return found


def _matches_json(run: Run, f: RunFilter) -> bool:
    if f.compression is not None and compression_label(run.compression) != f.compression:
        return False
    return all(str(run.tags.get(key)) == value for key, value in f.tags.items())


def filter_choices(session: Session, *, team_id: int | None = None) -> dict[str, list[str]]:
    """The values each filter can take among the team's runs, sorted, for drop-downs.

    Returns:
        ``project``, ``kind``, ``status``, ``region``, ``hardware`` (device models),
        ``compression`` (labels) and ``tags`` (``key=value`` pairs).
    """
    team = (Run.team_id == team_id,) if team_id is not None else ()

    def distinct(column: Any) -> list[str]:
        rows = session.scalars(select(column).where(*team, column.is_not(None)).distinct())
        return sorted(str(value) for value in rows)

    projects = session.scalars(
        select(Project.name).join(Run, Run.project_id == Project.id).where(*team).distinct()
    )
    hardware = session.scalars(
        select(Device.name).join(Run, Run.id == Device.run_id).where(*team).distinct()
    )
    labels: set[str] = set()
    tags: set[str] = set()
    for compression, run_tags in session.execute(
        select(Run.compression, Run.tags).where(*team).limit(MAX_SCANNED)
    ):
        labels.add(compression_label(compression))
        tags.update(f"{key}={value}" for key, value in run_tags.items())
    return {
        "project": sorted(projects),
        "kind": distinct(Run.kind),
        "status": distinct(Run.status),
        "region": distinct(Run.region),
        "hardware": sorted(hardware),
        "compression": sorted(labels),
        "tags": sorted(tags),
    }


def hardware_label(run: Run) -> str:
    """The run's hardware in a few words: its GPUs (``2 × NVIDIA H100 …``), else its CPU."""
    gpus = [device.name for device in run.devices if device.component == "gpu"]
    if gpus:
        names = sorted(set(gpus))
        return ", ".join(f"{gpus.count(name)} × {name}" for name in names)
    cpus = sorted({device.name for device in run.devices if device.component == "cpu"})
    return ", ".join(cpus) if cpus else "unknown"


def energy_provenance(run: Run) -> str | None:
    """How the run's energy was obtained overall: one provenance, or ``mixed``.

    Devices that drew no energy do not count; ``None`` when no device has energy.
    """
    kinds = {device.provenance for device in run.devices if device.energy_j}
    if not kinds:
        return None
    return kinds.pop() if len(kinds) == 1 else "mixed"
