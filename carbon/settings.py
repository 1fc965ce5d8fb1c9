"""The one settings object: environment variables ``CARBON_*``, then explicit arguments.

No other module reads ``os.environ``; code that needs a setting takes a :class:`Settings`
(or builds one with :func:`load_settings`). A bad value fails at once with a message that
names the variable.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from carbon.errors import ConfigError

ENV_PREFIX = "CARBON_"


class Settings(BaseSettings):
    """Configuration of the agent, the store and the CLI.

    Attributes:
        home: Folder for carbon's own files (the SQLite store, later the spool).
        database_url: SQLAlchemy URL of the store; ``None`` means SQLite at
            ``home/carbon.db``.
        region: Default region of runs: a country (``FR``), a sub-region (``US-CA``,
            ``SE3``) or a cloud region (``gcp:europe-west1``).
        pue: Power usage effectiveness applied to energy for CO2e (>= 1.0); unset means the
            cloud provider's published figure for a cloud region, else 1.0.
        electricitymaps_token: Electricity Maps API token: when set, runs are priced with
            the live intensity of their zone at their start.
        electricitymaps_url: Base URL of the Electricity Maps API.
        sample_hz: How often the sampler reads the power sources, per second.
        simulate_gpus: Measure this many simulated GPUs instead of real ones (demos and
            tests without a GPU); such runs are marked simulated everywhere.
        cuda_visible_devices: ``CUDA_VISIBLE_DEVICES`` as the process sees it (indices or
            ``GPU-...`` UUIDs); ``None`` means every GPU.
        rank: Global rank of this process in a distributed job (``RANK``,
            ``SLURM_PROCID``).
        local_rank: Rank on this node (``LOCAL_RANK``, ``SLURM_LOCALID``).
        world_size: Processes in the job (``WORLD_SIZE``, ``SLURM_NTASKS``).
        local_world_size: Processes on this node (``LOCAL_WORLD_SIZE``).
        job_id: Identifies the job, so its ranks write one run (``CARBON_JOB_ID``,
            ``SLURM_JOB_ID``, ``TORCHELASTIC_RUN_ID``).
        server_url: Team server the agent reports to (``https://carbon.example.org``);
            when set, with :attr:`api_key`, runs go there instead of the database.
        api_key: The team's key the agent (role ``ingest``) or a reader presents.
        spool_max_mb: Largest size of the agent's on-disk spool, megabytes.
        flush_timeout_s: How long the end of a run waits for the server to take what is
            spooled before leaving it for the next start or ``carbon sync``.
        heartbeat_timeout_s: Server: a running run with no data nor heartbeat for this long
            is marked ``interrupted``.
        max_body_mb: Server: largest request body accepted, megabytes.
        rate_limit_per_s: Server: requests per second allowed per API key (and replica),
            with bursts of twice as many.
        sample_retention_days: Server: raw samples older than this are rolled up into
            per-minute aggregates and dropped; ``None`` keeps them all.
        maintenance_interval_s: Server: how often it marks silent runs and applies retention.
        metrics_token: Server: bearer token ``/metrics`` asks for; ``None`` leaves it open.
        session_secret: Server: key that signs dashboard login cookies; give the same one
            to every replica. ``None``: a random one per start, so logins end on restart.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, populate_by_name=True
    )

    home: Path = Field(default_factory=lambda: Path.home() / ".carbon")
    database_url: str | None = Field(default=None, repr=False)  # it may hold a password
    region: str | None = None
    pue: float | None = None
    sample_hz: float = 10.0
    electricitymaps_token: SecretStr | None = None
    electricitymaps_url: str = "https://api.electricitymap.org"
    simulate_gpus: int = Field(default=0, ge=0, le=64)
    cuda_visible_devices: str | None = Field(
        default=None, validation_alias=AliasChoices("CUDA_VISIBLE_DEVICES")
    )
    rank: int | None = Field(
        default=None, ge=0, validation_alias=AliasChoices("RANK", "SLURM_PROCID")
    )
    local_rank: int | None = Field(
        default=None, ge=0, validation_alias=AliasChoices("LOCAL_RANK", "SLURM_LOCALID")
    )
    world_size: int | None = Field(
        default=None, ge=1, validation_alias=AliasChoices("WORLD_SIZE", "SLURM_NTASKS")
    )
    local_world_size: int | None = Field(
        default=None, ge=1, validation_alias=AliasChoices("LOCAL_WORLD_SIZE")
    )
    job_id: str | None = Field(
        default=None,
        max_length=128,
        validation_alias=AliasChoices("CARBON_JOB_ID", "SLURM_JOB_ID", "TORCHELASTIC_RUN_ID"),
    )

    server_url: str | None = None
    api_key: SecretStr | None = None
    spool_max_mb: float = Field(default=512.0, gt=0, allow_inf_nan=False)
    flush_timeout_s: float = Field(default=10.0, ge=0, le=3600, allow_inf_nan=False)
    heartbeat_timeout_s: float = Field(default=300.0, gt=0, allow_inf_nan=False)
    max_body_mb: float = Field(default=16.0, gt=0, allow_inf_nan=False)
    rate_limit_per_s: float = Field(default=100.0, gt=0, allow_inf_nan=False)
    sample_retention_days: int | None = Field(default=None, ge=1)
    maintenance_interval_s: float = Field(default=60.0, gt=0, allow_inf_nan=False)
    metrics_token: SecretStr | None = None
    session_secret: SecretStr | None = Field(default=None, min_length=32)

    @field_validator("server_url")
    @classmethod
    def _check_server_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")) or value[-3:] == "://":
            raise ValueError("the server URL must start with http:// or https:// and name a host")
        return value

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("pue")
    @classmethod
    def _check_pue(cls, value: float | None) -> float | None:
        if value is None:
            return None
        if not math.isfinite(value) or value < 1.0:
            raise ValueError("PUE must be a finite number >= 1.0 (1.0 means no overhead)")
        return value

    @field_validator("sample_hz")
    @classmethod
    def _check_sample_hz(cls, value: float) -> float:
        if not math.isfinite(value) or not 0.1 <= value <= 1000.0:
            raise ValueError("sampling rate must be between 0.1 and 1000 per second")
        return value

    @field_validator("job_id")
    @classmethod
    def _check_job_id(cls, value: str | None) -> str | None:
        if value is None or not value.strip() or value.strip().lower() == "none":
            return None
        return value.strip()

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return value.strip()

    @property
    def distributed(self) -> bool:
        """Whether this process is one rank of a job whose ranks write one run together."""
        return (self.world_size or 1) > 1 and self.job_id is not None

    @property
    def remote(self) -> bool:
        """Whether runs go to a team server rather than to a database."""
        return self.server_url is not None

    @property
    def spool_path(self) -> Path:
        """The agent's on-disk spool of records not yet taken by the server."""
        return self.home / "spool.db"

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the setting, or SQLite in :attr:`home`."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'carbon.db'}"


SECRET_FIELDS = frozenset(
    {"database_url"}
    | {name for name, info in Settings.model_fields.items() if info.annotation == SecretStr | None}
)
"""Settings whose values an error message never shows: tokens, keys, the database URL."""


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
            name = field if field in given or field.isupper() else ENV_PREFIX + field.upper()
            message = str(error["msg"]).removeprefix("Value error, ")
            shown = "<hidden>" if field in SECRET_FIELDS else repr(error.get("input"))
            problems.append(f"{name}={shown}: {message}")
        raise ConfigError("invalid setting: " + "; ".join(problems)) from None
