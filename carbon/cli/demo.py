"""``carbon demo``: the main job, a real tracked training and compressed inference."""

from __future__ import annotations

from typing import Annotated

import typer

from carbon.demo.config import DEFAULT_EPOCHS, DEFAULT_INFERENCE_S


def demo(
    epochs: Annotated[
        int, typer.Option(min=1, help="Training epochs of the teacher.")
    ] = DEFAULT_EPOCHS,
    inference_s: Annotated[
        float, typer.Option(min=0.5, help="Seconds of inference per compression setting.")
    ] = DEFAULT_INFERENCE_S,
    region: Annotated[
        str | None, typer.Option(help="ISO country code for CO2e (default CARBON_REGION).")
    ] = None,
    simulate_gpu: Annotated[
        bool,
        typer.Option(
            "--simulate-gpu",
            help="Also measure a simulated H100 (runs are marked simulated), to see GPU data "
            "on a machine without one.",
        ),
    ] = False,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Then serve the dashboard on the demo's runs (on loopback) until Ctrl-C.",
        ),
    ] = False,
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port of the dashboard with --serve.")
    ] = 8000,
) -> None:
    """Train a small model on scikit-learn's digits and compare compressed inference."""
    from carbon.demo import run_demo
    from carbon.settings import load_settings

    settings = load_settings(region=region, simulate_gpus=1 if simulate_gpu else None)
    run_demo(settings, epochs=epochs, inference_s=inference_s, echo=typer.echo)
    if serve:
        from carbon.cli.serve import serve as serve_command

        typer.echo("")
        serve_command(host="127.0.0.1", port=port, workers=1)
