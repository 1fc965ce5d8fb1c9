"""NVML errors become carbon errors here, and only here.

``pynvml`` raises one class per NVML return code (``NVMLError_GpuIsLost``, ...), all
subclasses of ``NVMLError`` carrying the code in ``value``. :func:`nvml_errors` maps them by
code, so it works for the real module and for a simulated one alike:

- the library or driver is missing, the versions disagree, or permission is denied:
  :class:`~carbon.errors.SourceUnavailable`, with what to check;
- the call is not supported on this device (or by this driver):
  :class:`NvmlNotSupported`, which callers catch where a fallback exists;
- anything else while opening: :class:`~carbon.errors.SourceUnavailable` (the source cannot
  be opened, so for this run it is not there);
- the GPU is lost while reading (it fell off the bus, or hung): :class:`NvmlGpuLost`, after
  which the source stops reading that GPU and keeps the energy it had;
- anything else while reading (an unknown error, a timeout):
  :class:`~carbon.errors.SourceError`; the source tries that GPU again at its next read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from carbon.errors import SourceError, SourceUnavailable

__all__ = ["NvmlGpuLost", "NvmlNotSupported", "nvml_errors"]

# NVML return codes (nvml.h); stable across driver versions.
_NOT_SUPPORTED = 3
_NO_PERMISSION = 4
_DRIVER_NOT_LOADED = 9
_LIBRARY_NOT_FOUND = 12
_FUNCTION_NOT_FOUND = 13
_GPU_IS_LOST = 15
_LIB_RM_VERSION_MISMATCH = 18

_UNAVAILABLE_REASONS = {
    _DRIVER_NOT_LOADED: "the NVIDIA driver is not loaded (no NVIDIA GPU, or no driver installed)",
    _LIBRARY_NOT_FOUND: (
        "the NVML library (libnvidia-ml.so.1 / nvml.dll) was not found: no NVIDIA driver on "
        "this machine, or a container started without the GPU runtime (--gpus)"
    ),
    _NO_PERMISSION: "NVML denied access (insufficient permissions for this call)",
    _LIB_RM_VERSION_MISMATCH: (
        "the NVML library and the kernel driver have different versions (driver updated "
        "without a reboot?)"
    ),
}


class NvmlNotSupported(SourceError):  # noqa: N818 - reads as a state, like SourceUnavailable
    """The NVML call is not supported on this device or driver; a fallback may exist."""


class NvmlGpuLost(SourceError):  # noqa: N818 - reads as a state, like SourceUnavailable
    """The GPU fell off the bus or hung (``NVML_ERROR_GPU_IS_LOST``); a reset brings it back."""


def _code(exc: BaseException) -> int | None:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


def translate(exc: BaseException, what: str, *, opening: bool) -> SourceError:
    """The carbon error for an NVML error raised while doing ``what``.

    Args:
        exc: The ``NVMLError`` raised.
        what: What was being done, for the message (``reading GPU 0's energy counter``).
        opening: Whether the source was being opened (unexpected errors then mean the
            source is unavailable rather than failed).
    """
    code = _code(exc)
    if code in (_NOT_SUPPORTED, _FUNCTION_NOT_FOUND):
        return NvmlNotSupported(f"{what}: not supported ({exc})")
    if code in _UNAVAILABLE_REASONS:
        return SourceUnavailable(f"{what}: {_UNAVAILABLE_REASONS[code]} ({exc})")
    if code == _GPU_IS_LOST:
        detail = "the GPU is lost (fell off the bus, or hung); it needs a reset"
        if opening:
            return SourceUnavailable(f"{what}: {detail}")
        return NvmlGpuLost(f"{what}: {detail}")
    if opening:
        return SourceUnavailable(f"{what}: NVML error {code}: {exc}")
    return SourceError(f"{what}: NVML error {code}: {exc}")


@contextmanager
def nvml_errors(nvml: ModuleType, what: str, *, opening: bool = False) -> Iterator[None]:
    """Translate ``nvml.NVMLError`` raised inside the block (see the module docstring).

    Args:
        nvml: The ``pynvml`` module (or a simulated one) whose ``NVMLError`` to catch.
        what: What the block does, for messages.
        opening: Whether the source is being opened.

    Raises:
        NvmlNotSupported: The call is not supported.
        SourceUnavailable: NVML cannot work here, or the source could not be opened.
        SourceError: A read failed.
    """
    try:
        yield
    except nvml.NVMLError as exc:
        raise translate(exc, what, opening=opening) from exc
