"""fwbot's one settings object (SPEC §3).

Read from the environment, a ``.env`` file and an optional ``fwbot.toml`` (same keys, any case).
Durations use Go syntax and are stored as seconds.
"""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.durations import parse_go_duration

# List prices of 2026-10-07 (fireworks/contract.md §4), USD per GPU-hour.
LIST_PRICES_USD_PER_GPU_HOUR: dict[str, float] = {
    "NVIDIA_H100_80GB": 8.0,
    "NVIDIA_H200_141GB": 8.0,
    "NVIDIA_B200_180GB": 13.0,
    "NVIDIA_B300_288GB": 15.0,
    "NVIDIA_GB300_288GB": 20.0,
}
LIST_PRICES_AS_OF = "2026-10-07"


def _csv(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [p.strip() for p in str(value).split(",") if p.strip()]


def _seconds(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    return parse_go_duration(str(value))


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
    warn_before_scale_to_zero: float = Field(default=600.0, alias="FWBOT_WARN_BEFORE_SCALE_TO_ZERO")
    warn_before_delete: Annotated[list[float], NoDecode] = Field(default_factory=lambda: [86400.0, 3600.0], alias="FWBOT_WARN_BEFORE_DELETE")
    idle_paying_after: float = Field(default=7200.0, alias="FWBOT_IDLE_PAYING_AFTER")
    timezone: str = Field(default="UTC", alias="FWBOT_TIMEZONE")
    cost_summary_cron: str = Field(default="0 9 * * MON", alias="FWBOT_COST_SUMMARY_CRON")
    prices: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict, alias="FWBOT_PRICES")

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

    @field_validator(
        "sync_interval",
        "metrics_interval",
        "warn_before_scale_to_zero",
        "idle_paying_after",
        "approval_expiry",
        mode="before",
    )
    @classmethod
    def _duration(cls, v: Any) -> float:
        return _seconds(v)

    @field_validator("metrics_interval")
    @classmethod
    def _metrics_floor(cls, v: float) -> float:
        # The metrics endpoint allows 6 requests per minute per account.
        if v < 10:
            raise ValueError("FWBOT_METRICS_INTERVAL must be at least 10s (the API allows 6 scrapes a minute)")
        return v

    @field_validator("warn_before_delete", mode="before")
    @classmethod
    def _leads(cls, v: Any) -> list[float]:
        leads = [_seconds(p) for p in _csv(v)] if not isinstance(v, list) else [_seconds(p) for p in v]
        return sorted(leads, reverse=True)

    @field_validator("prices", mode="before")
    @classmethod
    def _prices(cls, v: Any) -> dict[str, float]:
        if isinstance(v, dict):
            return {str(k).strip(): float(p) for k, p in v.items()}
        out: dict[str, float] = {}
        for item in _csv(v):
            key, sep, price = item.partition("=")
            if not sep:
                raise ValueError(f"FWBOT_PRICES entry {item!r} is not TYPE=USD")
            out[key.strip()] = float(price)
        return out

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"FWBOT_TIMEZONE {v!r} is not an IANA timezone") from e
        return v

    # -- derived -------------------------------------------------------------------------------
    @property
    def simulated(self) -> bool:
        """No API key: the embedded Fireworks simulator stands in."""
        return self.fireworks_api_key is None

    @property
    def price_table(self) -> dict[str, float]:
        return {**LIST_PRICES_USD_PER_GPU_HOUR, **self.prices}

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def approvals_enabled(self) -> bool:
        return bool(self.approvers)
