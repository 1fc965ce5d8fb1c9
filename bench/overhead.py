"""What tracking costs: ``run.step``, the sampler thread, and a training loop's step time.

Three figures, each against its limit, measured in one process on this machine:

1. ``run.step`` per call, against 5 microseconds;
2. the sampler's CPU at 10 Hz with 8 simulated GPUs (plus the machine's CPU and RAM
   sources, and the store writing one batch a second), as a share of one core, against
   0.5 %;
3. the median step time of a real torch training loop tracked at 10 Hz, as a ratio to the
   same loop untracked, interleaved (A B A B ...), against 1.01.

With ``--sink remote`` the runs go to a ``carbon serve`` started for the purpose on
loopback (a SQLite store, a team and an ingest key): the sampler writes each batch to the
agent's on-disk spool and the sender thread posts it, both inside the measured process.

Run: ``python -m bench.overhead [--quick] [--sink local|remote]``; results go to
``bench/results/overhead.json`` (``overhead-remote.json`` for the remote sink; ``-quick`` before
``.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import carbon
from carbon.settings import Settings, load_settings
from carbon.sources.detect import detect_sources
from carbon.sources.nvml import NvmlSource
from carbon.testing.power_traces import BurstTrace
from carbon.testing.simulated_gpu import SimulatedGpu, simulated_nvml

RESULTS = Path(__file__).parent / "results" / "overhead.json"


class _DriverClock:
    """Thread CPU time spent inside the simulated NVML, which stands in for the driver."""

    def __init__(self) -> None:
        self.cpu_s = 0.0

    def wrap(self, sim: Any) -> Any:
        for name in dir(type(sim)):
            if name.startswith("nvmlDevice"):
                setattr(sim, name, self._timed(getattr(sim, name)))
        return sim

    def _timed(self, call: Any) -> Any:
        def timed(*args: Any) -> Any:
            start = time.thread_time()
            try:
                return call(*args)
            finally:
                self.cpu_s += time.thread_time() - start

        return timed


def _sources(gpus: int, driver: _DriverClock | None = None) -> list[Any]:
    sim = simulated_nvml([SimulatedGpu(trace=BurstTrace(seed=i)) for i in range(gpus)])
    if driver is not None:
        driver.wrap(sim)
    return [NvmlSource.open(nvml=sim), *detect_sources()]


def bench_step(settings: Settings, calls: int) -> float:
    """Microseconds per ``run.step(samples=..., tokens=...)`` call."""
    with carbon.track(project="bench", name="step", settings=settings, sources=_sources(1)) as run:
        start = time.perf_counter()
        for _ in range(calls):
            run.step(samples=32, tokens=4096)
        elapsed = time.perf_counter() - start
    return elapsed / calls * 1e6


def bench_sampler(settings: Settings, seconds: float, gpus: int) -> tuple[float, float]:
    """CPU per wall second of a run whose own thread only sleeps: all, and the driver's.

    Returns:
        The process's CPU share of one core while tracking (minus its idle share), and the
        part of it spent inside the simulated NVML calls (the driver's, not carbon's).
    """
    idle_cpu0 = time.process_time()
    time.sleep(1.0)
    idle_cpu = time.process_time() - idle_cpu0
    driver = _DriverClock()
    sources = _sources(gpus, driver)
    with carbon.track(project="bench", name="sampler", settings=settings, sources=sources):
        cpu0, wall0, driver0 = time.process_time(), time.perf_counter(), driver.cpu_s
        time.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        driver_s = driver.cpu_s - driver0
    return max(0.0, cpu - idle_cpu * wall) / wall, driver_s / wall


def bench_training(settings: Settings, steps: int, reps: int) -> dict[str, float]:
    """Median step time of a torch MLP training loop, untracked and tracked, interleaved."""
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(256, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 10)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(128, 256), torch.randint(0, 10, (128,))

    def loop(run: carbon.Run | None) -> list[float]:
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            if run is not None:
                run.step(samples=128)
            times.append(time.perf_counter() - t0)
        return times

    loop(None)  # warm up
    untracked: list[float] = []
    tracked: list[float] = []
    for _ in range(reps):
        untracked += loop(None)
        sources = _sources(8)
        with carbon.track(project="bench", name="train", settings=settings, sources=sources) as run:
            tracked += loop(run)
    return {
        "untracked_median_step_s": statistics.median(untracked),
        "tracked_median_step_s": statistics.median(tracked),
        "ratio": statistics.median(tracked) / statistics.median(untracked),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print one line per figure with its ratio to the limit."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 30 s)")
    parser.add_argument(
        "--sink", choices=["local", "remote"], default="local", help="where runs are written"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as home, ExitStack() as stack:
        remote: dict[str, Any] = {}
        if args.sink == "remote":
            from bench._server import serve

            served = stack.enter_context(serve(f"sqlite:///{Path(home) / 'server.db'}"))
            remote = {"server_url": served.url, "api_key": served.key}
        settings = load_settings(home=Path(home), region="FR", sample_hz=10, **remote)
        step_us = bench_step(settings, 200_000 if args.quick else 1_000_000)
        sampler, driver = bench_sampler(settings, 5.0 if args.quick else 30.0, gpus=8)
        training = bench_training(settings, 100 if args.quick else 300, 3 if args.quick else 5)
    figures = [
        ("run.step per call", step_us, "us", 5.0),
        ("sampler CPU at 10 Hz, 8 GPUs, all", sampler * 100, "% of a core", 0.5),
        (
            "  of which carbon's own (not the driver's)",
            (sampler - driver) * 100,
            "% of a core",
            0.5,
        ),
        ("training step time, tracked / untracked", training["ratio"], "ratio", 1.01),
    ]
    for name, value, unit, limit in figures:
        verdict = "within" if value <= limit else "OVER"
        print(
            f"{name:44} {value:9.4f} {unit:12} limit {limit:<5} ratio {value / limit:.3f} {verdict}"
        )
    results = RESULTS if args.sink == "local" else RESULTS.with_name("overhead-remote.json")
    if args.quick:  # a smoke check never replaces the full run's figures
        results = results.with_name(results.stem + "-quick.json")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(
        json.dumps(
            {
                "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
                "quick": args.quick,
                "sink": args.sink,
                "run_step_us": step_us,
                "sampler_core_fraction": sampler,
                "simulated_driver_core_fraction": driver,
                "training": training,
                "limits": {"run_step_us": 5.0, "sampler_core_fraction": 0.005, "ratio": 1.01},
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
