"""The ``co2_eq_emissions`` block of a Hugging Face model card, from stored runs.

:func:`hf_model_card` gives the block of a model card's front matter as YAML, and
:func:`hf_co2_eq_emissions` the same as a mapping: ``emissions`` in grams of CO2e,
location-based and summed over the runs of one model, with its ``source`` (the version of
carbon that recorded each run, and how energy, intensity and PUE were obtained). A run
without a location-based CO2e is refused, never counted as 0; a figure that is not known is
left out. The Llama-style table is :mod:`carbon.reports.modelcard_llama`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from carbon.errors import ConfigError
from carbon.reports.modelcard_runs import (
    check_runs,
    distinct,
    energy_methods,
    intensity_text,
    pue_text,
    simulated_note,
    versions,
)

__all__ = ["hf_co2_eq_emissions", "hf_model_card"]


def hf_co2_eq_emissions(
    summaries: Sequence[Mapping[str, Any]], *, training_type: str | None = None
) -> dict[str, Any]:
    """The ``co2_eq_emissions`` mapping of a Hugging Face model card for these runs.

    Keys, in this order: ``emissions`` (grams CO2e, location-based, summed over the runs),
    ``source`` (carbon's version, the run ids, how energy, intensity and PUE were obtained),
    then ``training_type``, ``geographical_location`` and ``hardware_used`` where known;
    an unknown one is left out rather than guessed.

    Args:
        summaries: Run summaries of one model's training, in the order to list them.
        training_type: ``pre-training``, ``fine-tuning``, ...; ``None`` takes the runs'
            ``training_type`` tags.

    Raises:
        ConfigError: No runs, a run given twice, a run without CO2e, or an empty
            ``training_type``.
    """
    check_runs(summaries)
    if training_type is not None and not training_type.strip():
        raise ConfigError("--training-type is empty: give pre-training, fine-tuning, ...")
    ids = ", ".join(str(s["id"]) for s in summaries)
    source = (
        f"{versions(summaries)}, run(s) {ids}: {energy_methods(summaries)}; location-based, "
        f"grid intensity {'; '.join(distinct(intensity_text(s) for s in summaries))}; "
        + "; ".join(distinct(pue_text(s) for s in summaries))
    )
    simulated = simulated_note(summaries)
    if simulated:
        source += f"; SIMULATED: {simulated}"
    block: dict[str, Any] = {
        "emissions": math.fsum(float(s["co2e_g"]) for s in summaries),
        "source": source,
    }
    tagged = distinct(
        tag.strip()
        for s in summaries
        if isinstance(tag := (s["tags"] or {}).get("training_type"), str) and tag.strip()
    )
    if training_type is not None:
        block["training_type"] = training_type.strip()
    elif tagged:
        block["training_type"] = ", ".join(tagged)
    locations = distinct(loc for s in summaries if (loc := _location(s)) is not None)
    if locations:
        block["geographical_location"] = "; ".join(locations)
    hardware = distinct(label for s in summaries if (label := _hardware_label(s)) is not None)
    if hardware:
        block["hardware_used"] = "; ".join(hardware)
    return block


def hf_model_card(
    summaries: Sequence[Mapping[str, Any]], *, training_type: str | None = None
) -> str:
    """The runs' ``co2_eq_emissions`` block as YAML, ready for a model card's front matter.

    The text is one top-level mapping (no ``---`` fences), so it can be pasted between the
    fences of an existing front matter. Strings are double-quoted and numbers written in
    full (never in exponent form, which YAML 1.1 readers take for a string).

    Args:
        summaries: Run summaries of one model's training.
        training_type: See :func:`hf_co2_eq_emissions`.

    Raises:
        ConfigError: See :func:`hf_co2_eq_emissions`.
    """
    block = hf_co2_eq_emissions(summaries, training_type=training_type)
    lines = ["co2_eq_emissions:"]
    for key, value in block.items():
        text = _yaml_number(value) if isinstance(value, float) else _yaml_string(str(value))
        lines.append(f"  {key}: {text}")
    return "\n".join(lines) + "\n"


def _yaml_number(value: float) -> str:
    """A float in positional notation with a decimal point (``0.00001``, ``7.0``)."""
    if not math.isfinite(value):
        raise ValueError(f"{value} cannot be a model card's emissions")
    text = format(Decimal(repr(value)), "f")
    return text if "." in text else f"{text}.0"


def _yaml_string(value: str) -> str:
    """A YAML double-quoted scalar: JSON's escapes, and any other unprintable character."""
    quoted = json.dumps(value, ensure_ascii=False)
    return "".join(char if char.isprintable() else _escape(char) for char in quoted)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _hardware_label(summary: Mapping[str, Any]) -> str | None:
    """The run's GPUs (``8 x NVIDIA H100 80GB HBM3``), else its CPUs; ``None`` if neither."""
    gpus = [d["name"] for d in summary["devices"] if d["component"] == "gpu"]
    if gpus:
        return ", ".join(f"{gpus.count(name)} x {name}" for name in sorted(set(gpus)))
    cpus = sorted({d["name"] for d in summary["devices"] if d["component"] == "cpu"})
    return ", ".join(cpus) if cpus else None


def _location(summary: Mapping[str, Any]) -> str | None:
    """``FRA (grid zone FRA)``; ``None`` without a region."""
    region = summary["region"]
    if region is None:
        return None
    zone = summary["intensity_zone"]
    return f"{region} (grid zone {zone})" if zone else str(region)
