"""``carbon serve`` with a CPU profile of every thread of every worker.

``python -m bench._load_profile serve --port P --workers N`` runs the ``carbon serve``
command itself, with ``uvicorn.run`` wrapped so that the application it is given is
profiled: with several workers, the factory each worker imports becomes
:func:`profiled_app` (the same :func:`carbon.server.app.app_from_env`, profiled); with one,
the application object is wrapped in the process. Everything else (keys, the HTTP parser,
limits, logging, the workers' environment) is what ``carbon serve`` does. The worker's event
loop thread and every thread started after it (the pool that runs the routes) are profiled
with ``cProfile`` on each thread's CPU clock; when the worker shuts down it writes the merged
profile to ``$CARBON_BENCH_PROFILE_DIR/worker-<pid>.prof``. Profiling slows the server about
three times: a profiled run's figures say where CPU time goes, not how fast the server is.

:func:`summarize` and :func:`cumulative` read those files back: CPU time by package, the
functions with the most CPU time of their own, and the cumulative time of named functions.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench._load_server import PROFILE_DIR_ENV


class _DumpAtShutdown:
    """The application, calling ``dump`` once its lifespan has shut down.

    Uvicorn ends a worker by raising the signal it caught again once it has shut down, so
    the process dies of it and ``atexit`` never runs: the end of the lifespan is the last
    moment the worker's code runs.
    """

    def __init__(self, app: ASGIApp, dump: Callable[[], None]) -> None:
        self.app = app
        self.dump = dump

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_then_dump(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                self.dump()
            await send(message)

        await self.app(scope, receive, send_then_dump)


def profiled(app: ASGIApp) -> ASGIApp:
    """``app`` with this process's threads profiled until its lifespan shuts down.

    The calling thread (the event loop's) is profiled from now on, and every thread started
    later (the pool that runs the routes) from its start.
    """
    directory = Path(os.environ[PROFILE_DIR_ENV])
    lock = threading.Lock()
    main = cProfile.Profile(time.thread_time)
    profiles = [main]

    def profile_new_thread(frame: FrameType, event: str, arg: Any) -> None:
        # threading calls this at the first event of each new thread: swap in a profiler.
        sys.setprofile(None)
        profile = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(profile)
        profile.enable()

    threading.setprofile(profile_new_thread)
    path = directory / f"worker-{os.getpid()}.prof"
    main.enable()
    return _DumpAtShutdown(app, lambda: _dump(profiles, lock, path))


def profiled_app() -> ASGIApp:
    """What each worker runs: the application of ``carbon serve --workers N``, profiled."""
    from carbon.server.app import app_from_env

    return profiled(app_from_env())


class _Snapshot:
    """A profile's figures so far, taken without stopping it (for ``pstats.Stats``).

    ``Profile.create_stats`` would close the calls still open in the profiled thread (a
    pool thread waiting for work) with the clock of the thread that asks, another thread's
    CPU time: those open calls are left out instead.
    """

    def __init__(self, profile: cProfile.Profile) -> None:
        profile.snapshot_stats()
        self.stats = profile.stats

    def create_stats(self) -> None:
        """Nothing to do: the figures were taken."""

    def own_s(self) -> float:
        """The thread's CPU time: the sum of every function's own time."""
        return float(sum(entry[2] for entry in self.stats.values()))


def _dump(profiles: list[cProfile.Profile], lock: threading.Lock, path: Path) -> None:
    """Merge every thread's profile into one file (called on the event loop's thread)."""
    profiles[0].disable()
    with lock:
        snapshots = [_Snapshot(profile) for profile in profiles]
    threads = {  # before pstats takes the figures (it empties what it reads)
        "event_loop_cpu_s": snapshots[0].own_s(),
        "other_threads_cpu_s": sum(snapshot.own_s() for snapshot in snapshots[1:]),
    }
    stats = pstats.Stats(snapshots[0])  # type: ignore[arg-type]
    for snapshot in snapshots[1:]:
        stats.add(snapshot)  # type: ignore[arg-type]
    stats.dump_stats(str(path))
    path.with_suffix(".json").write_text(json.dumps(threads))


def main() -> None:
    """Run ``carbon ...`` (``serve``) with the application uvicorn is given profiled.

    ``uvicorn.run`` is wrapped, so everything ``carbon serve`` decides (keys, workers,
    parser, limits, logging, the workers' environment) is as it is without the profile.
    """
    import uvicorn

    from carbon.cli import main as carbon_main

    run = uvicorn.run

    def run_profiled(app: Any, **options: Any) -> None:
        if app == "carbon.server.app:app_from_env":  # workers import the factory by name
            app = "bench._load_profile:profiled_app"
        elif not isinstance(app, str):
            app = profiled(app)
        run(app, **options)

    uvicorn.run = run_profiled
    carbon_main()


_PACKAGE = re.compile(r"site-packages/([A-Za-z0-9_]+)")
_STDLIB = re.compile(r"/lib/python3\.\d+/([A-Za-z0-9_]+)")


def _package(filename: str, name: str) -> str:
    """Who a profiled function belongs to: a package, ``carbon``, the standard library or C."""
    if filename == "~":  # a built-in: attribute C methods to their type's module where named
        for known in ("psycopg", "pydantic", "httptools", "uvloop", "orjson", "json"):
            if known in name:
                return f"{known} (C)"
        return "built-ins (C)"
    found = _PACKAGE.search(filename)
    if found:
        return found.group(1)
    if "/carbon/" in filename:
        return "carbon"
    found = _STDLIB.search(filename)
    if found:
        return f"stdlib: {found.group(1)}"
    return "other"


def summarize(directory: Path, *, top: int = 25) -> dict[str, Any]:
    """The merged profiles of a profiled run: CPU by package, and the top functions.

    Returns:
        ``total_cpu_s`` (split into the event loop's thread and the others),
        ``by_package`` (seconds of own CPU time, largest first) and ``top_functions`` (own
        and cumulative seconds, calls), for the results and the table.
    """
    files = sorted(directory.glob("worker-*.prof"))
    if not files:
        return {"workers": 0}
    stats = pstats.Stats(str(files[0]))
    for path in files[1:]:
        stats.add(str(path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    by_package: dict[str, float] = {}
    rows = []
    total_s = 0.0
    for (filename, line, name), (_, calls, own_s, cumulative_s, _) in raw.items():
        total_s += own_s
        package = _package(filename, name)
        by_package[package] = by_package.get(package, 0.0) + own_s
        where = name if filename == "~" else f"{_short(filename)}:{line}({name})"
        rows.append((own_s, cumulative_s, calls, where))
    rows.sort(reverse=True)
    threads = [json.loads(path.with_suffix(".json").read_text()) for path in files]
    return {
        "workers": len(files),
        "total_cpu_s": round(total_s, 3),
        "event_loop_cpu_s": round(sum(t["event_loop_cpu_s"] for t in threads), 3),
        "other_threads_cpu_s": round(sum(t["other_threads_cpu_s"] for t in threads), 3),
        "by_package": {
            k: round(v, 3) for k, v in sorted(by_package.items(), key=lambda kv: -kv[1])
        },
        "top_functions": [
            {"function": where, "own_s": round(own, 3), "cumulative_s": round(cum, 3), "calls": n}
            for own, cum, n, where in rows[:top]
        ],
    }


def cumulative(directory: Path, phases: dict[str, tuple[str, str]]) -> dict[str, float]:
    """Cumulative CPU seconds of named functions, each ``(part of its file, its name)``.

    The largest match counts (one function, not a sum over several that match).
    """
    files = sorted(directory.glob("worker-*.prof"))
    if not files:
        return {}
    stats = pstats.Stats(str(files[0]))
    for path in files[1:]:
        stats.add(str(path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    found: dict[str, float] = {}
    for label, (file_part, function) in phases.items():
        matches = [
            cumulative_s
            for (filename, _, name), (_, _, _, cumulative_s, _) in raw.items()
            if name == function and file_part in filename
        ]
        found[label] = round(max(matches, default=0.0), 3)
    return found


_ROOT = f"{Path(__file__).resolve().parent.parent}/"


def _short(filename: str) -> str:
    """A path from its package on: ``sqlalchemy/engine/base.py``."""
    for marker in ("site-packages/", _ROOT):
        if marker in filename:
            return filename.split(marker, 1)[1]
    found = _STDLIB.search(filename)
    return filename[found.start() + 1 :] if found else filename


if __name__ == "__main__":
    main()
