"""The GPU catalog: name matching, dense peaks from the datasheets, precision names."""

from __future__ import annotations

import re
import subprocess
import sys
from types import MappingProxyType

import pytest

from carbon.accounting.catalog import (
    CATALOG,
    PRECISIONS,
    GpuSpec,
    get_gpu,
    match_gpu,
    normalize_precision,
    peak_flops,
)

TERA = 1e12
GIB = 1024**3


@pytest.mark.parametrize(
    ("nvml_name", "key"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm5"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA H100 NVL", "h100-nvl"),
        ("NVIDIA H200", "h200-sxm"),
        ("NVIDIA H200 NVL", "h200-nvl"),
        ("NVIDIA A100-SXM4-80GB", "a100-sxm4-80gb"),
        ("NVIDIA A100-SXM4-40GB", "a100-sxm4-40gb"),
        ("NVIDIA A100-PCIE-40GB", "a100-pcie-40gb"),
        ("NVIDIA A100 80GB PCIe", "a100-pcie-80gb"),
        ("A100-SXM4-40GB", "a100-sxm4-40gb"),  # older drivers left out "NVIDIA"
        ("Tesla V100-SXM2-16GB", "v100-sxm2-16gb"),
        ("Tesla V100-SXM2-32GB", "v100-sxm2-32gb"),
        ("Tesla V100-PCIE-32GB", "v100-pcie-32gb"),
        ("Tesla V100S-PCIE-32GB", "v100s-pcie-32gb"),
        ("NVIDIA L4", "l4"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA A10", "a10"),
        ("NVIDIA B200", "b200"),
        ("AMD Instinct MI300X", "mi300x"),
        ("AMD Instinct MI250X", "mi250x"),
        ("  nvidia l40s ", "l40s"),
    ],
)
def test_match_gpu_maps_nvml_names_to_rows(nvml_name: str, key: str) -> None:
    spec = match_gpu(nvml_name)
    assert spec is not None
    assert spec.key == key


@pytest.mark.parametrize(
    "nvml_name",
    [
        "NVIDIA GeForce RTX 4090",
        "Tesla T4",
        "NVIDIA A10G",  # AWS's variant: other clocks and peaks than the A10
        "NVIDIA L40",  # not an L4, not an L40S
        "NVIDIA A100-SXM4-40GB MIG 1g.5gb",  # a slice: the whole GPU's peak would be wrong
        "AMD Instinct MI250X / MI250",  # ambiguous between two parts
        "NVIDIA",
        "",
    ],
)
def test_match_gpu_returns_none_for_unknown_names(nvml_name: str) -> None:
    assert match_gpu(nvml_name) is None


def test_l4_and_l40s_and_a10_and_a100_do_not_cross_match() -> None:
    assert match_gpu("NVIDIA L4") is get_gpu("l4")
    assert match_gpu("NVIDIA L40S") is get_gpu("l40s")
    assert match_gpu("NVIDIA A10") is get_gpu("a10")
    assert match_gpu("NVIDIA A100-PCIE-40GB") is get_gpu("a100-pcie-40gb")


def test_catalog_covers_the_required_parts() -> None:
    keys = {spec.key for spec in CATALOG}
    assert {
        "v100-sxm2-16gb",
        "v100-sxm2-32gb",
        "v100-pcie-16gb",
        "v100-pcie-32gb",
        "a10",
        "a100-sxm4-40gb",
        "a100-sxm4-80gb",
        "a100-pcie-40gb",
        "a100-pcie-80gb",
        "l4",
        "l40s",
        "h100-sxm5",
        "h100-pcie",
        "h200-sxm",
        "b200",
        "mi250x",
        "mi300x",
    } <= keys
    assert len(keys) == len(CATALOG)


def test_every_row_names_its_source_and_has_sane_figures() -> None:
    for spec in CATALOG:
        assert spec.source.strip(), spec.key
        assert re.search(r"\(20\d\d\)", spec.source), f"{spec.key}: source needs its year"
        assert spec.vendor in {"NVIDIA", "AMD"}
        assert 50 <= spec.tdp_w <= 1200, spec.key
        assert spec.memory_bytes >= 16 * GIB, spec.key
        assert set(spec.peak_flops_per_s) <= set(PRECISIONS), spec.key
        assert spec.nvml_names, spec.key


# Dense peaks, in TFLOP/s (TOPS for int8), as REFERENCE.md and the datasheets give them.
@pytest.mark.parametrize(
    ("key", "precision", "tflop_per_s"),
    [
        # V100 datasheet: 15.7 FP32, 125 Tensor (FP16) for SXM2; 14 / 112 for PCIe.
        ("v100-sxm2-16gb", "fp32", 15.7),
        ("v100-sxm2-32gb", "fp16", 125),
        ("v100-pcie-32gb", "fp16", 112),
        # A100 datasheet: "312 | 624*" BF16; the 624 is with sparsity. INT8 624 TOPS dense.
        ("a100-sxm4-80gb", "bf16", 312),
        ("a100-sxm4-40gb", "tf32", 156),
        ("a100-pcie-40gb", "fp32", 19.5),
        ("a100-pcie-80gb", "int8", 624),
        # A10 datasheet: "125 | 250*" BF16, "62.5 | 125*" TF32, FP32 31.2.
        ("a10", "bf16", 125),
        ("a10", "tf32", 62.5),
        ("a10", "fp32", 31.2),
        # L4 datasheet prints only sparse figures: FP8 485*, BF16 242*, TF32 120*.
        ("l4", "fp8", 242.5),
        ("l4", "bf16", 121),
        ("l4", "tf32", 60),
        ("l4", "fp32", 30.3),
        # L40S datasheet: "362.05 | 733*" BF16, "733 | 1,466*" FP8.
        ("l40s", "bf16", 362.05),
        ("l40s", "fp8", 733),
        # H100 whitepaper, SXM5 dense: 989.4 BF16, 1978.9 FP8, 494.7 TF32, 66.9 FP32.
        ("h100-sxm5", "bf16", 989.4),
        ("h100-sxm5", "fp8", 1978.9),
        ("h100-sxm5", "tf32", 494.7),
        ("h100-sxm5", "fp32", 66.9),
        # H100 datasheet, PCIe column, sparse only: BF16 1,513*, FP8 3,026*, TF32 756*.
        ("h100-pcie", "bf16", 756.5),
        ("h100-pcie", "fp8", 1513),
        ("h100-pcie", "tf32", 378),
        ("h100-pcie", "fp32", 51),
        # H200 datasheet, SXM column, sparse only: BF16 1,979*, FP8 3,958*.
        ("h200-sxm", "bf16", 989.5),
        ("h200-sxm", "fp8", 1979),
        # HGX B200, per GPU, sparse only: FP16/BF16 4.5 PF*, FP8 9 PF*; FP32 75 TF.
        ("b200", "bf16", 2250),
        ("b200", "fp8", 4500),
        ("b200", "fp32", 75),
        # MI300X data sheet, dense: BF16 1,307.4, FP8 2,614.9, FP32 163.4.
        ("mi300x", "bf16", 1307.4),
        ("mi300x", "fp8", 2614.9),
        ("mi300x", "fp32", 163.4),
    ],
)
def test_dense_peaks_match_the_datasheets(key: str, precision: str, tflop_per_s: float) -> None:
    assert get_gpu(key).peak_flops_per_s[precision] == pytest.approx(tflop_per_s * TERA)
    assert peak_flops(get_gpu(key), precision) == pytest.approx(tflop_per_s * TERA)


@pytest.mark.parametrize(
    ("key", "tdp_w", "memory_gib"),
    [
        ("v100-sxm2-16gb", 300, 16),
        ("a100-pcie-40gb", 250, 40),
        ("a100-pcie-80gb", 300, 80),
        ("a100-sxm4-80gb", 400, 80),
        ("l4", 72, 24),
        ("l40s", 350, 48),
        ("h100-sxm5", 700, 80),
        ("h200-sxm", 700, 141),
        ("mi300x", 750, 192),
    ],
)
def test_tdp_and_memory(key: str, tdp_w: float, memory_gib: int) -> None:
    spec = get_gpu(key)
    assert spec.tdp_w == tdp_w
    assert spec.memory_bytes == memory_gib * GIB


@pytest.mark.parametrize(
    ("key", "precision"),
    [("v100-sxm2-16gb", "bf16"), ("v100-pcie-16gb", "tf32"), ("a100-sxm4-80gb", "fp8"),
     ("mi250x", "tf32"), ("mi250x", "fp8"), ("l4", "fp64")],
)  # fmt: skip
def test_unsupported_precision_is_absent_not_zero(key: str, precision: str) -> None:
    spec = get_gpu(key)
    assert precision not in spec.peak_flops_per_s
    assert peak_flops(spec, precision) is None


def test_rows_with_halved_figures_say_so() -> None:
    for key in ("l4", "h100-pcie", "h100-nvl", "h200-sxm", "b200"):
        note = get_gpu(key).sparsity_note
        assert note is not None
        assert "halved" in note


def test_mi250x_peak_is_per_gcd() -> None:
    # The data sheet's 383 TFLOP/s BF16 is for the module; ROCm shows each of its two
    # GCDs as its own device, so one device peaks at 383 / 2 = 191.5 TFLOP/s.
    spec = get_gpu("mi250x")
    assert spec.peak_flops_per_s["bf16"] == pytest.approx(383 * TERA)
    assert peak_flops(spec, "bf16") == pytest.approx(191.5 * TERA)


def test_peak_flops_accepts_dtype_names() -> None:
    assert peak_flops(get_gpu("a100-sxm4-80gb"), "torch.bfloat16") == pytest.approx(312 * TERA)
    assert peak_flops(get_gpu("h100-sxm5"), "float8_e4m3fn") == pytest.approx(1978.9 * TERA)


def test_peak_flops_is_none_without_a_spec() -> None:
    assert peak_flops(None, "fp32") is None


def test_peak_flops_rejects_unknown_precision() -> None:
    with pytest.raises(ValueError, match="int4"):
        peak_flops(get_gpu("h100-sxm5"), "int4")


def test_get_gpu_unknown_key() -> None:
    with pytest.raises(KeyError, match="h100-sxm5"):
        get_gpu("h100")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("bfloat16", "bf16"),
        ("torch.bfloat16", "bf16"),
        ("BF16", "bf16"),
        ("half", "fp16"),
        ("float16", "fp16"),
        ("torch.float16", "fp16"),
        ("fp32", "fp32"),
        ("float32", "fp32"),
        ("torch.float32", "fp32"),
        ("float", "fp32"),
        ("float64", "fp64"),
        ("double", "fp64"),
        ("tf32", "tf32"),
        ("TF32", "tf32"),
        ("int8", "int8"),
        ("qint8", "int8"),
        ("torch.quint8", "int8"),
        ("fp8", "fp8"),
        ("float8_e4m3fn", "fp8"),
        ("torch.float8_e5m2", "fp8"),
        (" FP16 ", "fp16"),
    ],
)
def test_normalize_precision(text: str, key: str) -> None:
    assert normalize_precision(text) == key


@pytest.mark.parametrize("text", ["int4", "uint8", "int64", "complex64", "mixed", "", "fp"])
def test_normalize_precision_unknown(text: str) -> None:
    assert normalize_precision(text) is None


def test_gpu_spec_rejects_bad_rows() -> None:
    with pytest.raises(ValueError, match="int4"):
        GpuSpec(
            key="x",
            vendor="NVIDIA",
            name="X",
            form_factor="PCIe",
            peak_flops_per_s=MappingProxyType({"int4": 1e12}),
            tdp_w=100,
            memory_bytes=GIB,
            source="test",
        )
    with pytest.raises(ValueError, match="positive"):
        GpuSpec(
            key="x",
            vendor="NVIDIA",
            name="X",
            form_factor="PCIe",
            peak_flops_per_s=MappingProxyType({"fp32": 0.0}),
            tdp_w=100,
            memory_bytes=GIB,
            source="test",
        )


def test_rows_are_frozen_and_hashable() -> None:
    spec = get_gpu("l4")
    assert hash(spec) == hash(get_gpu("l4"))
    with pytest.raises(AttributeError):
        spec.tdp_w = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.peak_flops_per_s["fp32"] = 1.0  # type: ignore[index]


def test_importing_the_catalog_does_not_import_torch() -> None:
    code = "import sys, carbon.accounting.catalog; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
