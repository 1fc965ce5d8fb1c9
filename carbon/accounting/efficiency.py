"""Energy and compute efficiency of a run: joules per FLOP, achieved FLOP/s and MFU.

Pure functions, no I/O. Each takes what a run knows (its energy in joules, its FLOP count,
its duration, the peak of its devices) and returns None when an input it needs is
unknown, so a run without a FLOP count or on a CPU without a known peak gets "unknown"
rather than a made-up number. Values that cannot be right (negative energy, NaN) raise
:class:`ValueError`.
"""

from __future__ import annotations

import math

__all__ = ["achieved_flops_per_s", "flops_per_joule", "joules_per_flop", "mfu"]


def _check(name: str, value: float | None) -> float | None:
    """Reject NaN, infinite and negative values; pass None through."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number or None, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {value}")
    return float(value)


def joules_per_flop(energy_j: float | None, flops: float | None) -> float | None:
    """Return the energy spent per floating-point operation, in joules.

    Args:
        energy_j: Energy of the run, in joules.
        flops: FLOPs the run performed (counted or analytic).

    Returns:
        ``energy_j / flops``, or None when either is unknown or ``flops`` is 0.

    Raises:
        ValueError: A value is negative, NaN or infinite.
    """
    energy = _check("energy_j", energy_j)
    work = _check("flops", flops)
    if energy is None or work is None or work == 0:
        return None
    return energy / work


def flops_per_joule(energy_j: float | None, flops: float | None) -> float | None:
    """Return the floating-point operations per joule, the inverse of :func:`joules_per_flop`.

    Returns:
        ``flops / energy_j``, or None when either is unknown or ``energy_j`` is 0.

    Raises:
        ValueError: A value is negative, NaN or infinite.
    """
    energy = _check("energy_j", energy_j)
    work = _check("flops", flops)
    if energy is None or work is None or energy == 0:
        return None
    return work / energy


def achieved_flops_per_s(flops: float | None, duration_s: float | None) -> float | None:
    """Return the FLOP rate a run achieved over its wall-clock duration.

    Returns:
        ``flops / duration_s``, or None when either is unknown or ``duration_s`` is 0.

    Raises:
        ValueError: A value is negative, NaN or infinite.
    """
    work = _check("flops", flops)
    duration = _check("duration_s", duration_s)
    if work is None or duration is None or duration == 0:
        return None
    return work / duration


def mfu(
    flops: float | None,
    duration_s: float | None,
    peak_flops_per_device: float | None,
    device_count: int | None,
) -> float | None:
    """Return the model FLOPs utilisation: achieved FLOP/s over the devices' peak FLOP/s.

    PaLM (Chowdhery et al. 2022, appendix B) defines MFU as the observed throughput
    (tokens per second) times the model FLOPs per token, divided by the theoretical peak
    FLOP/s of the hardware. With ``flops`` the model FLOPs of the whole run (all devices)
    that is ``flops / duration_s / (peak_flops_per_device x device_count)``. Model FLOPs
    leave out rematerialisation, so MFU is at most the hardware FLOPs utilisation.

    The result is returned as computed, never clamped. A value above 1 cannot happen on
    real hardware: it means a wrong input, typically a peak for another precision (an
    fp32 peak for a bf16 run), a "with sparsity" peak, FLOPs of several devices divided by
    the peak of one, or a duration that misses part of the work. Clamping would hide the
    mistake, so the caller (or a report) should flag it instead.

    Args:
        flops: Model FLOPs of the run, summed over all devices.
        duration_s: Wall-clock duration of the run, in seconds.
        peak_flops_per_device: Peak dense FLOP/s of one device at the run's precision
            (:func:`carbon.accounting.catalog.peak_flops`).
        device_count: Number of devices the work ran on.

    Returns:
        The fraction (0.46 for 46 %), or None when an input is unknown, ``device_count``
        or ``duration_s`` is 0.

    Raises:
        ValueError: A value is negative, NaN or infinite, or the peak is 0.
    """
    if device_count is not None and (
        isinstance(device_count, bool) or not isinstance(device_count, int)
    ):
        raise TypeError(f"device_count must be an int or None, got {type(device_count).__name__}")
    count = _check("device_count", device_count)
    peak = _check("peak_flops_per_device", peak_flops_per_device)
    if peak == 0:
        raise ValueError("peak_flops_per_device must be positive, got 0")
    achieved = achieved_flops_per_s(flops, duration_s)
    if achieved is None or peak is None or count is None or count == 0:
        return None
    return achieved / (peak * count)
