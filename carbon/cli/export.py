"""``carbon export``: model-card exports of stored runs (Hugging Face metadata, Llama table)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from carbon.cli._common import write_atomically
from carbon.errors import ConfigError
from carbon.reports.modelcard import hf_model_card
from carbon.reports.modelcard_llama import llama_table
from carbon.settings import Settings, load_settings


class ExportFormat(StrEnum):
    """What ``carbon export`` writes."""

    HF_MODEL_CARD = "hf-model-card"
    """The ``co2_eq_emissions`` block of a Hugging Face model card's front matter (YAML)."""
    LLAMA_TABLE = "llama-table"
    """A Markdown table in the layout of Meta's Llama model cards, with notes."""


def export_command(
    run_ids: Annotated[
        list[str],
        typer.Argument(
            help="Runs of the model (ids, or unique prefixes of 6+ characters); "
            "their emissions are summed.",
            show_default=False,
        ),
    ],
    output_format: Annotated[
        ExportFormat,
        typer.Option("--format", help="hf-model-card (YAML) or llama-table (Markdown)."),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", dir_okay=False, help="Write to this file (replaced if it exists)."
        ),
    ] = None,
    training_type: Annotated[
        str | None,
        typer.Option(
            help="hf-model-card: pre-training, fine-tuning, ...; default: the runs' "
            "training_type tag, else left out."
        ),
    ] = None,
) -> None:
    """Export runs for a model card: emissions with how every figure was obtained.

    Reads the runs from the store, or from the team server when CARBON_SERVER_URL is set.
    A run without CO2e (tracked without a region) is refused rather than counted as 0.
    """
    if training_type is not None and output_format is not ExportFormat.HF_MODEL_CARD:
        raise ConfigError("--training-type applies to --format hf-model-card only")
    summaries = _summaries(load_settings(), run_ids)
    if output_format is ExportFormat.HF_MODEL_CARD:
        text = hf_model_card(summaries, training_type=training_type)
    else:
        text = llama_table(summaries)
    if output is None:
        typer.echo(text, nl=False)
        return
    write_atomically(output, text.encode("utf-8"))
    typer.echo(f"wrote {output_format.value} for {len(summaries)} run(s) to {output}")


def _summaries(settings: Settings, run_ids: list[str]) -> list[dict[str, Any]]:
    """The runs' summaries, in the order asked, from the team server or the store.

    Raises:
        RunNotFound: An id matches no run, or a prefix matches several.
    """
    if settings.remote:
        from carbon.remote.client import ServerClient

        client = ServerClient.from_settings(settings)
        try:
            return [client.get_run(run_id) for run_id in run_ids]
        finally:
            client.close()
    from carbon.store import open_store
    from carbon.store.queries import get_run
    from carbon.store.summary import run_summary

    with open_store(settings.resolved_database_url).session() as session:
        runs = [get_run(session, run_id) for run_id in run_ids]
        return [run_summary(run) for run in runs]
