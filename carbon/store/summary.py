"""The JSON shape of a run (``carbon runs show --json``, ``run.summary()``).

Field names are stable and documented in the README. Derived figures (joules per FLOP,
MFU, energy per inference) are computed here from the stored facts with the pure functions
of :mod:`carbon.accounting`, never stored twice. Unknown figures are ``None``.

``gaps`` lists the spans without per-second samples (a lost GPU, a failed source, a full
agent spool), each with its rank, its device (``None``: every device of the rank), its start
and end in seconds from the run's start (``end_s`` ``None``: until the run's end) and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from carbon.accounting import efficiency
from carbon.accounting.catalog import match_gpu, peak_flops
from carbon.accounting.embodied import amortised_kg
from carbon.sources.base import methods_by_component
from carbon.store.models import Run, RunGap


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def run_summary(run: Run) -> dict[str, Any]:
    """The stable JSON shape of a run, as ``carbon runs show --json`` prints it.

    Unknown figures are ``None``: a run without FLOPs has no ``j_per_flop``; a run without a
    region has no intensity and no CO2e. ``energy_j`` is the total over all components
    before PUE; ``co2e_g`` is energy x PUE x intensity (location-based).
    """
    figures = _efficiency(run)
    return {
        "id": run.id,
        "project": run.project.name,
        "name": run.name,
        "kind": run.kind,
        "status": run.status,
        "started_at": _iso(run.started_at),
        "ended_at": _iso(run.ended_at),
        "duration_s": run.duration_s,
        "energy_j": run.energy_j,
        "energy_by_component_j": {
            "gpu": run.energy_gpu_j,
            "cpu": run.energy_cpu_j,
            "ram": run.energy_ram_j,
        },
        "energy_method": methods_by_component(run.devices),
        "samples": run.samples,
        "tokens": run.tokens,
        "flops": run.flops,
        "flops_method": run.flops_method,
        **figures,
        "region": run.region,
        "intensity_g_per_kwh": run.intensity_g_per_kwh,
        "intensity_source": run.intensity_source,
        "intensity_zone": run.intensity_zone,
        "intensity_year": run.intensity_year,
        "intensity_factor_type": run.intensity_factor_type,
        "intensity_fallback": run.intensity_fallback,
        "intensity_fallback_reason": run.intensity_fallback_reason,
        "pue": run.pue,
        "pue_source": run.pue_source,
        "co2e_g": run.co2e_g,
        "co2e_method": run.co2e_method,
        "co2e_market_g": run.co2e_market_g,
        "market_source": run.market_source,
        **_embodied(run),
        "hardware": run.hardware,
        "compression": run.compression,
        "metrics": run.metrics,
        "tags": run.tags,
        "steps": run.steps,
        "host": run.host,
        "sample_hz": run.sample_hz,
        "carbon_version": run.carbon_version,
        "simulated": run.simulated,
        "warnings": run.warnings,
        "error": run.error,
        "devices": [
            {
                "component": d.component,
                "name": d.name,
                "index": d.index,
                "uuid": d.uuid,
                "method": d.method,
                "provenance": d.provenance,
                "detail": d.detail,
                "energy_j": d.energy_j,
                "power_limit_w": d.power_limit_w,
                "error": d.error,
            }
            for d in run.devices
        ],
        "gaps": _gaps(run),
    }


def _gaps(run: Run) -> list[dict[str, Any]]:
    """The run's gaps, each naming its device by component and model when it has one."""
    devices = {(device.rank, device.position): device for device in run.devices}

    def entry(gap: RunGap) -> dict[str, Any]:
        device = devices.get((gap.rank, gap.position)) if gap.position is not None else None
        return {
            "rank": gap.rank,
            "device": gap.position,
            "component": device.component if device is not None else None,
            "name": device.name if device is not None else None,
            "start_s": gap.start_s,
            "end_s": gap.end_s,
            "reason": gap.reason,
        }

    return [entry(gap) for gap in run.gaps]


def _per(energy_j: float | None, count: float | None) -> float | None:
    return energy_j / count if energy_j is not None and count else None


def _efficiency(run: Run) -> dict[str, Any]:
    """Derived figures: per FLOP, per unit of work, and MFU against the catalog's peak."""
    gpus = [device.name for device in run.devices if device.component == "gpu"]
    specs = {match_gpu(name) for name in gpus}
    spec = specs.pop() if len(specs) == 1 else None  # mixed or unknown GPUs: no single peak
    peak = peak_flops(spec, run.precision) if spec is not None and run.precision else None
    by_component = {"gpu": run.energy_gpu_j, "cpu": run.energy_cpu_j, "ram": run.energy_ram_j}
    inference = run.kind == "inference"
    return {
        "j_per_flop": efficiency.joules_per_flop(run.energy_j, run.flops),
        "mfu": efficiency.mfu(run.flops, run.duration_s, peak, len(gpus)),
        "precision": run.precision,
        "peak_flops_per_s": peak,
        "achieved_flops_per_s": efficiency.achieved_flops_per_s(run.flops, run.duration_s),
        "flop_per_j": efficiency.flops_per_joule(run.energy_j, run.flops),
        "j_per_flop_by_component": {
            component: efficiency.joules_per_flop(energy_j, run.flops)
            for component, energy_j in by_component.items()
        },
        "j_per_sample": _per(run.energy_j, run.samples),
        "j_per_inference": _per(run.energy_j, run.samples) if inference else None,
        "j_per_token": _per(run.energy_j, run.tokens),
        "j_per_request": _per(run.energy_j, run.steps) if inference else None,
    }


def _embodied(run: Run) -> dict[str, Any]:
    """Scope 3: the GPUs' manufacturing footprint amortised over the run, apart from CO2e.

    Known only when every GPU of the run has a published factor; CPUs, memory and the rest
    of the server are not covered (``embodied_source`` says so).
    """
    gpus = [device.name for device in run.devices if device.component == "gpu"]
    if not gpus or run.duration_s is None:
        return {"embodied_g": None, "embodied_source": None}
    figures = [amortised_kg(name, run.duration_s) for name in gpus]
    unknown = sorted({name for name, f in zip(gpus, figures, strict=True) if f is None})
    if unknown:
        return {
            "embodied_g": None,
            "embodied_source": "no published manufacturing footprint for " + ", ".join(unknown),
        }
    known = [f for f in figures if f is not None]
    sources = sorted({f.source for f in known})
    return {
        "embodied_g": sum(f.co2e_kg for f in known) * 1000.0,
        "embodied_source": "GPUs only, amortised over their lifetime: " + "; ".join(sources),
    }
