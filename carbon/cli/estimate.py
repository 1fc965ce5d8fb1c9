"""``carbon estimate``: a training run's energy and CO2e, planned before it runs."""

from __future__ import annotations

from typing import Annotated

import typer

from carbon.accounting.estimate import Estimate, estimate_training
from carbon.cli._common import echo_json
from carbon.errors import ConfigError

_NOTE = (
    "Location-based electricity only. Catalog TDP is the board's maximum, so a TDP-based "
    "figure is an upper bound on the GPUs' draw; embodied hardware emissions are not included."
)


def _as_dict(result: Estimate) -> dict[str, object]:
    """The estimate as JSON-ready data, every input with its provenance."""
    return {
        "energy_kwh": result.energy_kwh,
        "energy_mwh": result.energy_mwh,
        "it_energy_kwh": result.it_energy_kwh,
        "co2e_t": result.co2e_t,
        "gpu_key": result.gpu_key,
        "inputs": {
            name: {"value": item.value, "source": item.source}
            for name, item in result.inputs.items()
        },
    }


def _print(result: Estimate) -> None:
    """Human-readable report: totals first, then each input and where it came from."""
    typer.echo("Planning estimate (before the run):")
    typer.echo(f"  energy     {result.energy_kwh:,.1f} kWh ({result.energy_mwh:,.3f} MWh)")
    kg = f" ({result.co2e_t * 1_000:,.4g} kg)" if result.co2e_t < 1 else ""
    typer.echo(f"  emissions  {result.co2e_t:,.4g} tCO2e{kg}")
    typer.echo("Inputs:")
    for name, item in result.inputs.items():
        value = f"{item.value:,g}" if isinstance(item.value, float | int) else item.value
        typer.echo(f"  {name:<20} {value:<24} {item.source}")
    typer.echo(_NOTE)


def estimate(
    gpu: Annotated[
        str,
        typer.Option(
            "--gpu",
            help="Catalog key or device name, e.g. a100-sxm4-80gb, 'NVIDIA H100 80GB HBM3', H100.",
        ),
    ],
    count: Annotated[int, typer.Option("--count", help="Number of GPUs.")],
    hours: Annotated[float, typer.Option("--hours", help="Wall-clock hours each GPU runs.")],
    intensity: Annotated[
        float | None,
        typer.Option("--intensity", help="Grid carbon intensity in gCO2e/kWh (or --region)."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="Region whose grid intensity (and cloud PUE) to use."),
    ] = None,
    power_w: Annotated[
        float | None,
        typer.Option("--power-w", help="Average watts per GPU; default: the catalog TDP."),
    ] = None,
    pue: Annotated[
        float | None,
        typer.Option(
            "--pue", help="Data-centre PUE (default: a cloud region's published PUE, else 1.0)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Estimate a training run's energy (kWh, MWh) and tCO2e from GPUs, hours and grid.

    Energy = count x hours x power x PUE; CO2e = energy x grid intensity.
    Every input is printed with where it came from.
    """
    try:
        intensity_source, pue_source = "given (--intensity)", None
        if region is not None:
            from carbon.accounting.resolve import resolve

            pricing = resolve(region, pue=pue)
            if intensity is None:
                intensity = pricing.intensity.intensity_g_per_kwh
                intensity_source = f"{pricing.region.code}: {pricing.intensity.source}"
            if pue is None:
                pue, pue_source = pricing.pue.pue, pricing.pue.source
        if intensity is None:
            raise ConfigError("give --region or --intensity (gCO2e/kWh)")
        if pue is None:
            pue = 1.0
        result = estimate_training(
            gpu=gpu,
            count=count,
            hours=hours,
            power_w=power_w,
            pue=pue,
            intensity_g_per_kwh=intensity,
            intensity_source=intensity_source,
            pue_source=pue_source,
        )
    except ConfigError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    if as_json:
        echo_json(_as_dict(result))
    else:
        _print(result)
