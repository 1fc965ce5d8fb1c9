"""Planning estimates reproduce published training footprints from the same inputs.

Each published case states its source, the inputs as the source gives them, the published
result, and how the source's accounting maps onto count x hours x power x PUE x intensity.
Where a figure could not be checked against the primary text it says so.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from carbon.accounting.estimate import Estimate, estimate_training, resolve_gpu
from carbon.errors import ConfigError

REL_1PCT = 0.01


def _off(ours: float, published: float) -> float:
    """Relative difference of our figure from the published one."""
    return ours / published - 1


# --- Patterson et al. 2021, "Carbon Emissions and Large Neural Network Training",
# arXiv:2104.10350, Table 4. Inputs per model: processors x training days, average system
# power per processor (measured, includes the processor's share of host and network),
# data-centre PUE and gCO2e/kWh. The table's energy is processor-hours x power x PUE, which
# is our formula with count = processors and hours = days x 24.
# Checked: GPT-3 1,287 MWh / 552 tCO2e (quoted widely, e.g. the LLMCarbon artifact's
# table4.csv gives 552.1), and the GPT-3 and T5 inputs (chips, days, 330 W / 310 W,
# PUE 1.10 / 1.12, 429 / 545 g/kWh) as transcribed in that artifact; not read from the
# paper's own PDF here. T5's published 85.7 MWh is from memory and not asserted.


def test_patterson_gpt3() -> None:
    result = estimate_training(
        gpu="V100",  # 10,000 V100 GPUs; power is given, so the model only labels
        count=10_000,
        hours=14.8 * 24,
        power_w=330.0,
        pue=1.10,
        intensity_g_per_kwh=429.0,
        intensity_source="Patterson et al. 2021, Table 4 (GPT-3 data centre)",
    )
    # 3,552,000 GPU-hours x 330 W x 1.10 = 1,289.4 MWh (+0.19%); x 429 g = 553.1 t (+0.20%)
    assert abs(_off(result.energy_mwh, 1_287.0)) < REL_1PCT
    assert abs(_off(result.co2e_t, 552.0)) < REL_1PCT
    assert result.co2e_t == pytest.approx(553.142304)


def test_patterson_t5() -> None:
    result = estimate_training(
        gpu="TPUv3",  # not in the catalog: a label, with the published power
        count=512,
        hours=20 * 24,
        power_w=310.0,
        pue=1.12,
        intensity_g_per_kwh=545.0,
    )
    # 245,760 chip-hours x 310 W x 1.12 = 85.33 MWh; x 545 g = 46.50 t vs 46.7 (-0.42%)
    assert abs(_off(result.co2e_t, 46.7)) < REL_1PCT
    assert result.gpu_key is None


# --- Luccioni, Viguier and Ligozat, "Estimating the Carbon Footprint of BLOOM, a 176B
# Parameter Language Model", JMLR 24(253) 2023, arXiv:2211.02001. Final training run:
# 1,082,990 GPU-hours on A100 80GB (384 GPUs, 48 nodes of 8) in France at 57 gCO2eq/kWh;
# "dynamic power consumption" 433,196 kWh = GPU-hours x the 400 W TDP, and 24.69 tCO2eq
# (abstract: 24.7 t). PUE and idle draw are separate lines of the paper's table (idle
# consumption, 14.6 t), so the dynamic line is reproduced with pue=1.0 and the catalog TDP.
# Checked: 24.7 t, 1,082,990 GPU-hours, 433,196 kWh and 0.4 kW per GPU (secondary
# summaries of the paper); 57 g/kWh is from memory and reproduces 24.69 t exactly.


def test_bloom_dynamic_consumption_with_catalog_tdp() -> None:
    result = estimate_training(
        gpu="A100-SXM4-80GB",
        count=384,
        hours=1_082_990 / 384,
        intensity_g_per_kwh=57.0,
        intensity_source="French grid, as used by Luccioni et al. 2023",
    )
    assert result.inputs["power_w"].value == 400.0
    assert result.inputs["power_w"].source.startswith("catalog TDP of NVIDIA A100 SXM4 80GB (")
    assert result.energy_kwh == pytest.approx(433_196.0)  # published, exact
    assert result.co2e_t == pytest.approx(24.692172)  # published 24.69 t (+0.01%)
    assert abs(_off(result.co2e_t, 24.69)) < REL_1PCT


# --- Meta, Llama 2 (Touvron et al. 2023, arXiv:2307.09288, Table 2; the same rows in
# MODEL_CARD.md of github.com/meta-llama/llama): GPU-hours on A100-80GB and "peak power
# capacity per GPU device for the GPUs used adjusted for power usage efficiency" (400 W;
# 350 W for 34B). PUE is folded into the power, so pue=1.0 here. No grid intensity is
# published; every row implies about 423.5 gCO2e/kWh, asserted below, and that figure
# reproduces every row. The model card omits the 34B row but its 3,311,616 h and 539.00 t
# totals include it; the 34B figures are the paper's.

LLAMA2_ROWS = [
    # (model, GPU-hours, W, published tCO2eq)
    ("Llama 2 7B", 184_320, 400.0, 31.22),
    ("Llama 2 13B", 368_640, 400.0, 62.44),
    ("Llama 2 34B", 1_038_336, 350.0, 153.90),
    ("Llama 2 70B", 1_720_320, 400.0, 291.42),
]
LLAMA2_IMPLIED_G_PER_KWH = 423.5


@pytest.mark.parametrize(("model", "gpu_hours", "power_w", "published_t"), LLAMA2_ROWS)
def test_llama2_rows_imply_one_grid_intensity(
    model: str, gpu_hours: int, power_w: float, published_t: float
) -> None:
    energy_kwh = gpu_hours * power_w / 1000
    implied = published_t * 1e6 / energy_kwh  # 423.45-423.49 g/kWh across the rows
    assert implied == pytest.approx(LLAMA2_IMPLIED_G_PER_KWH, rel=1e-3), model


@pytest.mark.parametrize(("model", "gpu_hours", "power_w", "published_t"), LLAMA2_ROWS)
def test_llama2_rows(model: str, gpu_hours: int, power_w: float, published_t: float) -> None:
    result = estimate_training(
        gpu="A100-80GB",  # the card's name; fits the SXM4 and PCIe 80GB rows
        count=1,  # the table gives GPU-hours only
        hours=gpu_hours,
        power_w=power_w,
        intensity_g_per_kwh=LLAMA2_IMPLIED_G_PER_KWH,
        intensity_source="implied by the Llama 2 table (not published)",
        pue_source="folded into power_w by the source",
    )
    assert abs(_off(result.co2e_t, published_t)) < REL_1PCT, model  # all within 0.02%


def test_llama2_total() -> None:
    total_t = sum(
        estimate_training(
            gpu="A100-80GB", count=1, hours=h, power_w=w, intensity_g_per_kwh=423.5
        ).co2e_t
        for _, h, w, _t in LLAMA2_ROWS
    )
    assert abs(_off(total_t, 539.00)) < REL_1PCT  # 539.00 published; ours 539.00
    assert sum(h for _, h, _w, _t in LLAMA2_ROWS) == 3_311_616  # the published total


# --- Meta, Llama 3.1 model card (models/llama3_1/MODEL_CARD.md, github.com/meta-llama/
# llama-models): GPU-hours on "H100-80GB (TDP of 700W)", power "adjusted for power usage
# efficiency", location-based tCO2eq. 700 W is also the catalog TDP of the H100 SXM5, so
# these rows run on the catalog path with pue=1.0. The total row implies 414.0 g/kWh; the
# per-model rows differ from it by up to 0.7% because the card rounds the hours
# (1.46M, 7.0M).

LLAMA31_ROWS = [
    ("Llama 3.1 8B", 1.46e6, 420.0),
    ("Llama 3.1 70B", 7.0e6, 2_040.0),
    ("Llama 3.1 405B", 30.84e6, 8_930.0),
    ("total", 39.3e6, 11_390.0),
]


@pytest.mark.parametrize(("model", "gpu_hours", "published_t"), LLAMA31_ROWS)
def test_llama31_rows_from_catalog_tdp(model: str, gpu_hours: float, published_t: float) -> None:
    result = estimate_training(
        gpu="NVIDIA H100 80GB HBM3",
        count=1,
        hours=gpu_hours,
        intensity_g_per_kwh=414.0,
        intensity_source="implied by the Llama 3.1 card's total (not published)",
    )
    assert result.inputs["power_w"].value == 700.0
    assert result.gpu_key == "h100-sxm5"
    assert abs(_off(result.co2e_t, published_t)) < REL_1PCT, model


# --- Arithmetic and provenance


def test_formula_by_hand() -> None:
    result = estimate_training(
        gpu="l4", count=8, hours=10.0, power_w=400.0, pue=1.2, intensity_g_per_kwh=100.0
    )
    assert result.it_energy_kwh == pytest.approx(32.0)  # 8 x 10 h x 0.4 kW
    assert result.energy_kwh == pytest.approx(38.4)  # x 1.2
    assert result.energy_mwh == pytest.approx(0.0384)
    assert result.co2e_t == pytest.approx(0.00384)  # 38.4 kWh x 100 g = 3.84 kg
    assert result.gpu_hours == 80.0


def test_every_input_says_where_it_came_from() -> None:
    result = estimate_training(
        gpu="NVIDIA L4", count=2, hours=3.0, intensity_g_per_kwh=56.0, intensity_source="FR"
    )
    assert set(result.inputs) == {"gpu", "count", "hours", "power_w", "pue", "intensity_g_per_kwh"}
    assert result.inputs["gpu"] == ("NVIDIA L4", "given; device name of catalog row l4")
    assert result.inputs["count"] == (2, "given")
    assert result.inputs["power_w"].value == 72.0
    assert result.inputs["power_w"].source == (
        "catalog TDP of NVIDIA L4 (NVIDIA L4 Tensor Core GPU datasheet (2023))"
    )
    assert result.inputs["pue"] == (1.0, "default 1.0: IT energy only, no facility overhead")
    assert result.inputs["intensity_g_per_kwh"] == (56.0, "FR")


def test_given_power_and_pue_are_marked_given() -> None:
    result = estimate_training(
        gpu="h100-sxm5", count=1, hours=1.0, power_w=550.0, pue=1.1, intensity_g_per_kwh=1.0
    )
    assert result.inputs["power_w"] == (550.0, "given")
    assert result.inputs["pue"] == (1.1, "given")
    assert result.inputs["intensity_g_per_kwh"] == (1.0, "given")


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("a100-sxm4-80gb", "a100-sxm4-80gb"),
        ("A100-SXM4-80GB", "a100-sxm4-80gb"),
        ("NVIDIA A100-SXM4-80GB", "a100-sxm4-80gb"),
        ("NVIDIA H100 80GB HBM3", "h100-sxm5"),
        ("H200", "h200-sxm"),
        ("L4", "l4"),
        ("A10", "a10"),
        ("Tesla V100-SXM2-16GB", "v100-sxm2-16gb"),
    ],
)
def test_name_forms_resolve(name: str, key: str) -> None:
    found = resolve_gpu(name)
    assert found is not None
    assert found.spec.key == key


def test_short_name_takes_highest_tdp_and_says_so() -> None:
    result = estimate_training(gpu="H100", count=1, hours=1.0, intensity_g_per_kwh=1.0)
    assert result.gpu_key == "h100-sxm5"
    assert result.inputs["power_w"].value == 700.0
    note = result.inputs["gpu"].source
    assert "h100-pcie" in note
    assert "h100-nvl" in note
    assert "highest TDP" in note


def test_unknown_gpu_with_power_is_a_label() -> None:
    result = estimate_training(
        gpu="NVIDIA A100-SXM4-40GB MIG 1g.5gb",
        count=1,
        hours=2.0,
        power_w=50.0,
        intensity_g_per_kwh=100.0,
    )
    assert result.gpu_key is None
    assert "not in the catalog" in result.inputs["gpu"].source
    assert result.co2e_t == pytest.approx(1e-5)


def test_unknown_gpu_without_power_names_it_and_close_keys() -> None:
    with pytest.raises(ConfigError) as info:
        estimate_training(gpu="H100 SXM", count=1, hours=1.0, intensity_g_per_kwh=1.0)
    message = str(info.value)
    assert "'H100 SXM'" in message
    assert "h100-sxm5" in message
    assert "power_w" in message


def test_unknown_gpu_without_close_keys_lists_the_catalog() -> None:
    with pytest.raises(ConfigError, match=r"'RTX 4090'.*catalog keys: .*a100-sxm4-80gb"):
        estimate_training(gpu="RTX 4090", count=1, hours=1.0, intensity_g_per_kwh=1.0)


def test_mig_slice_has_no_catalog_tdp() -> None:
    with pytest.raises(ConfigError, match="unknown GPU"):
        estimate_training(
            gpu="NVIDIA A100-SXM4-40GB MIG 1g.5gb", count=1, hours=1.0, intensity_g_per_kwh=1.0
        )


GOOD = {"gpu": "a100-sxm4-80gb", "count": 1, "hours": 1.0, "intensity_g_per_kwh": 100.0}


@pytest.mark.parametrize(
    ("override", "argument"),
    [
        ({"count": 0}, "count"),
        ({"count": -4}, "count"),
        ({"count": 2.5}, "count"),
        ({"count": True}, "count"),
        ({"hours": 0.0}, "hours"),
        ({"hours": -1.0}, "hours"),
        ({"hours": math.nan}, "hours"),
        ({"hours": math.inf}, "hours"),
        ({"power_w": 0.0}, "power_w"),
        ({"power_w": -300.0}, "power_w"),
        ({"power_w": math.nan}, "power_w"),
        ({"pue": 0.9}, "pue"),
        ({"pue": math.nan}, "pue"),
        ({"intensity_g_per_kwh": -1.0}, "intensity_g_per_kwh"),
        ({"intensity_g_per_kwh": math.nan}, "intensity_g_per_kwh"),
        ({"gpu": "  "}, "gpu"),
    ],
)
def test_bad_arguments_are_named(override: dict[str, object], argument: str) -> None:
    with pytest.raises(ConfigError, match=f"^{argument} ") as info:
        estimate_training(**{**GOOD, **override})  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_zero_intensity_is_a_real_zero() -> None:
    result = estimate_training(**{**GOOD, "intensity_g_per_kwh": 0.0})  # type: ignore[arg-type]
    assert result.co2e_t == 0.0
    assert result.energy_kwh == pytest.approx(0.4)


def test_estimate_is_frozen() -> None:
    result = estimate_training(**GOOD)  # type: ignore[arg-type]
    assert isinstance(result, Estimate)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.co2e_t = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.inputs["pue"] = (2.0, "edited")  # type: ignore[index]
