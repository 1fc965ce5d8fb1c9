"""Every benchmark in one command: ``python -m bench [--quick] [--only NAME ...]``.

Each benchmark runs in a process of its own (so one's imports, caches and threads do not
weigh on the next), prints one line per figure with its ratio to a peer or a limit, and
writes its JSON to ``bench/results/``. This command runs them in turn and ends with a table
of what ran, how long it took and whether it finished.

``--quick`` runs the benchmarks that have a short mode, in that mode (about three minutes on
a 2-core machine); the ingest, dashboard and report benchmarks need data sets of millions of
samples, and the load benchmark a PostgreSQL server and about two minutes: they run only in
the full suite or with ``--only``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bench:
    """One benchmark module of the suite.

    Attributes:
        name: The module under ``bench`` (``python -m bench.<name>``).
        what: What it measures, for the summary.
        quick: Whether it has a short mode that ``--quick`` runs.
    """

    name: str
    what: str
    quick: bool


SUITE = (
    Bench("peers", "carbon beside CodeCarbon: overhead, start-up, accuracy, sampler cost", True),
    Bench("overhead", "run.step, the sampler's CPU, a training loop's step time", True),
    Bench("ingest", "HTTP ingest into PostgreSQL beside raw COPY", False),
    Bench("load", "200 agents, a batch a second each for 60 s, to carbon serve --workers 2", False),
    Bench("dashboard", "the dashboard's views with 1,000 runs and 10 million samples", False),
    Bench("report", "a yearly report over 10,000 runs", False),
)
"""The suite, in the order it runs: cheapest first."""


def main(argv: list[str] | None = None) -> int:
    """Run the suite (or part of it) and print what ran; non-zero if a benchmark failed."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short modes only (~3 minutes)")
    parser.add_argument(
        "--only", nargs="+", choices=[b.name for b in SUITE], help="run only these benchmarks"
    )
    args = parser.parse_args(argv)
    chosen = [
        bench
        for bench in SUITE
        if (bench.name in args.only if args.only else (bench.quick or not args.quick))
    ]
    finished: list[tuple[Bench, float, int]] = []
    for bench in chosen:
        command = [sys.executable, "-m", f"bench.{bench.name}"]
        if args.quick and bench.quick:
            command.append("--quick")
        print(f"\n== {bench.name}: {bench.what}  ({' '.join(command[1:])})", flush=True)
        started = time.perf_counter()
        code = subprocess.run(command, check=False).returncode
        finished.append((bench, time.perf_counter() - started, code))
    print("\n== suite")
    print(f"{'benchmark':10} {'seconds':>8}  result")
    for bench, seconds, code in finished:
        result = "finished" if code == 0 else f"FAILED (exit {code})"
        print(f"{bench.name:10} {seconds:8.1f}  {result}")
    return 0 if all(code == 0 for _, _, code in finished) else 1


if __name__ == "__main__":
    sys.exit(main())
