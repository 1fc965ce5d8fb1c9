"""Tracking: runs, the sampler thread and the ``track`` entry point."""

from carbon.tracking.api import Tracker, current_run, track
from carbon.tracking.config import TrackConfig
from carbon.tracking.run import Run
from carbon.tracking.state import RunStatus

__all__ = ["Run", "RunStatus", "TrackConfig", "Tracker", "current_run", "track"]
