"""``GET /api/v1/hardware``: the device models the team's runs ran on, and their energy."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from carbon.server.deps import ReadCallerDep, SessionDep
from carbon.server.routes._common import API_PREFIX, READ_ERRORS
from carbon.store.queries import hardware_totals

router = APIRouter(prefix=f"{API_PREFIX}/hardware", tags=["hardware"], responses=READ_ERRORS)


class HardwareTotals(BaseModel):
    """A device model and what the team's runs drew on it.

    Attributes:
        component: ``gpu``, ``cpu`` or ``ram``.
        name: The model as the device reported it (``NVIDIA H100 80GB HBM3``).
        runs: How many runs used at least one such device.
        energy_j: Energy those devices drew, joules.
    """

    component: Literal["gpu", "cpu", "ram"]
    name: str
    runs: int
    energy_j: float | None


@router.get("")
def get_hardware(caller: ReadCallerDep, session: SessionDep) -> list[HardwareTotals]:
    """Device models by component, most energy first."""
    return [
        HardwareTotals.model_validate(row)
        for row in hardware_totals(session, team_id=caller.team_id)
    ]
