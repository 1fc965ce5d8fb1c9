"""carbon: energy and carbon accounting for machine learning training and inference.

Wrap a training loop or an inference function and get, per run, the joules it used, the
work it did and the CO2e of that energy where it ran::

    import carbon

    with carbon.track(project="digits", kind="training") as run:
        for batch in loader:
            ...
            run.step(samples=len(batch))
    print(run.summary()["energy_j"])
"""

from carbon._version import __version__
from carbon.errors import (
    CarbonError,
    ConfigError,
    RunNotFound,
    RunStateError,
    SourceError,
    SourceUnavailable,
    StoreError,
)
from carbon.tracking import Run, RunStatus, current_run, track
from carbon.tracking.delta import Delta

__all__ = [
    "CarbonError",
    "ConfigError",
    "Delta",
    "Run",
    "RunNotFound",
    "RunStateError",
    "RunStatus",
    "SourceError",
    "SourceUnavailable",
    "StoreError",
    "__version__",
    "current_run",
    "track",
]
