"""Power sources: one small protocol, one module per backend, and a factory that finds them.

:class:`PowerSource` is the protocol every backend follows (``devices``, ``read(now_s)``,
``close()``); :func:`detect_sources` opens the backends this machine supports, in a
documented order, and returns fresh objects. Backends: ``rapl`` (CPU packages and DRAM,
measured), ``cpu_estimate`` and ``ram_estimate`` (documented models, labelled estimated).
"""

from carbon.sources.base import Component, DeviceInfo, DeviceReading, PowerSource, Provenance
from carbon.sources.detect import ProbeResult, detect_sources, probe_machine

__all__ = [
    "Component",
    "DeviceInfo",
    "DeviceReading",
    "PowerSource",
    "ProbeResult",
    "Provenance",
    "detect_sources",
    "probe_machine",
]
