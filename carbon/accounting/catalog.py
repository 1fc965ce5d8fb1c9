"""Hardware catalog: peak dense throughput, TDP and memory of data-centre GPUs.

Each :class:`GpuSpec` row holds the vendor's published peak rates for one product, in
FLOP/s (base units, not TFLOP/s), and names the datasheet or whitepaper they come from.
The peaks are the denominators of model FLOPs utilisation
(:func:`carbon.accounting.efficiency.mfu`), so they must be *dense* rates: vendors often
print tensor-core figures "with sparsity" (2:4 structured sparsity doubles them); where a
document printed only the sparse figure, the row halves it and says so in
``sparsity_note``. The MI250X's figures are for the whole module, which the driver shows
as two devices; :func:`peak_flops` gives the peak of one device.

What a precision key means:

* ``fp64``: the highest dense FP64 rate (the FP64 tensor-core or matrix rate where the part
  has one).
* ``fp32``: plain FP32. On NVIDIA parts this is the CUDA-core rate (their tensor cores do
  not take FP32; ``tf32`` is the separate tensor-core rate that fp32 matmuls may run at);
  on AMD Instinct parts it is the FP32 matrix rate.
* ``tf32``, ``fp16``, ``bf16``, ``fp8``: tensor-core (matrix) rates.
* ``int8``: integer tensor-core rate in OPS, not floating-point operations.

A precision the part does not support (V100 has no BF16, A100 no FP8) is absent from the
mapping, never 0. CPUs have no entry: :func:`peak_flops` returns None for them.

:func:`match_gpu` maps the device name NVML (or amd-smi) reports to a row. Names compare
as sets of words, case-insensitively and with separators ignored, so ``NVIDIA L4`` never
matches ``NVIDIA L40S`` and ``NVIDIA A10`` never matches an A100. A MIG slice
(``NVIDIA A100-SXM4-40GB MIG 1g.5gb``) matches nothing: the row's peak is the whole GPU's.
``NVIDIA H100 NVL`` and ``NVIDIA H200 NVL`` have rows of their own, since their peaks and
power differ from both the SXM and the PCIe parts.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "CATALOG",
    "PRECISIONS",
    "GpuSpec",
    "get_gpu",
    "match_gpu",
    "normalize_precision",
    "peak_flops",
]

PRECISIONS = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8")
"""The catalog's precision keys, widest first."""

_TERA = 1e12
_GIB = 1024**3


@dataclass(frozen=True)
class GpuSpec:
    """One GPU product and its published figures.

    Attributes:
        key: Stable identifier, e.g. ``"h100-sxm5"``.
        vendor: ``"NVIDIA"`` or ``"AMD"``.
        name: Human-readable product name.
        form_factor: ``"SXM5"``, ``"PCIe"``, ``"OAM"``...
        peak_flops_per_s: Precision key (see :data:`PRECISIONS`) -> peak dense rate in
            FLOP/s; for ``int8`` the rate is in integer operations per second (OPS).
        tdp_w: Maximum board power the vendor specifies, in watts (the top of the range
            for parts with a configurable limit).
        memory_bytes: Nominal memory, the vendor's "GB" read as GiB (HBM and GDDR parts are
            binary-sized); the driver reports slightly less.
        source: The vendor document the figures come from, by title and year.
        nvml_names: Device names the driver reports for this product.
        sparsity_note: How "with sparsity" figures were treated, when the document had any.
        logical_devices: How many devices the driver shows for one package (an MI250X is
            two GCDs, each its own device); the peaks are for the whole package.
    """

    key: str
    vendor: str
    name: str
    form_factor: str
    peak_flops_per_s: Mapping[str, float] = field(hash=False)
    tdp_w: float
    memory_bytes: int
    source: str
    nvml_names: tuple[str, ...] = ()
    sparsity_note: str | None = None
    logical_devices: int = 1

    def __post_init__(self) -> None:
        unknown = set(self.peak_flops_per_s) - set(PRECISIONS)
        if unknown:
            raise ValueError(f"{self.key}: unknown precision keys {sorted(unknown)}")
        for precision, rate in self.peak_flops_per_s.items():
            if not (math.isfinite(rate) and rate > 0):
                raise ValueError(f"{self.key}: peak for {precision} must be positive, got {rate}")
        if self.logical_devices < 1:
            raise ValueError(f"{self.key}: logical_devices must be at least 1")


def _tflops(**tflop_per_s: float) -> Mapping[str, float]:
    """Turn the TFLOP/s (TOPS for int8) figures of a datasheet into FLOP/s."""
    return MappingProxyType({key: value * _TERA for key, value in tflop_per_s.items()})


_HALVED = "tensor-core figures printed with sparsity only; halved here for dense peaks"
_DENSE_PRINTED = "dense figures as printed; the starred 'with sparsity' figures are not used"
_V100 = "NVIDIA V100 Tensor Core GPU datasheet (2020); fp16 is the Tensor Performance figure"
_FP64_TC = "; fp64 is the FP64 Tensor Core figure"
_A100 = "NVIDIA A100 Tensor Core GPU datasheet (2021)" + _FP64_TC
_H100_PCIE = "NVIDIA H100 Tensor Core GPU datasheet (2022), H100 PCIe column" + _FP64_TC
_H100_NVL = "NVIDIA H100 Tensor Core GPU datasheet (2023), H100 NVL column" + _FP64_TC
_H200_SXM = "NVIDIA H200 Tensor Core GPU datasheet (2024), H200 SXM column" + _FP64_TC
_H200_NVL = "NVIDIA H200 Tensor Core GPU datasheet (2024), H200 NVL column" + _FP64_TC
_A100_2020 = "NVIDIA A100 Tensor Core GPU datasheet (2020), A100 40GB PCIe column" + _FP64_TC
_H100_WP = (
    "NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022), H100 SXM5 column of the "
    "A100/H100 comparison table" + _FP64_TC
)
_B200 = (
    "NVIDIA HGX B200 datasheet (2024), per-GPU specifications; fp64 is the FP64/FP64 "
    "Tensor Core figure"
)
_MI250X = (
    "AMD Instinct MI250X accelerator data sheet (2021): peak matrix rates, no sparsity "
    "figures; tdp_w is the 560 W peak board power (500 W typical)"
)
_HOPPER_NVL = _tflops(fp64=60, fp32=60, tf32=417.5, fp16=835.5, bf16=835.5, fp8=1670.5, int8=1670.5)
_V100_SXM2 = _tflops(fp64=7.8, fp32=15.7, fp16=125)
_V100_PCIE = _tflops(fp64=7, fp32=14, fp16=112)
_A100_PEAKS = _tflops(fp64=19.5, fp32=19.5, tf32=156, fp16=312, bf16=312, int8=624)


def _row(
    key: str,
    name: str,
    form_factor: str,
    *,
    peaks: Mapping[str, float],
    tdp_w: float,
    memory_gib: int,
    source: str,
    names: tuple[str, ...],
    sparsity_note: str | None = None,
    vendor: str = "NVIDIA",
    logical_devices: int = 1,
) -> GpuSpec:
    """Build a row; keeps the table below to the figures themselves."""
    return GpuSpec(
        key=key,
        vendor=vendor,
        name=name,
        form_factor=form_factor,
        peak_flops_per_s=peaks,
        tdp_w=tdp_w,
        memory_bytes=memory_gib * _GIB,
        source=source,
        nvml_names=names,
        sparsity_note=sparsity_note,
        logical_devices=logical_devices,
    )


# fmt: off
CATALOG: tuple[GpuSpec, ...] = (
    _row("v100-sxm2-16gb", "NVIDIA V100 SXM2 16GB", "SXM2", peaks=_V100_SXM2, tdp_w=300,
         memory_gib=16, source=_V100, names=("Tesla V100-SXM2-16GB",)),
    _row("v100-sxm2-32gb", "NVIDIA V100 SXM2 32GB", "SXM2", peaks=_V100_SXM2, tdp_w=300,
         memory_gib=32, source=_V100, names=("Tesla V100-SXM2-32GB",)),
    _row("v100-pcie-16gb", "NVIDIA V100 PCIe 16GB", "PCIe", peaks=_V100_PCIE, tdp_w=250,
         memory_gib=16, source=_V100, names=("Tesla V100-PCIE-16GB",)),
    _row("v100-pcie-32gb", "NVIDIA V100 PCIe 32GB", "PCIe", peaks=_V100_PCIE, tdp_w=250,
         memory_gib=32, source=_V100, names=("Tesla V100-PCIE-32GB",)),
    _row("v100s-pcie-32gb", "NVIDIA V100S PCIe 32GB", "PCIe",
         peaks=_tflops(fp64=8.2, fp32=16.4, fp16=130), tdp_w=250, memory_gib=32, source=_V100,
         names=("Tesla V100S-PCIE-32GB",)),
    _row("a10", "NVIDIA A10", "PCIe",
         peaks=_tflops(fp32=31.2, tf32=62.5, fp16=125, bf16=125, int8=250), tdp_w=150,
         memory_gib=24, source="NVIDIA A10 Tensor Core GPU datasheet (2021)",
         names=("NVIDIA A10",), sparsity_note=_DENSE_PRINTED),
    _row("a100-sxm4-40gb", "NVIDIA A100 SXM4 40GB", "SXM4", peaks=_A100_PEAKS, tdp_w=400,
         memory_gib=40, source=_A100, names=("NVIDIA A100-SXM4-40GB",),
         sparsity_note=_DENSE_PRINTED),
    _row("a100-sxm4-80gb", "NVIDIA A100 SXM4 80GB", "SXM4", peaks=_A100_PEAKS, tdp_w=400,
         memory_gib=80, source=_A100, names=("NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM-80GB"),
         sparsity_note=_DENSE_PRINTED),
    _row("a100-pcie-40gb", "NVIDIA A100 PCIe 40GB", "PCIe", peaks=_A100_PEAKS, tdp_w=250,
         memory_gib=40, source=_A100_2020, names=("NVIDIA A100-PCIE-40GB",),
         sparsity_note=_DENSE_PRINTED),
    _row("a100-pcie-80gb", "NVIDIA A100 PCIe 80GB", "PCIe", peaks=_A100_PEAKS, tdp_w=300,
         memory_gib=80, source=_A100, names=("NVIDIA A100 80GB PCIe", "NVIDIA A100-PCIE-80GB"),
         sparsity_note=_DENSE_PRINTED),
    _row("l4", "NVIDIA L4", "PCIe",
         peaks=_tflops(fp32=30.3, tf32=60, fp16=121, bf16=121, fp8=242.5, int8=242.5),
         tdp_w=72, memory_gib=24, source="NVIDIA L4 Tensor Core GPU datasheet (2023)",
         names=("NVIDIA L4",), sparsity_note=_HALVED),
    _row("l40s", "NVIDIA L40S", "PCIe",
         peaks=_tflops(fp32=91.6, tf32=183, fp16=362.05, bf16=362.05, fp8=733, int8=733),
         tdp_w=350, memory_gib=48, source="NVIDIA L40S GPU datasheet (2023)",
         names=("NVIDIA L40S",), sparsity_note=_DENSE_PRINTED),
    _row("h100-sxm5", "NVIDIA H100 SXM5 80GB", "SXM5",
         peaks=_tflops(fp64=66.9, fp32=66.9, tf32=494.7, fp16=989.4, bf16=989.4, fp8=1978.9,
                       int8=1978.9),
         tdp_w=700, memory_gib=80, source=_H100_WP, sparsity_note=_DENSE_PRINTED,
         names=("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM5 80GB")),
    _row("h100-pcie", "NVIDIA H100 PCIe 80GB", "PCIe",
         peaks=_tflops(fp64=51, fp32=51, tf32=378, fp16=756.5, bf16=756.5, fp8=1513, int8=1513),
         tdp_w=350, memory_gib=80, source=_H100_PCIE,
         names=("NVIDIA H100 PCIe",), sparsity_note=_HALVED),
    _row("h100-nvl", "NVIDIA H100 NVL 94GB", "PCIe", peaks=_HOPPER_NVL, tdp_w=400,
         memory_gib=94, source=_H100_NVL, names=("NVIDIA H100 NVL",),
         sparsity_note=_HALVED),
    _row("h200-sxm", "NVIDIA H200 SXM 141GB", "SXM5",
         peaks=_tflops(fp64=67, fp32=67, tf32=494.5, fp16=989.5, bf16=989.5, fp8=1979, int8=1979),
         tdp_w=700, memory_gib=141, source=_H200_SXM,
         names=("NVIDIA H200",), sparsity_note=_HALVED),
    _row("h200-nvl", "NVIDIA H200 NVL 141GB", "PCIe", peaks=_HOPPER_NVL, tdp_w=600,
         memory_gib=141, source=_H200_NVL, names=("NVIDIA H200 NVL",),
         sparsity_note=_HALVED),
    _row("b200", "NVIDIA B200 (HGX)", "SXM6",
         peaks=_tflops(fp64=37, fp32=75, tf32=1100, fp16=2250, bf16=2250, fp8=4500, int8=4500),
         tdp_w=1000, memory_gib=180, source=_B200, names=("NVIDIA B200",),
         sparsity_note=_HALVED + " (TF32 printed as 2.2 PFLOP/s, so 1.1)"),
    _row("mi250x", "AMD Instinct MI250X", "OAM", vendor="AMD", logical_devices=2,
         peaks=_tflops(fp64=95.7, fp32=95.7, fp16=383, bf16=383, int8=383),
         tdp_w=560, memory_gib=128, source=_MI250X, names=("AMD Instinct MI250X",)),
    _row("mi300x", "AMD Instinct MI300X", "OAM", vendor="AMD",
         peaks=_tflops(fp64=163.4, fp32=163.4, tf32=653.7, fp16=1307.4, bf16=1307.4,
                       fp8=2614.9, int8=2614.9),
         tdp_w=750, memory_gib=192, sparsity_note=_DENSE_PRINTED,
         source="AMD Instinct MI300X accelerator data sheet (2023): peak matrix rates",
         names=("AMD Instinct MI300X",)),
)
# fmt: on

_BRAND_WORDS = frozenset({"nvidia", "tesla", "amd", "instinct"})
_SEPARATORS = re.compile(r"[\s\-_/,()]+")


@functools.lru_cache(maxsize=1024)
def _name_words(name: str) -> frozenset[str]:
    """Words of a device name, lower-cased, without separators or brand words."""
    return frozenset(_SEPARATORS.split(name.lower())) - _BRAND_WORDS - {""}


_BY_WORDS: dict[frozenset[str], GpuSpec] = {
    _name_words(alias): spec for spec in CATALOG for alias in spec.nvml_names
}
_BY_KEY: dict[str, GpuSpec] = {spec.key: spec for spec in CATALOG}


def match_gpu(nvml_name: str) -> GpuSpec | None:
    """Return the catalog row for a device name as NVML or amd-smi reports it.

    Args:
        nvml_name: E.g. ``"NVIDIA H100 80GB HBM3"`` or ``"Tesla V100-SXM2-16GB"``.

    Returns:
        The row whose known names have exactly the same words, or None for names the
        catalog does not know (consumer cards, MIG slices, parts without a row).
    """
    return _BY_WORDS.get(_name_words(nvml_name))


def get_gpu(key: str) -> GpuSpec:
    """Return the row with ``key`` (e.g. ``"a100-sxm4-80gb"``).

    Raises:
        KeyError: No row has that key; the message lists the known keys.
    """
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown GPU key {key!r}; known: {', '.join(_BY_KEY)}") from None


_ALIASES: dict[str, str] = {
    **dict.fromkeys(("fp64", "float64", "double", "f64"), "fp64"),
    **dict.fromkeys(("fp32", "float32", "float", "single", "f32"), "fp32"),
    **dict.fromkeys(("tf32", "tensorfloat32", "tensorfloat-32"), "tf32"),
    **dict.fromkeys(("fp16", "float16", "half", "f16"), "fp16"),
    **dict.fromkeys(("bf16", "bfloat16"), "bf16"),
    **dict.fromkeys(("fp8", "float8", "e4m3", "e5m2"), "fp8"),
    **dict.fromkeys(("int8", "qint8", "quint8", "i8"), "int8"),
}


def normalize_precision(text: str) -> str | None:
    """Map a dtype or precision name to a catalog key (see :data:`PRECISIONS`).

    Accepts torch dtype names with or without the ``torch.`` prefix (``"torch.bfloat16"``,
    ``"half"``, ``"float8_e4m3fn"``), the short forms (``"BF16"``, ``"fp32"``, ``"tf32"``)
    and the quantized integer types (``"qint8"``, ``"quint8"``). Case and surrounding
    spaces do not matter. ``uint8`` is not mapped: it is the usual dtype of image data,
    not a compute precision.

    Returns:
        The catalog key, or None when the text names no precision the catalog knows.
    """
    word = text.strip().lower().removeprefix("torch.")
    if word in _ALIASES:
        return _ALIASES[word]
    if word.startswith(("float8_", "fp8_", "fp8-")):
        return "fp8"
    return None


def peak_flops(spec: GpuSpec | None, precision: str) -> float | None:
    """Return the peak dense rate of one device, in FLOP/s (OPS for int8).

    Args:
        spec: A catalog row, or None for hardware without one (CPUs, unknown GPUs).
        precision: A precision name that :func:`normalize_precision` understands.

    Returns:
        The package's peak divided by :attr:`GpuSpec.logical_devices`, so that it is the
        peak of one device as the driver enumerates it; None when ``spec`` is None or the
        part does not support the precision.

    Raises:
        ValueError: ``precision`` names no precision the catalog knows.
    """
    key = normalize_precision(precision)
    if key is None:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if spec is None:
        return None
    rate = spec.peak_flops_per_s.get(key)
    return None if rate is None else rate / spec.logical_devices
