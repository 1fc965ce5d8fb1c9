"""What a tracked run is: one validated, frozen object that ``track()`` forwards everywhere."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from carbon.sources.base import PowerSource

if TYPE_CHECKING:
    from carbon.settings import Settings

RUN_KINDS = ("training", "inference")


@dataclass(frozen=True)
class TrackConfig:
    """The arguments of :func:`carbon.track`, checked once.

    Attributes:
        project: Project the run belongs to.
        name: Name of the run; the decorator defaults it to the function's name.
        kind: ``training`` or ``inference``.
        compression: Settings of the model's compression (``{"precision": "int8"}``);
            any JSON-serialisable mapping.
        tags: Free labels, stored as strings.
        region: ISO country code of where the run executes; overrides ``CARBON_REGION``.
        pue: Power usage effectiveness; overrides ``CARBON_PUE``.
        settings: Settings to use instead of those from the environment.
        sources: Power sources to read instead of the detected ones (tests, simulations).
        simulated: Marks the run as measured on simulated hardware, wherever it is shown.
    """

    project: str = "default"
    name: str | None = None
    kind: str = "training"
    compression: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    region: str | None = None
    pue: float | None = None
    settings: Settings | None = None
    sources: Sequence[PowerSource] | None = None
    simulated: bool = False

    def __post_init__(self) -> None:
        if self.kind not in RUN_KINDS:
            raise ValueError(f"kind must be one of {', '.join(RUN_KINDS)}, not {self.kind!r}")
        if not isinstance(self.project, str) or not self.project.strip():
            raise ValueError(f"project must be a non-empty string, not {self.project!r}")
        if len(self.project) > 200:
            raise ValueError("project must be at most 200 characters")
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise ValueError(f"name must be a non-empty string, not {self.name!r}")
        if self.name is not None and len(self.name) > 200:
            raise ValueError("name must be at most 200 characters")
        if not isinstance(self.compression, Mapping):
            raise ValueError(f"compression must be a mapping, not {type(self.compression)}")
        try:
            json.dumps(dict(self.compression), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"compression must be JSON-serialisable: {exc}") from None
        if not isinstance(self.tags, Mapping):
            raise ValueError(f"tags must be a mapping, not {type(self.tags)}")
        for key, value in self.tags.items():
            if not isinstance(key, str) or not isinstance(value, str | int | float | bool):
                raise ValueError(f"tag {key!r}={value!r}: tags map strings to scalar values")
        object.__setattr__(self, "tags", {k: str(v) for k, v in self.tags.items()})
        object.__setattr__(self, "compression", dict(self.compression))
        if self.pue is not None and (not math.isfinite(self.pue) or self.pue < 1.0):
            raise ValueError(f"pue must be a finite number >= 1.0, not {self.pue!r}")
