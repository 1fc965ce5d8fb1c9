"""The lifecycle of a run as an explicit state machine."""

from __future__ import annotations

from enum import StrEnum

from carbon.errors import RunStateError


class RunStatus(StrEnum):
    """Where a run is in its life; only ``RUNNING`` may change."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    @property
    def is_final(self) -> bool:
        """Whether the run has ended."""
        return self is not RunStatus.RUNNING

    def to(self, new: RunStatus) -> RunStatus:
        """Check the move from this state to ``new`` and return ``new``.

        Raises:
            RunStateError: The run has already ended, or ``new`` is not an ending.
        """
        if self.is_final:
            raise RunStateError(
                f"the run has already ended as {self.value}; it cannot become {new}"
            )
        if not new.is_final:
            raise RunStateError(f"a running run can only end, not become {new}")
        return new
