"""The one settings object: environment variables ``CARBON_*``, then explicit arguments.

No other module reads ``os.environ``; code that needs a setting takes a :class:`Settings`
(or builds one with :func:`load_settings`). A bad value fails at once with a message that
names the variable.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from carbon.errors import ConfigError

ENV_PREFIX = "CARBON_"


class Settings(BaseSettings):
    """Configuration of the agent, the store and the CLI.

    Attributes:
        home: Folder for carbon's own files (the SQLite store, later the spool).
        database_url: SQLAlchemy URL of the store; ``None`` means SQLite at
            ``home/carbon.db``.
        region: Default region of runs (ISO 3166 country code, alpha-2 or alpha-3).
        pue: Power usage effectiveness applied to energy for CO2e (>= 1.0).
        sample_hz: How often the sampler reads the power sources, per second.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    home: Path = Field(default_factory=lambda: Path.home() / ".carbon")
    database_url: str | None = None
    region: str | None = None
    pue: float = 1.0
    sample_hz: float = 10.0

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("pue")
    @classmethod
    def _check_pue(cls, value: float) -> float:
        if not math.isfinite(value) or value < 1.0:
            raise ValueError("PUE must be a finite number >= 1.0 (1.0 means no overhead)")
        return value

    @field_validator("sample_hz")
    @classmethod
    def _check_sample_hz(cls, value: float) -> float:
        if not math.isfinite(value) or not 0.1 <= value <= 1000.0:
            raise ValueError("sampling rate must be between 0.1 and 1000 per second")
        return value

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return value.strip().upper()

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the setting, or SQLite in :attr:`home`."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'carbon.db'}"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment, with explicit overrides on top.

    Args:
        **overrides: Field values that win over the environment (``None`` values are
            ignored, so optional CLI flags can be passed straight through).

    Returns:
        The validated settings.

    Raises:
        ConfigError: A value is invalid; the message names the variable (``CARBON_PUE``)
            or the argument and says what is expected.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            name = field if field in given else ENV_PREFIX + field.upper()
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{name}={error.get('input')!r}: {message}")
        raise ConfigError("invalid setting: " + "; ".join(problems)) from None
