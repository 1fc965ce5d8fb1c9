"""The fresh processes of ``bench.peers``: start-up time and peak memory, one tool each.

Run as ``python -m bench._peers_child startup carbon|codecarbon`` or ``python -m
bench._peers_child rss none|carbon|codecarbon SECONDS HOME``; each prints one JSON line.
Nothing but the standard library is imported before the clock starts, so the start-up figure
covers every import the tool needs.

Start-up: carbon's run is started as a user starts one, ``carbon.track(project=...)`` with
its settings from the environment (``CARBON_HOME``, ``CARBON_REGION``: the parent sets
them), on this machine's own sources; CodeCarbon's as ``OfflineEmissionsTracker(...)`` then
``start()``. The first reading is when each tool first reads its sources:

- carbon: ``Sampler.t0``, stamped on the monotonic clock as ``Sampler.start()`` reads every
  source for the run's start edge, inside ``track().__enter__``;
- CodeCarbon: ``_last_measured_time``, stamped on ``perf_counter`` as the first
  ``_measure_power_and_energy()`` (which ``start()`` calls before it returns) ends.

Both clocks are ``CLOCK_MONOTONIC`` on Linux, so both are comparable with the ``perf_counter``
taken before the import.

Peak memory: every child imports carbon, CodeCarbon and the simulated GPUs, then either
sleeps (``none``, the baseline) or tracks 8 simulated GPUs and the machine's CPU and RAM for
``SECONDS`` (carbon at 10 Hz into a SQLite store in ``HOME``; CodeCarbon measuring every
second) and reports its peak resident set, ``VmHWM`` of ``/proc/self/status``. Not
``ru_maxrss``: Linux carries the high-water mark of the memory the process had before
``exec`` into it, and a process forked from the benchmark starts with the benchmark's pages
mapped, so every child would report at least the parent's size.
"""

from __future__ import annotations

import json
import resource
import sys
import time

from bench._peers_offline import COUNTRY_ISO3, NetworkGuard


def startup(tool: str) -> dict[str, float]:
    """Seconds from before the import to the import's end, the first reading, start's return."""
    before_s = time.perf_counter()
    if tool == "carbon":
        import carbon

        imported_s = time.perf_counter()
        tracker = carbon.track(project="bench", name="startup")
        run = tracker.__enter__()
        ready_s = time.perf_counter()
        assert run._sampler is not None
        first_s = run._sampler.t0
        tracker.__exit__(None, None, None)
    else:
        from codecarbon import OfflineEmissionsTracker

        imported_s = time.perf_counter()
        cc = OfflineEmissionsTracker(
            country_iso_code=COUNTRY_ISO3, output_methods=[], output_dir=".", log_level="error"
        )
        cc.start()
        ready_s = time.perf_counter()
        first_s = cc._last_measured_time
        cc.stop()
        if getattr(cc, "final_emissions_data", None) is None:
            raise SystemExit("CodeCarbon did not stop cleanly (its errors are swallowed)")
    return {
        "import_s": imported_s - before_s,
        "first_reading_s": first_s - before_s,
        "start_returned_s": ready_s - before_s,
    }


def _peak_rss_bytes() -> int:
    """This process's peak resident set since its ``exec`` (``VmHWM``)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss(tool: str, seconds: float, home: str) -> dict[str, float]:
    """Peak resident memory (bytes) of a process that tracked with ``tool`` (or not at all)."""
    from pathlib import Path

    import codecarbon  # noqa: F401 - the baseline imports what the trackers import

    import carbon
    from bench._peers_support import codecarbon_on, codecarbon_tracker, peer_nvml
    from carbon.settings import load_settings
    from carbon.sources.detect import detect_sources
    from carbon.sources.nvml import NvmlSource
    from carbon.testing.power_traces import BurstTrace
    from carbon.testing.simulated_gpu import SimulatedGpu

    sim = peer_nvml([SimulatedGpu(trace=BurstTrace(seed=i)) for i in range(8)])
    if tool == "carbon":
        settings = load_settings(home=Path(home), region="FR", sample_hz=10)
        sources = [NvmlSource.open(nvml=sim), *detect_sources()]
        with carbon.track(project="bench", name="rss", settings=settings, sources=sources):
            time.sleep(seconds)
    elif tool == "codecarbon":
        with codecarbon_on(sim):
            cc = codecarbon_tracker(1.0, Path(home))
            cc.start()
            time.sleep(seconds)
            cc.stop()
            if getattr(cc, "final_emissions_data", None) is None:
                raise SystemExit("CodeCarbon did not stop cleanly (its errors are swallowed)")
    else:
        time.sleep(seconds)
    return {
        "peak_rss_bytes": _peak_rss_bytes(),
        "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def main(argv: list[str]) -> int:
    """Run one measurement with the network refused, and print its JSON."""
    with NetworkGuard() as guard:
        if argv[0] == "startup":
            result: dict[str, object] = dict(startup(argv[1]))
        else:
            result = dict(rss(argv[1], float(argv[2]), argv[3]))
    result["network_attempts"] = len(guard.attempts)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
