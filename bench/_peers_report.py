"""The printed side of ``bench.peers``: one line per figure, value, peer or limit, ratio."""

from __future__ import annotations

from typing import Any

CARBON_CPU_LIMIT = 0.005
"""carbon's limit for its sampler at 10 Hz with 8 GPUs: 0.5 % of one core (bench.overhead)."""

ENERGY_ERROR_LIMIT = 0.005
"""carbon's target for GPU energy through the energy counter: within 0.5 %."""

STEP_RATIO_LIMIT = 1.01
"""carbon's limit for a tracked training step over an untracked one."""

STARTUP_RATIO_TARGET = 10.0
"""carbon's target: at least ten times faster than CodeCarbon from import to first reading."""


def _line(name: str, value: str, against: str, ratio: float, verdict: str) -> None:
    print(f"{name:50} {value:>12}  {against:34} ratio {ratio:7.3f}  {verdict}")


def print_report(results: dict[str, Any], gpus_max: int) -> None:
    """One line per figure: carbon's value, the peer's (or the limit), the ratio, a verdict."""
    pct = "{:.3f} %".format
    training = results["training"]
    carbon_loop = training["carbon 10 Hz"]
    for peer in ("CodeCarbon 15 s", "CodeCarbon 1 s"):
        theirs = training[peer]
        _line(
            f"training step / untracked, carbon vs {peer}",
            f"{carbon_loop['step_ratio']:.4f}",
            f"{peer} {theirs['step_ratio']:.4f}",
            carbon_loop["step_ratio"] / theirs["step_ratio"],
            f"carbon/peer; limit {STEP_RATIO_LIMIT}: "
            + ("met" if carbon_loop["step_ratio"] <= STEP_RATIO_LIMIT else "OVER (behind)"),
        )
    for key, label in (("background_cpu_core_fraction", "all"), ("own_cpu_core_fraction", "own")):
        for peer in ("CodeCarbon 15 s", "CodeCarbon 1 s"):
            ours, theirs = carbon_loop[key], training[peer][key]
            _line(
                f"tracker CPU in training ({label}), carbon vs {peer}",
                pct(100 * ours),
                f"{peer} {pct(100 * theirs)}",
                ours / theirs if theirs > 0 else float("inf"),
                "carbon/peer: " + ("lighter" if ours <= theirs else "HEAVIER (behind)"),
            )
    rss = results["rss"]
    ours, theirs = rss["carbon_added_bytes"], rss["codecarbon_added_bytes"]
    _line(
        "peak RSS added by tracking, carbon vs CodeCarbon",
        f"{ours / 2**20:.1f} MiB",
        f"CodeCarbon {theirs / 2**20:.1f} MiB",
        ours / theirs,
        "carbon/peer: " + ("lighter" if ours <= theirs else "HEAVIER (behind)"),
    )
    startup = results["startup"]
    peer = startup["CodeCarbon"]
    for variant in ("carbon", "carbon, first run (new store)"):
        ours_s = startup[variant]["first_reading_s"]
        ratio = peer["first_reading_s"] / ours_s
        _line(
            f"import to first reading, {variant}",
            f"{ours_s:.3f} s",
            f"CodeCarbon {peer['first_reading_s']:.3f} s",
            ratio,
            f"peer/carbon; target >= {STARTUP_RATIO_TARGET:g}: "
            + ("met" if ratio >= STARTUP_RATIO_TARGET else "BEHIND"),
        )
    ours_s = startup["carbon"]["import_s"]
    _line(
        "import alone, carbon",
        f"{ours_s:.3f} s",
        f"CodeCarbon {peer['import_s']:.3f} s",
        peer["import_s"] / ours_s,
        "peer/carbon: " + ("faster" if ours_s <= peer["import_s"] else "SLOWER (behind)"),
    )
    for name, trace in results["accuracy"].items():
        ours, theirs = trace["carbon"]["error"], trace["codecarbon"]["error"]
        counter = trace["energy_counter"]
        verdict = "met" if abs(ours) <= ENERGY_ERROR_LIMIT else "OVER (behind)"
        _line(
            f"GPU energy error, {name}",
            f"{100 * ours:+.3f} %",
            f"CodeCarbon {100 * theirs:+.3f} %",
            abs(ours) / ENERGY_ERROR_LIMIT,
            ("|carbon|/0.5 %: " + verdict) if counter else "|carbon|/0.5 % (no target)",
        )
        worst = max(trace["windows"], key=lambda w: abs(w["carbon_error"]))
        worst_peer = max(trace["windows"], key=lambda w: abs(w["codecarbon_error"]))
        verdict = "met" if abs(worst["carbon_error"]) <= ENERGY_ERROR_LIMIT else "OVER (behind)"
        _line(
            f"  worst window ({worst['name']}), {name}",
            f"{100 * worst['carbon_error']:+.3f} %",
            f"CodeCarbon task {100 * worst_peer['codecarbon_error']:+.3f} %",
            abs(worst["carbon_error"]) / ENERGY_ERROR_LIMIT,
            ("|carbon|/0.5 %: " + verdict) if counter else "|carbon|/0.5 % (no target)",
        )
    rates = results["sampler_rates"]
    for gpus in (1, gpus_max):
        peer_own = rates[f"CodeCarbon 1 s, {gpus} GPU"]["own_core_fraction"]
        for hz in (1, 10, 50):
            own = rates[f"carbon {hz} Hz, {gpus} GPU"]["own_core_fraction"]
            _line(
                f"sampler CPU (own), carbon {hz} Hz, {gpus} GPU",
                pct(100 * own),
                f"limit 0.5 %, CodeCarbon 1 s {pct(100 * peer_own)}",
                own / CARBON_CPU_LIMIT,
                "carbon/limit"
                + (" (limit is for 10 Hz, 8 GPUs)" if hz != 10 or gpus != gpus_max else "")
                + (f"; carbon/peer {own / peer_own:.2f}" if hz == 1 and peer_own > 0 else ""),
            )
