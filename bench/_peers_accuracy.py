"""Accuracy of GPU energy on known traces: carbon and CodeCarbon reading the same devices.

For each trace one simulated GPU serves both tools at once, in one process: a carbon run
(the GPU alone as its source, so its energy is the GPU's) and, inside it, a CodeCarbon
tracker at its default ``measure_power_secs`` (15 s). While both run, windows of three
lengths are measured, each first by carbon (``run.measure``), then, right after, by a second
CodeCarbon tracker used only for tasks (``start_task`` / ``stop_task``, its way to measure
part of a run; a separate tracker, since a task re-reads the counters of the tracker that
runs it). CodeCarbon's readings are taken a random part of a counter period after carbon's
(see :func:`_unalign`), as they would fall in real use.

Each figure is compared with the trace's exact integral over the window the tool itself
measured, on the shared monotonic clock:

- carbon's run: ``Sampler.t0`` to ``t0 + duration_s`` (both stored with the run); a
  window: ``t0 + start_s`` to that plus ``duration_s`` (``run.measure``'s result);
- CodeCarbon's run and tasks: ``_start_time`` (stamped just before ``start()`` or
  ``start_task()`` reads the counters) to ``_last_measured_time`` (stamped just after the
  last reading in ``stop()`` or ``stop_task()``). Its reported ``duration`` runs on to
  when the emissions are computed after that reading (about 60 ms later on the first run
  of a process), so it is not used: it would charge CodeCarbon for time it did not claim.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import carbon
from bench._peers_support import J_PER_KWH, codecarbon_on, codecarbon_tracker, peer_nvml
from carbon.settings import Settings
from carbon.sources.nvml import NvmlSource
from carbon.testing.power_traces import BurstTrace, ConstantTrace, PowerTrace
from carbon.testing.simulated_gpu import SimulatedGpu, SimulatedNvml

TRACES: dict[str, tuple[Callable[[], PowerTrace], bool]] = {
    "steady 300 W": (lambda: ConstantTrace(300.0), True),
    "bursty 150-650 W, bursts 1-4 s": (
        lambda: BurstTrace(idle_w=150.0, burst_w=650.0, burst_s=(1.0, 4.0), gap_s=(0.5, 3.0)),
        True,
    ),
    "short bursts 200-650 W, 0.1-0.3 s": (lambda: BurstTrace(seed=3), True),
    "short bursts, no energy counter": (lambda: BurstTrace(seed=3), False),
}
"""Trace name: (the trace, whether the GPU has an energy counter). Without a counter both
tools fall back to power readings (here 1-second means, as Hopper reports)."""


COUNTER_PERIOD_S = SimulatedGpu().counter_period_s
"""How often the simulated energy counters step (0.1 s, as on recent GPUs)."""


def _error(measured_j: float, exact_j: float) -> float:
    return (measured_j - exact_j) / exact_j


def _windows(duration_s: float) -> list[tuple[str, float]]:
    """(name, length) of the windows: shorter than a second, a second, and a fifth of the run."""
    return [("0.35 s", 0.35), ("1 s", 1.0), (f"{0.2 * duration_s:.1f} s", 0.2 * duration_s)]


def _unalign(rng: random.Random) -> None:
    """Wait a random part of a counter period before CodeCarbon reads the counters.

    carbon's edges wait for the counter's next step; a CodeCarbon reading taken right after
    one would always fall just after a step too, which favours or penalizes it the same way
    every time. In real use nothing lines its readings up with the counter's steps.
    """
    time.sleep(rng.uniform(0.0, COUNTER_PERIOD_S))


def _trace_run(
    sim: SimulatedNvml, settings: Settings, home: Path, duration_s: float, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    windows: list[dict[str, Any]] = []
    with codecarbon_on(sim):
        cc = codecarbon_tracker(15.0, home)
        cc_tasks = codecarbon_tracker(15.0, home)
        sources = [NvmlSource.open(nvml=sim)]
        tracker = carbon.track(project="bench", name="accuracy", settings=settings, sources=sources)
        with tracker as run:
            _unalign(rng)
            cc.start()
            cc_start_s = cc._start_time
            begin_s = time.perf_counter()
            time.sleep(0.1 * duration_s)
            for name, length_s in _windows(duration_s):
                with run.measure(name) as window:
                    time.sleep(length_s)
                _unalign(rng)
                cc_tasks.start_task(name)
                task_start_s = cc_tasks._start_time
                time.sleep(length_s)
                task = cc_tasks.stop_task(name)
                task_end_s = cc_tasks._last_measured_time
                windows.append(
                    {
                        "name": name,
                        "carbon": window.result,
                        "codecarbon_j": task.gpu_energy * J_PER_KWH,
                        "codecarbon_window_s": (task_start_s, task_end_s),
                    }
                )
            time.sleep(max(0.0, begin_s + duration_s - time.perf_counter()))
            _unalign(rng)
            cc.stop()
            cc_end_s = cc._last_measured_time
            final = getattr(cc, "final_emissions_data", None)
            if final is None:
                raise RuntimeError("CodeCarbon did not stop cleanly (its errors are swallowed)")
        assert run._sampler is not None
        t0_s = run._sampler.t0
        summary = run.summary()
    device = summary["devices"][0]
    carbon_exact_j = sim.energy_j(0, t0_s, t0_s + summary["duration_s"])
    cc_exact_j = sim.energy_j(0, cc_start_s, cc_end_s)
    result: dict[str, Any] = {
        "carbon": {
            "method": device["method"],
            "duration_s": summary["duration_s"],
            "energy_j": device["energy_j"],
            "exact_j": carbon_exact_j,
            "error": _error(device["energy_j"], carbon_exact_j),
        },
        "codecarbon": {
            "duration_s": cc_end_s - cc_start_s,
            "reported_duration_s": final.duration,
            "energy_j": final.gpu_energy * J_PER_KWH,
            "exact_j": cc_exact_j,
            "error": _error(final.gpu_energy * J_PER_KWH, cc_exact_j),
        },
        "windows": [],
    }
    for taken in windows:
        measured = taken["carbon"]
        start_s = t0_s + measured.start_s
        exact_j = sim.energy_j(0, start_s, start_s + measured.duration_s)
        task_start_s, task_end_s = taken["codecarbon_window_s"]
        task_exact_j = sim.energy_j(0, task_start_s, task_end_s)
        carbon_j = measured.energy_by_component_j["gpu"]
        result["windows"].append(
            {
                "name": taken["name"],
                "carbon_duration_s": measured.duration_s,
                "carbon_energy_j": carbon_j,
                "carbon_exact_j": exact_j,
                "carbon_error": _error(carbon_j, exact_j),
                "codecarbon_duration_s": task_end_s - task_start_s,
                "codecarbon_energy_j": taken["codecarbon_j"],
                "codecarbon_exact_j": task_exact_j,
                "codecarbon_error": _error(taken["codecarbon_j"], task_exact_j),
            }
        )
    return result


def bench_accuracy(settings: Settings, home: Path, duration_s: float) -> dict[str, Any]:
    """Total and per-window GPU energy error of both tools on each trace, over ``duration_s``."""
    results = {}
    for seed, (name, (make_trace, counter)) in enumerate(TRACES.items()):
        sim = peer_nvml([SimulatedGpu(trace=make_trace(), counter_supported=counter)])
        run = _trace_run(sim, settings, home, duration_s, seed)
        results[name] = {"energy_counter": counter, **run}
    return results
