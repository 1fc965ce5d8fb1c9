"""Errors raised by carbon.

Every error the package raises on purpose derives from :class:`CarbonError`, so a caller
can catch them all at once; vendor errors (NVML, SQLAlchemy, the OS) are translated where
they enter the package.

Hierarchy::

    CarbonError
    ├── ConfigError          a setting or argument has a value carbon cannot use
    ├── SourceError          a power source could not be opened or read
    │   └── SourceUnavailable   the hardware or interface is not there at all
    ├── StoreError           the database could not be opened, migrated or written
    │   ├── RunNotFound      no run matches the id that was asked for
    │   └── RunConflict      a record does not fit the run it names (another team's id)
    └── RunStateError        a run was asked to do something its state forbids

Argument checks on public calls (a negative step count, an unknown run kind, a NaN
metric) raise :class:`ValueError`, as Python code expects; :class:`ConfigError` derives
from it too, so a bad setting is also a ``ValueError``.
"""

from __future__ import annotations


class CarbonError(Exception):
    """Base class of every error carbon raises on purpose."""


class ConfigError(CarbonError, ValueError):
    """A setting or argument has a value carbon cannot use."""


class SourceError(CarbonError):
    """A power source could not be opened or read."""


class SourceUnavailable(SourceError):  # noqa: N818 - reads as a state, like FileNotFoundError
    """The hardware or the interface a source needs is not present."""


class StoreError(CarbonError):
    """The database could not be opened, migrated or written."""


class RunNotFound(StoreError):  # noqa: N818
    """No run matches the requested id."""


class RunConflict(StoreError):  # noqa: N818
    """A record names a run it cannot belong to (an id another team or project uses)."""


class RunStateError(CarbonError):
    """A run was asked for a transition its current state does not allow."""
