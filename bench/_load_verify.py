"""What ``bench.load`` checks in the database once the agents are done.

For every agent's run, against what the agent had acknowledged:

- **exactly once**: the run's batch receipts are the acknowledged ``seq`` numbers, no more,
  no fewer; its sample rows are acknowledged batches x devices, none repeated (each device's
  ``offset_s`` once); its work rows are one per acknowledged batch;
- **energy**: the energy of its stored samples equals what the agent sent (per run), each
  device's stored energy equals the agent's last cumulative total, the run's energy their
  sum, and its minutes (``sample_minute``) and energy per hour (``run_energy_hour``) add up
  to its samples; all to float rounding (relative 1e-9: sums in another order);
- **end**: the run is ``completed`` with the agent's step count.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from bench._load_agents import DEVICES, AgentResult

REL_TOL = 1e-9
"""Agreement asked of two sums of the same floats added in another order."""


@dataclass
class Verification:
    """The database checks' outcome.

    Attributes:
        runs_expected: Runs the agents started.
        runs_found: Those runs found in the database.
        batches_acked: Batches the agents had acknowledged.
        receipts: Batch receipts stored for those runs.
        samples_expected: Acknowledged batches x devices.
        samples_stored: Sample rows stored for those runs.
        repeated_samples: Sample rows beyond the first of a ``(device, offset_s)``.
        work_rows_expected: Work rows in acknowledged batches.
        work_rows_stored: Work rows stored.
        exactly_once: Receipts, samples and work rows match, run by run.
        energy_exact: Every energy check holds to :data:`REL_TOL`.
        completed: Every run ended ``completed`` with the agent's steps.
        worst_energy_rel_error: The largest relative difference of any energy check.
        problems: The first mismatches found, for the report.
    """

    runs_expected: int = 0
    runs_found: int = 0
    batches_acked: int = 0
    receipts: int = 0
    samples_expected: int = 0
    samples_stored: int = 0
    repeated_samples: int = 0
    work_rows_expected: int = 0
    work_rows_stored: int = 0
    exactly_once: bool = True
    energy_exact: bool = True
    completed: bool = True
    worst_energy_rel_error: float = 0.0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """For the results file."""
        return asdict(self)


_PER_RUN = {
    "receipts": "SELECT run_id, count(*), min(seq), max(seq) FROM batch_receipt GROUP BY run_id",
    "samples": "SELECT run_id, count(*), sum(energy_j) FROM sample GROUP BY run_id",
    "repeats": (
        "SELECT run_id, sum(n - 1) FROM (SELECT run_id, count(*) AS n FROM sample "
        "GROUP BY run_id, device_id, offset_s HAVING count(*) > 1) AS repeated GROUP BY run_id"
    ),
    "minutes": "SELECT run_id, sum(energy_j) FROM sample_minute GROUP BY run_id",
    "hours": "SELECT run_id, sum(energy_j) FROM run_energy_hour GROUP BY run_id",
    "work": "SELECT run_id, count(*) FROM work GROUP BY run_id",
    "runs": "SELECT id, status, energy_j, steps FROM run",
}


def verify(engine: Engine, agents: list[AgentResult]) -> Verification:
    """Check the store against what the agents had acknowledged (see the module)."""
    found: dict[str, dict[str, tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for name, sql in _PER_RUN.items():
            found[name] = {row[0]: tuple(row[1:]) for row in connection.execute(text(sql))}
        devices: dict[str, list[float]] = {}
        rows = connection.execute(
            text("SELECT run_id, position, energy_j FROM device ORDER BY run_id, position")
        )
        for run_id, _, energy_j in rows:
            devices.setdefault(run_id, []).append(energy_j)
    check = Verification(runs_expected=sum(agent.started for agent in agents))
    for agent in agents:
        if not agent.started:
            continue
        _check_run(check, agent, found, devices.get(agent.run_id, []))
    return check


def _check_run(
    check: Verification,
    agent: AgentResult,
    found: dict[str, dict[str, tuple[Any, ...]]],
    device_energy_j: list[float],
) -> None:
    run_id = agent.run_id
    run = found["runs"].get(run_id)
    if run is None:
        _problem(check, "exactly_once", f"run {run_id} is not stored")
        return
    check.runs_found += 1
    acked = len(agent.acked)
    check.batches_acked += acked
    receipts, first_seq, last_seq = found["receipts"].get(run_id, (0, None, None))
    check.receipts += receipts
    if acked and (
        receipts != acked or first_seq != min(agent.acked) or last_seq != max(agent.acked)
    ):
        _problem(
            check,
            "exactly_once",
            f"run {run_id}: {receipts} receipts (seq {first_seq}-{last_seq}) for {acked} "
            f"acknowledged batches (seq {min(agent.acked)}-{max(agent.acked)})",
        )
    samples, sample_energy_j = found["samples"].get(run_id, (0, 0.0))
    repeated = int(found["repeats"].get(run_id, (0,))[0])
    check.samples_expected += acked * DEVICES
    check.samples_stored += samples
    check.repeated_samples += repeated
    if samples != acked * DEVICES or repeated:
        _problem(
            check,
            "exactly_once",
            f"run {run_id}: {samples} samples ({repeated} repeated) for {acked} batches",
        )
    work = found["work"].get(run_id, (0,))[0]
    check.work_rows_expected += agent.work_rows
    check.work_rows_stored += work
    if work != agent.work_rows:
        _problem(check, "exactly_once", f"run {run_id}: {work} work rows, {agent.work_rows} sent")
    status, run_energy_j, steps = run
    sent_j = math.fsum(agent.sample_energy_j)
    _energy(check, f"run {run_id}: samples' energy", sample_energy_j or 0.0, sent_j)
    minutes_j = found["minutes"].get(run_id, (0.0,))[0]
    _energy(check, f"run {run_id}: minutes' energy", minutes_j or 0.0, sent_j)
    hours_j = found["hours"].get(run_id, (0.0,))[0]
    _energy(check, f"run {run_id}: energy per hour", hours_j or 0.0, sent_j)
    _energy(
        check, f"run {run_id}: run energy", run_energy_j or 0.0, math.fsum(agent.totals_energy_j)
    )
    if len(device_energy_j) != DEVICES:
        _problem(check, "energy_exact", f"run {run_id}: {len(device_energy_j)} devices stored")
    for position, (stored_j, total_j) in enumerate(
        zip(device_energy_j, agent.totals_energy_j, strict=False)
    ):
        _energy(check, f"run {run_id}: device {position}", stored_j, total_j)
    if agent.ended and (status != "completed" or steps != agent.steps):
        _problem(
            check, "completed", f"run {run_id}: {status} with {steps} steps, {agent.steps} sent"
        )
    if not agent.ended:
        check.completed = False


def _energy(check: Verification, what: str, stored_j: float, sent_j: float) -> None:
    error = abs(stored_j - sent_j) / max(abs(sent_j), 1e-300)
    check.worst_energy_rel_error = max(check.worst_energy_rel_error, error)
    if error > REL_TOL:
        _problem(check, "energy_exact", f"{what}: {stored_j!r} J stored, {sent_j!r} J sent")


def _problem(check: Verification, flag: str, message: str) -> None:
    setattr(check, flag, False)
    if len(check.problems) < 20:
        check.problems.append(message)
