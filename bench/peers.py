"""carbon beside CodeCarbon, the tracker users would pick instead: same machine, same run.

Four figures, each printed with the peer's value (or carbon's limit) and the ratio:

1. **Training loop**: a real CPU torch training loop (the MLP of ``bench.overhead``), its
   segments interleaved untracked, carbon at 10 Hz, CodeCarbon at its default
   ``measure_power_secs`` (15 s) and at 1 s, over several rounds (each round starting one
   configuration later). Figures: the median step time of each tracked loop over the
   untracked one of the same round, the median over rounds; the trackers' CPU per second of
   run (CPU of every thread but the training thread, minus the same in the untracked
   segments), with the part spent in the simulated NVML calls (the driver's, not the
   tool's) apart; and, each tool alone in a fresh process, the peak RSS added by tracking.
   Segments are short (6 s; 3 s with ``--quick``) and rounds many (10; 2), since the
   machine's other load drifts over seconds: so CodeCarbon at 15 s only runs its 1-second
   monitoring thread inside a segment, and the cost of its measurements shows in the 1 s
   configuration, which takes one every second.
2. **Start-up**: in fresh processes, seconds from before the import to the tool's first
   reading of its sources, and to the import's end (definitions in ``bench._peers_child``).
3. **Accuracy**: GPU energy of both tools on simulated GPUs of known exact energy, run and
   windows (``bench._peers_accuracy``).
4. **Sampler cost vs rate**: carbon's CPU per second at 1, 10 and 50 Hz with 1 and 8
   simulated GPUs (``bench.overhead.bench_sampler``), and CodeCarbon's, measured alike, at
   its 1-second monitoring rate.

Wherever a tracker reads GPUs, both read the same simulated devices (8 H100s with bursty
power in 1 and 4; CodeCarbon's ``pynvml`` is pointed at them, see ``bench._peers_support``)
plus the machine's own CPU and RAM estimates. CodeCarbon runs offline
(``OfflineEmissionsTracker``, France), writes no file, and every connection or name lookup
is refused and counted in the results. Nothing here is a test: ``tests/`` times nothing.

Run: ``python -m bench.peers [--quick]``; results go to ``bench/results/peers.json``
(``peers-quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import carbon
from bench._peers_accuracy import bench_accuracy
from bench._peers_offline import NetworkGuard
from bench._peers_report import (
    CARBON_CPU_LIMIT,
    ENERGY_ERROR_LIMIT,
    STARTUP_RATIO_TARGET,
    STEP_RATIO_LIMIT,
    print_report,
)
from bench._peers_support import codecarbon_on, codecarbon_tracker, other_threads_cpu_s, peer_nvml
from bench.overhead import _DriverClock, bench_sampler
from carbon.settings import Settings, load_settings
from carbon.sources.detect import detect_sources
from carbon.sources.nvml import NvmlSource
from carbon.testing.power_traces import BurstTrace
from carbon.testing.simulated_gpu import SimulatedGpu

RESULTS = Path(__file__).parent / "results" / "peers.json"
ROOT = Path(__file__).resolve().parent.parent
GPUS = 8
TRAINING_CONFIGS = ("untracked", "carbon 10 Hz", "CodeCarbon 15 s", "CodeCarbon 1 s")


def _gpus(driver: _DriverClock) -> Any:
    sim = peer_nvml([SimulatedGpu(trace=BurstTrace(seed=i)) for i in range(GPUS)])
    return driver.wrap(sim)


def _stopped(cc: Any, gpus: int = GPUS) -> Any:
    """CodeCarbon's final data; its ``stop()`` swallows errors, so check it really ran."""
    final = getattr(cc, "final_emissions_data", None)
    if final is None or final.gpu_count != gpus:
        raise RuntimeError(f"CodeCarbon did not measure the {gpus} simulated GPUs: {final}")
    return final


# --- 1. the training loop ---------------------------------------------------------------


def bench_training(settings: Settings, home: Path, segment_s: float, rounds: int) -> dict[str, Any]:
    """Step times and background CPU of the loop, per configuration, interleaved by round."""
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(256, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 10)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(128, 256), torch.randint(0, 10, (128,))

    def loop(steps: int, run: carbon.Run | None) -> list[float]:
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            if run is not None:
                run.step(samples=128)
            times.append(time.perf_counter() - t0)
        return times

    steps = max(50, round(segment_s / statistics.median(loop(200, None))))

    def measured(run: carbon.Run | None, driver: _DriverClock) -> dict[str, Any]:
        cpu0, driver0, wall0 = other_threads_cpu_s(), driver.cpu_s, time.perf_counter()
        times = loop(steps, run)
        wall_s = time.perf_counter() - wall0
        other_s, driver_s = other_threads_cpu_s() - cpu0, driver.cpu_s - driver0
        return {"times": times, "wall_s": wall_s, "cpu_s": other_s, "driver_s": driver_s}

    def segment(config: str) -> dict[str, Any]:
        driver = _DriverClock()
        if config == "untracked":
            return measured(None, driver)
        sim = _gpus(driver)
        if config == "carbon 10 Hz":
            sources = [NvmlSource.open(nvml=sim), *detect_sources()]
            with carbon.track(project="bench", settings=settings, sources=sources) as run:
                return measured(run, driver)
        with codecarbon_on(sim):
            cc = codecarbon_tracker(15.0 if config == "CodeCarbon 15 s" else 1.0, home)
            cc.start()
            try:
                return measured(None, driver)
            finally:
                cc.stop()
                _stopped(cc)

    segments: dict[str, list[dict[str, Any]]] = {config: [] for config in TRAINING_CONFIGS}
    for round_ in range(rounds):  # each round starts one place later, so no config is always first
        shift = round_ % len(TRAINING_CONFIGS)
        for config in TRAINING_CONFIGS[shift:] + TRAINING_CONFIGS[:shift]:
            segments[config].append(segment(config))

    def pooled(config: str, key: str) -> float:
        return float(sum(s[key] for s in segments[config]))

    def medians(config: str) -> list[float]:
        return [statistics.median(s["times"]) for s in segments[config]]

    base_medians = medians("untracked")
    base_cpu_per_s = pooled("untracked", "cpu_s") / pooled("untracked", "wall_s")
    figures: dict[str, Any] = {"steps_per_segment": steps, "rounds": rounds}
    for config in TRAINING_CONFIGS:
        # A round's segments run one after the other, so the machine's other load drifts
        # less within a round than across rounds: each round gives its own ratio.
        ratios = [m / base for m, base in zip(medians(config), base_medians, strict=True)]
        wall_s = pooled(config, "wall_s")
        cpu = pooled(config, "cpu_s") / wall_s - (0 if config == "untracked" else base_cpu_per_s)
        driver = pooled(config, "driver_s") / wall_s
        figures[config] = {
            "median_step_s": statistics.median(t for s in segments[config] for t in s["times"]),
            "step_ratio": statistics.median(ratios),
            "step_ratio_by_round": ratios,
            "median_step_s_by_round": medians(config),
            "segment_s": wall_s / rounds,
            "background_cpu_core_fraction": cpu,
            "background_cpu_core_fraction_by_round": [
                s["cpu_s"] / s["wall_s"] for s in segments[config]
            ],
            "simulated_driver_core_fraction": driver,
            "own_cpu_core_fraction": cpu - driver,
        }
    return figures


# --- fresh processes: start-up and peak memory ------------------------------------------


def _child(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CARBON_", "CODECARBON_"))}
    base["PYTHONPATH"] = str(ROOT)
    completed = subprocess.run(
        [sys.executable, "-m", "bench._peers_child", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"bench._peers_child {args} failed:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def bench_startup(reps: int) -> dict[str, Any]:
    """Median start-up seconds of each tool in fresh processes, interleaved.

    carbon twice: with a store already in ``CARBON_HOME`` (every run but a machine's first),
    and with an empty ``CARBON_HOME`` (the first run, which creates and migrates the store).
    """
    with tempfile.TemporaryDirectory() as tmp:
        work, existing = Path(tmp), Path(tmp) / "existing"

        def run(variant: str) -> dict[str, Any]:
            if variant == "CodeCarbon":
                return _child(["startup", "codecarbon"], work)
            home = existing if variant == "carbon" else Path(tempfile.mkdtemp(dir=tmp))
            env = {"CARBON_HOME": str(home), "CARBON_REGION": "FR"}
            return _child(["startup", "carbon"], work, env)

        variants = ("carbon", "carbon, first run (new store)", "CodeCarbon")
        for variant in variants:  # untimed: warms the page cache and creates `existing`
            run(variant)
        samples: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        for _ in range(reps):
            for variant in variants:
                samples[variant].append(run(variant))
    return {
        variant: {
            key: statistics.median(s[key] for s in runs)
            for key in ("import_s", "first_reading_s", "start_returned_s")
        }
        | {"network_attempts": sum(s["network_attempts"] for s in runs), "runs": len(runs)}
        for variant, runs in samples.items()
    }


def bench_rss(seconds: float) -> dict[str, Any]:
    """Peak RSS of a process tracking with each tool for ``seconds``, and of the baseline.

    carbon's store is created beforehand (here), so its process opens an existing store as
    every run but a machine's first does (the first also loads Alembic to migrate it).
    """
    from carbon.store import connect_store

    rss: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for tool in ("none", "carbon", "codecarbon"):
            home = tempfile.mkdtemp(dir=tmp)
            if tool == "carbon":
                connect_store(f"sqlite:///{Path(home) / 'carbon.db'}").dispose()
            rss[tool] = _child(["rss", tool, str(seconds), home], Path(home))
    base = rss["none"]["peak_rss_bytes"]
    return {
        "baseline_peak_rss_bytes": base,
        "carbon_added_bytes": rss["carbon"]["peak_rss_bytes"] - base,
        "codecarbon_added_bytes": rss["codecarbon"]["peak_rss_bytes"] - base,
        "network_attempts": sum(r["network_attempts"] for r in rss.values()),
        "seconds": seconds,
    }


# --- 4. sampler cost vs rate ------------------------------------------------------------


def codecarbon_sampler(home: Path, seconds: float, gpus: int) -> tuple[float, float]:
    """CodeCarbon's CPU per wall second while the thread that started it sleeps.

    Measured as ``bench.overhead.bench_sampler`` measures carbon's: the process's CPU over
    ``seconds`` minus its idle CPU, and the part spent inside the simulated NVML calls.
    """
    idle_cpu0 = time.process_time()
    time.sleep(1.0)
    idle_cpu = time.process_time() - idle_cpu0
    driver = _DriverClock()
    sim = driver.wrap(peer_nvml([SimulatedGpu(trace=BurstTrace(seed=i)) for i in range(gpus)]))
    with codecarbon_on(sim):
        cc = codecarbon_tracker(1.0, home)
        cc.start()
        try:
            cpu0, wall0, driver0 = time.process_time(), time.perf_counter(), driver.cpu_s
            time.sleep(seconds)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            driver_s = driver.cpu_s - driver0
        finally:
            cc.stop()
        _stopped(cc, gpus)
    return max(0.0, cpu - idle_cpu * wall) / wall, driver_s / wall


def bench_rates(home: Path, seconds: float) -> dict[str, Any]:
    """CPU per second of carbon at 1, 10, 50 Hz and of CodeCarbon at 1 s, with 1 and 8 GPUs."""
    rates: dict[str, Any] = {}
    for gpus in (1, GPUS):
        for hz in (1, 10, 50):
            settings = load_settings(home=home, region="FR", sample_hz=hz)
            everything, driver = bench_sampler(settings, seconds, gpus)
            rates[f"carbon {hz} Hz, {gpus} GPU"] = (everything, driver)
        rates[f"CodeCarbon 1 s, {gpus} GPU"] = codecarbon_sampler(home, seconds, gpus)
    return {
        name: {"core_fraction": a, "simulated_driver_core_fraction": d, "own_core_fraction": a - d}
        for name, (a, d) in rates.items()
    }


# --- results ----------------------------------------------------------------------------


def _machine() -> dict[str, Any]:
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import torch

    return {
        "carbon": carbon.__version__,
        "codecarbon": version("codecarbon"),
        "torch": str(torch.__version__),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the four figures, print one line per figure, write ``bench/results/peers.json``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 2 minutes)")
    args = parser.parse_args(argv)
    quick = args.quick
    started = datetime.now(UTC)
    steps: list[tuple[str, Callable[[], Any]]] = []
    with tempfile.TemporaryDirectory() as tmp, NetworkGuard() as guard:
        home = Path(tmp)
        settings = load_settings(home=home, region="FR", sample_hz=10)
        training_s_rounds = (3.0, 2) if quick else (6.0, 10)
        steps = [
            ("startup", lambda: bench_startup(3 if quick else 7)),
            ("rss", lambda: bench_rss(3.0 if quick else 10.0)),
            ("accuracy", lambda: bench_accuracy(settings, home, 8.0 if quick else 20.0)),
            ("sampler_rates", lambda: bench_rates(home, 2.0 if quick else 8.0)),
            ("training", lambda: bench_training(settings, home, *training_s_rounds)),
        ]
        results: dict[str, Any] = {}
        for name, step in steps:
            t0 = time.perf_counter()
            results[name] = step()
            print(f"# {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    results["network_attempts_in_process"] = guard.attempts
    print_report(results, GPUS)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "date": started.isoformat(timespec="seconds"),
        "quick": quick,
        "machine": _machine(),
        "versions": _versions(),
        "limits": {
            "carbon_step_ratio": STEP_RATIO_LIMIT,
            "carbon_sampler_core_fraction_10hz_8gpu": CARBON_CPU_LIMIT,
            "carbon_energy_error": ENERGY_ERROR_LIMIT,
            "startup_ratio_codecarbon_over_carbon_at_least": STARTUP_RATIO_TARGET,
        },
        **results,
    }
    # A quick run is a smoke check: it never replaces the full run's figures.
    target = RESULTS.with_name("peers-quick.json") if quick else RESULTS
    target.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
