"""The routers of the server, one per resource; :data:`API_ROUTERS` are under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from carbon.server.routes import (
    compare,
    hardware,
    health,
    ingest,
    metrics,
    projects,
    regions,
    reports,
    runs,
    team,
)
from carbon.server.routes._common import API_PREFIX

__all__ = ["API_PREFIX", "API_ROUTERS", "OPEN_ROUTERS"]

API_ROUTERS: tuple[APIRouter, ...] = (
    ingest.router,
    runs.router,
    compare.router,
    projects.router,
    team.router,
    hardware.router,
    regions.router,
    reports.router,
)
"""The routers under ``/api/v1`` (these need a key, except in local mode)."""

OPEN_ROUTERS: tuple[APIRouter, ...] = (health.router, metrics.router)
"""The routers at the root: health (open) and metrics (behind its own token, if set)."""
