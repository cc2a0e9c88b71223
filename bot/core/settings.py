"""fwbot's one settings object (SPEC §3).

Read from the environment, a ``.env`` file and an optional ``fwbot.toml`` (same keys, any case).
Durations use Go syntax and are stored as seconds.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.core.durations import parse_go_duration
from bot.core.lifecycle import LifecyclePolicy

# The lifecycle's defaults are LifecyclePolicy's (SPEC §3); the settings only read them from the environment.
_POLICY = LifecyclePolicy()

# List prices of 2026-10-07 (fireworks/contract.md §4), USD per GPU-hour.
LIST_PRICES_USD_PER_GPU_HOUR: dict[str, float] = {
    "NVIDIA_H100_80GB": 8.0,
    "NVIDIA_H200_141GB": 8.0,
    "NVIDIA_B200_180GB": 13.0,
    "NVIDIA_B300_288GB": 15.0,
    # The list also prices the GB300 ($20.00), but Fireworks' API documents no accelerator type
    # for it, so fwbot has no name to ask for one by.
}
LIST_PRICES_AS_OF = "2026-10-07"
LEADER_LEASE_FLOOR_S = 15.0


def _csv(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [p.strip() for p in str(value).split(",") if p.strip()]


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a duration like 30s, 5m or 1h30m")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        try:
            seconds = parse_go_duration(str(value))
        except ValueError as e:
            raise ValueError(f"must be a duration like 30s, 5m or 1h30m ({e})") from None
    if not math.isfinite(seconds):
        raise ValueError("must be a finite duration like 30s, 5m or 1h30m")
    return seconds


def _period(value: Any) -> float:
    seconds = _seconds(value)
    if seconds <= 0:
        raise ValueError("must be a positive duration like 30s, 5m or 1h30m")
    return seconds


def _lead(value: Any) -> float:
    seconds = _seconds(value)
    if seconds < 0:
        raise ValueError("must be a duration of 0 or more, like 10m or 1h")
    return seconds


def settings_problems(error: ValidationError) -> list[str]:
    """One line per bad setting: the key, the value given and what is allowed."""
    lines = []
    for err in error.errors():
        key = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        value = err.get("input")
        shown = "(hidden)" if any(w in key.upper() for w in ("TOKEN", "SECRET", "API_KEY", "DATABASE_URL")) else repr(value)
        msg = str(err.get("msg", "is not valid")).removeprefix("Value error, ")
        lines.append(f"setting {key}={shown} is not allowed: {msg}")
    return lines


def check_cron(expr: str) -> str:
    """``expr`` if it is a standard 5-field crontab expression, else ``ValueError`` saying why."""
    if len(expr.split()) != 5:
        raise ValueError("must be a 5-field crontab expression (minute hour day-of-month month day-of-week), "
                         "e.g. '0 9 * * MON'")
    try:
        CronSim(expr, datetime(2000, 1, 1))
    except CronSimError as e:
        raise ValueError(f"is not a valid crontab expression ({e}); expected e.g. '0 9 * * MON'") from None
    return expr


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        toml_file="fwbot.toml",
        populate_by_name=True,
    )

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")

    fireworks_api_key: SecretStr | None = Field(default=None, alias="FIREWORKS_API_KEY")
    fireworks_account_id: str | None = Field(default=None, alias="FIREWORKS_ACCOUNT_ID")
    fireworks_base_url: str | None = Field(default=None, alias="FIREWORKS_BASE_URL")

    host: str = Field(default="0.0.0.0", validation_alias=AliasChoices("FWBOT_HOST", "host"))
    port: int = Field(default=3000, validation_alias=AliasChoices("PORT", "port"))

    db: str = Field(default="./fwbot.db", alias="FWBOT_DB")
    # sqlite:///path/fwbot.db or postgresql://user:password@host:5432/db; wins over FWBOT_DB. A
    # secret: it may carry the password.
    database_url: SecretStr | None = Field(default=None, alias="FWBOT_DATABASE_URL")
    admins: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="FWBOT_ADMINS")
    approvers: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="FWBOT_APPROVERS")
    # Slack team (T…) and enterprise (E…) ids whose requests are served; empty = the installed
    # team, learned from auth.test at start-up.
    allowed_teams: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="FWBOT_ALLOWED_TEAMS")
    approval_threshold_usd_per_hour: float = Field(default=20.0, alias="FWBOT_APPROVAL_THRESHOLD_USD_PER_HOUR")
    approval_channel: str | None = Field(default=None, alias="FWBOT_APPROVAL_CHANNEL")
    approval_expiry: float = Field(default=24 * 3600.0, alias="FWBOT_APPROVAL_EXPIRY")
    alert_channel: str | None = Field(default=None, alias="FWBOT_ALERT_CHANNEL")
    sync_interval: float = Field(default=30.0, alias="FWBOT_SYNC_INTERVAL")
    metrics_interval: float = Field(default=60.0, alias="FWBOT_METRICS_INTERVAL")
    warn_before_scale_to_zero: float = Field(default=_POLICY.warn_before_scale_to_zero_s, alias="FWBOT_WARN_BEFORE_SCALE_TO_ZERO")
    warn_before_delete: Annotated[list[float], NoDecode] = Field(default_factory=lambda: list(_POLICY.warn_before_delete_s), alias="FWBOT_WARN_BEFORE_DELETE")
    idle_paying_after: float = Field(default=_POLICY.idle_paying_after_s, alias="FWBOT_IDLE_PAYING_AFTER")
    timezone: str = Field(default="UTC", alias="FWBOT_TIMEZONE")
    cost_summary_cron: str = Field(default="0 9 * * MON", alias="FWBOT_COST_SUMMARY_CRON")
    prices: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict, alias="FWBOT_PRICES")
    # How long the leader lease lasts without renewal (bot/jobs/leadership.py); default
    # max(3 × FWBOT_SYNC_INTERVAL, 15s).
    leader_lease: float | None = Field(default=None, alias="FWBOT_LEADER_LEASE")
    # The team's guardrails (bot/services/policy.py): a file with a [policy] table; default the
    # [policy] table of ./fwbot.toml when there is one (the settings themselves ignore that table).
    policy_file: str | None = Field(default=None, alias="FWBOT_POLICY_FILE")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls),
            file_secret_settings,
        )

    @field_validator("admins", "approvers", "allowed_teams", mode="before")
    @classmethod
    def _split_ids(cls, v: Any) -> list[str]:
        return _csv(v)

    @field_validator("sync_interval", "metrics_interval", "idle_paying_after", "approval_expiry", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return _period(v)

    @field_validator("leader_lease", mode="before")
    @classmethod
    def _lease(cls, v: Any) -> float | None:
        return None if v is None or v == "" else _period(v)

    @field_validator("warn_before_scale_to_zero", mode="before")
    @classmethod
    def _lead_time(cls, v: Any) -> float:
        return _lead(v)

    @field_validator("metrics_interval")
    @classmethod
    def _metrics_floor(cls, v: float) -> float:
        # The metrics endpoint allows 6 requests per minute per account.
        if v < 10:
            raise ValueError("must be at least 10s (the API allows 6 scrapes a minute)")
        return v

    @field_validator("warn_before_delete", mode="before")
    @classmethod
    def _leads(cls, v: Any) -> list[float]:
        items = _csv(v) if not isinstance(v, list) else v
        leads = []
        for item in items:
            try:
                leads.append(_lead(item))
            except ValueError as e:
                raise ValueError(f"entry {item!r} {e}; expected a comma-separated list like 24h,1h") from None
        return sorted(leads, reverse=True)

    @field_validator("approval_threshold_usd_per_hour", mode="before")
    @classmethod
    def _threshold(cls, v: Any) -> float:
        try:
            v = float(v)
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v) or v < 0:
            raise ValueError("must be a number of USD per hour, 0 or more, e.g. 20")
        return v

    @field_validator("cost_summary_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        return check_cron(v)

    @field_validator("prices", mode="before")
    @classmethod
    def _prices(cls, v: Any) -> dict[str, float]:
        pairs = list(v.items()) if isinstance(v, dict) else [i.partition("=")[::2] for i in _csv(v)]
        if not isinstance(v, dict):
            for item in _csv(v):
                if "=" not in item:
                    raise ValueError(f"entry {item!r} is not ACCELERATOR_TYPE=USD_PER_GPU_HOUR, "
                                     "e.g. NVIDIA_H100_80GB=6.5")
        out: dict[str, float] = {}
        for key, price in pairs:
            name = str(key).strip()
            try:
                usd = float(price)
            except (TypeError, ValueError):
                usd = math.nan
            if not name or not math.isfinite(usd) or usd < 0:
                raise ValueError(f"entry {name}={price} is not ACCELERATOR_TYPE=USD_PER_GPU_HOUR with a price "
                                 "of 0 or more, e.g. NVIDIA_H100_80GB=6.5")
            out[name] = usd
        return out

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, v: Any) -> Any:
        raw = v.get_secret_value() if isinstance(v, SecretStr) else v
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        scheme = str(raw).split("://", 1)[0].lower() if "://" in str(raw) else ""
        if scheme.split("+", 1)[0] not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("must be sqlite:///path/fwbot.db or postgresql://user:password@host:5432/dbname")
        return str(raw).strip()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError("must be an IANA timezone name, e.g. UTC or Europe/Berlin") from e
        return v

    # -- derived -------------------------------------------------------------------------------
    @property
    def simulated(self) -> bool:
        """No API key: the embedded Fireworks simulator stands in."""
        return self.fireworks_api_key is None

    @property
    def database(self) -> str:
        """Where fwbot keeps its data: ``FWBOT_DATABASE_URL``, else the SQLite file ``FWBOT_DB``."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return self.db

    @property
    def price_table(self) -> dict[str, float]:
        return {**LIST_PRICES_USD_PER_GPU_HOUR, **self.prices}

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def leader_lease_s(self) -> float:
        """How long the leader lease lasts unrenewed: ``FWBOT_LEADER_LEASE``, else three sync
        intervals and at least 15 s (a leader that misses two renewals in a row keeps it)."""
        if self.leader_lease is not None:
            return self.leader_lease
        return max(3 * self.sync_interval, LEADER_LEASE_FLOOR_S)

    @property
    def approvals_enabled(self) -> bool:
        return bool(self.approvers)
