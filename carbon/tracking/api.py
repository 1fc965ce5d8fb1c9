"""``carbon.track``: the one entry point, as a context manager and as a decorator.

Both forms are built on one :class:`Tracker` holding one :class:`TrackConfig`, so the
decorator takes exactly the arguments of the context manager.
"""

from __future__ import annotations

import functools
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar, Token
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from carbon.sources.base import PowerSource
from carbon.tracking.config import TrackConfig
from carbon.tracking.run import Run
from carbon.tracking.state import RunStatus

if TYPE_CHECKING:
    from carbon.settings import Settings
    from carbon.tracking.sink import Sink

P = ParamSpec("P")
R = TypeVar("R")

_current: ContextVar[Run | None] = ContextVar("carbon_current_run", default=None)


def current_run() -> Run | None:
    """The innermost run active in this thread or task, or ``None`` outside any run."""
    return _current.get()


def _default_name() -> str:
    script = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else ""
    return script if script and script not in ("-c", "-m", "") else "run"


class Tracker:
    """Starts a run on ``__enter__`` (or on each call of a decorated function).

    Args:
        config: What to track; see :class:`TrackConfig`.
    """

    def __init__(self, config: TrackConfig) -> None:
        self.config = config
        self._local = threading.local()

    def _stack(self) -> list[tuple[Run, Token[Run | None]]]:
        stack: list[tuple[Run, Token[Run | None]]] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def __enter__(self) -> Run:
        run = self.start(self.config.name or _default_name())
        self._stack().append((run, _current.set(run)))
        return run

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        run, token = self._stack().pop()
        _current.reset(token)
        status, error = _outcome(exc)
        run._finish(status, error)

    def start(self, name: str) -> Run:
        """Start a run now; the caller must end it with ``run._finish``."""
        from carbon.settings import load_settings
        from carbon.sources.detect import detect_sources

        settings = self.config.settings or load_settings()
        sink = _open_sink(settings)
        sources = (
            list(self.config.sources)
            if self.config.sources is not None
            else detect_sources(settings=settings)
        )
        run = Run(self.config, name, run_id=_job_run_id(settings, self.config.project, name))
        try:
            run._start(settings, sources, sink)
        except BaseException:
            if self.config.sources is None:
                for source in sources:
                    source.close()
            raise
        return run

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Track every call of ``fn`` as its own run, named after the function by default."""
        name = self.config.name or fn.__name__

        @functools.wraps(fn)
        def tracked(*args: P.args, **kwargs: P.kwargs) -> R:
            run = self.start(name)
            token = _current.set(run)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                _current.reset(token)
                run._finish(*_outcome(exc))
                raise
            _current.reset(token)
            run._finish(RunStatus.COMPLETED, None)
            return result

        return tracked


def _open_sink(settings: Settings) -> Sink:
    """The team server's sink when ``CARBON_SERVER_URL`` is set, else the database's."""
    if settings.remote:
        from carbon.remote.sink import HttpSink

        return HttpSink.from_settings(settings)
    from carbon.store import open_store
    from carbon.store.sink import LocalSink

    return LocalSink(open_store(settings.resolved_database_url))


_job_runs: Counter[tuple[str, str, str]] = Counter()
_job_runs_lock = threading.Lock()


def _job_run_id(settings: Settings, project: str, name: str) -> str | None:
    """The run id every rank of a distributed job computes alike, else ``None`` (random).

    Ranks of one job run the same program, so the n-th run of a project and name in each
    rank's process is the same run; the id is derived from the job id and that sequence.
    """
    if not settings.distributed:
        return None
    key = (str(settings.job_id), project, name)
    with _job_runs_lock:
        _job_runs[key] += 1
        sequence = _job_runs[key]
    return uuid.uuid5(uuid.NAMESPACE_URL, f"carbon:{key[0]}:{project}:{name}:{sequence}").hex


def _outcome(exc: BaseException | None) -> tuple[RunStatus, str | None]:
    if exc is None:
        return RunStatus.COMPLETED, None
    if isinstance(exc, SystemExit) and exc.code in (0, None):
        return RunStatus.COMPLETED, None
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, KeyboardInterrupt | GeneratorExit):
        return RunStatus.INTERRUPTED, message
    return RunStatus.FAILED, message


def track(
    project: str = "default",
    name: str | None = None,
    kind: str = "training",
    *,
    compression: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    region: str | None = None,
    pue: float | None = None,
    settings: Settings | None = None,
    sources: Sequence[PowerSource] | None = None,
    simulated: bool = False,
) -> Tracker:
    """Track the energy of a block of code or of every call of a function.

    As a context manager, ``with carbon.track(...) as run:`` measures the block and gives
    the :class:`Run` to count work with ``run.step(...)``. As a decorator,
    ``@carbon.track(...)`` measures each call; inside, :func:`current_run` returns the run.
    An exception ends the run as ``failed`` (Ctrl-C as ``interrupted``) and propagates;
    what was measured until then is stored either way.

    Args:
        project: Project the run belongs to.
        name: Name of the run (default: the function's name, or the script's).
        kind: ``training`` or ``inference``.
        compression: The model's compression settings (``{"precision": "int8"}``).
        tags: Free labels (``{"team": "vision"}``).
        region: ISO country code where the run executes (overrides ``CARBON_REGION``).
        pue: Power usage effectiveness of the facility (overrides ``CARBON_PUE``).
        settings: Settings to use instead of those from the environment.
        sources: Power sources to read instead of the ones detected on this machine.
        simulated: Mark the run as measured on simulated hardware.

    Raises:
        ValueError: An argument is invalid (unknown ``kind``, a PUE below 1, ...).
    """
    return Tracker(
        TrackConfig(
            project=project,
            name=name,
            kind=kind,
            compression=compression or {},
            tags=tags or {},
            region=region,
            pue=pue,
            settings=settings,
            sources=sources,
            simulated=simulated,
        )
    )
