"""The benchmark page's figure: overhead and accuracy of carbon beside CodeCarbon.

Reads ``bench/results/peers.json`` (written by ``python -m bench.peers``) and draws three
panels into ``docs/img/benchmarks.png``: the training loop's step time as a ratio to
untracked, the tracker's own CPU as a share of a core, and the error of total energy on each
known trace. Run: ``python -m bench.plot``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "peers.json"
OUTPUT = ROOT / "docs" / "img" / "benchmarks.png"
CARBON, PEER = "#0b6fb8", "#b0b7c3"


def _bars(axes: Any, labels: list[str], values: list[float], colours: list[str]) -> None:
    positions = range(len(labels))
    axes.bar(positions, values, color=colours)
    axes.set_xticks(list(positions), labels, fontsize=8)
    for x, value in zip(positions, values, strict=True):
        axes.annotate(f"{value:.3g}", (x, value), ha="center", va="bottom", fontsize=8)


def draw(results: dict[str, Any]) -> Figure:
    """The three panels from a peers result."""
    figure = Figure(figsize=(12, 3.8), dpi=110, layout="constrained")
    step_axes, cpu_axes, error_axes = figure.subplots(1, 3)
    training = {k: v for k, v in results["training"].items() if k != "untracked"}
    if not isinstance(next(iter(training.values())), dict):
        training = {k: v for k, v in training.items() if isinstance(v, dict)}
    labels = list(training)
    colours = [CARBON if name.startswith("carbon") else PEER for name in labels]
    _bars(step_axes, labels, [training[n]["step_ratio"] for n in labels], colours)
    step_axes.axhline(1.01, color="#c0392b", linestyle="--", linewidth=1)
    step_axes.set_title("Training step time / untracked (limit 1.01)", fontsize=10)
    step_axes.set_ylim(0.8, 1.15)
    _bars(cpu_axes, labels, [100 * training[n]["own_cpu_core_fraction"] for n in labels], colours)
    cpu_axes.set_title("Tracker's own CPU, % of a core", fontsize=10)
    traces = [name for name, trace in results["accuracy"].items() if "carbon" in trace]
    width = 0.38
    for offset, (tool, colour) in enumerate((("carbon", CARBON), ("codecarbon", PEER))):
        values = [
            100 * abs(results["accuracy"][t][tool]["error"])
            if results["accuracy"][t].get(tool)
            else 0.0
            for t in traces
        ]
        positions = [i + (offset - 0.5) * width for i in range(len(traces))]
        error_axes.bar(positions, values, width, color=colour, label=tool)
    error_axes.axhline(0.5, color="#c0392b", linestyle="--", linewidth=1)
    names = [
        t.replace(", no energy counter", " (no counter)").split(",")[0].replace(" ", "\n", 1)
        for t in traces
    ]
    error_axes.set_xticks(range(len(traces)), names, fontsize=8)
    error_axes.set_title("Total energy error vs exact integral, % (limit 0.5)", fontsize=10)
    error_axes.legend(fontsize=8)
    return figure


def main(argv: list[str] | None = None) -> int:
    """Draw the figure from the latest peers result."""
    del argv
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    figure = draw(results)
    FigureCanvasAgg(figure)
    figure.savefig(OUTPUT)
    print(f"wrote {OUTPUT.relative_to(ROOT)} from {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
