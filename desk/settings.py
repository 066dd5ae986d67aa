"""One validated settings object, built once at start-up.

Sources, later ones win: ``config/*.toml`` (sorted by name), then ``DESK_*``
environment variables.  TOML sections flatten into prefixed names, so
``[ami] host`` is the field ``ami_host`` and the variable ``DESK_AMI_HOST``.
Any problem becomes a ``SettingsError`` whose message is one line naming the
setting, where it came from and what is wrong.
"""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
from collections.abc import Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "insecure"})
DEMO_SECRET_KEY = "demo-only-secret-key-not-for-production-use"
ENV_PREFIX = "DESK_"
_ORIGIN = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
# Variables with the prefix that configure tooling rather than the service.
ENV_IGNORED = frozenset(
    {
        "DESK_CONFIG_DIR",
        "DESK_TEST_POSTGRES_URL",
        "DESK_TEST_REDIS_URL",
        "DESK_AMI_RECORDINGS",
        "DESK_SCREENSHOTS",
    }
)


class SettingsError(Exception):
    """A setting is missing or invalid; ``str()`` is the one line to print."""


class QueueSettings(BaseModel):
    """What the PBX does not say about a queue: its wrap-up time and service level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wrap_up_seconds: float = Field(0, ge=0, le=3600)
    service_level_seconds: float = Field(20, gt=0, le=3600)
    # The team whose callback tickets an abandoned call of this queue becomes.
    team: str | None = None


class SurveyTriggerSettings(BaseModel):
    """One survey trigger (a ticket solved, an answered call): on or off, its delay,
    and the channels it may use, in order of preference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    delay_minutes: float = Field(30, ge=0, le=7 * 24 * 60)
    channels: list[Literal["email"]] = Field(["email"], min_length=1)
    # Calls only: shorter conversations (a wrong number) are not surveyed.
    min_talk_seconds: float = Field(0, ge=0, le=3600)


class RateLimit(BaseModel):
    """At most ``count`` requests in ``seconds``, refilled evenly (a token bucket)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=1, le=100_000)
    seconds: float = Field(gt=0, le=7 * 24 * 3600)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    mode: Literal["production", "demo", "test"] = "production"
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    secret_key: SecretStr = SecretStr("")
    database_url: str = "sqlite+aiosqlite:///var/calldesk.db"
    redis_url: str = ""
    phone_region: str = "DE"
    # The call center's own time zone (IANA name): where the wallboard's day starts and
    # how its hours are labelled.  Stored times stay UTC.
    timezone: str = "UTC"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # "json": one object per line with request and call ids, for a log pipeline
    # (docs/deploy.md); "text" reads better at a terminal.
    log_format: Literal["text", "json"] = "text"
    session_hours: int = Field(12, ge=1, le=24 * 30)
    # On SIGTERM, requests in flight get this long to finish before they are cut.
    shutdown_timeout: float = Field(10, ge=0, le=600)
    # Prometheus scrapes /metrics; with a token set, only with "Authorization: Bearer <token>".
    metrics_enabled: bool = True
    metrics_token: SecretStr = SecretStr("")

    # A customer's answer within this many days reopens a solved ticket; later
    # ones (and any answer to a closed ticket) belong in a new ticket.
    tickets_reopen_days: float = Field(7, ge=0, le=365)

    # The address people reach this service at, e.g. https://desk.example.com.  https
    # makes every cookie Secure and sends Strict-Transport-Security; empty: cookies
    # are Secure in production only (a TLS proxy is assumed in front) and no HSTS.
    public_url: str = ""
    # Proxies (addresses or networks) whose X-Forwarded-For is believed: only they
    # may say who the client is, anyone else could claim any address.
    security_trusted_proxies: list[str] = []
    # Images on pages may come from these origins besides this service (a CDN for
    # help center articles), e.g. ["https://cdn.example.com"].
    security_img_sources: list[str] = []
    # Requests per client address before a 429; login_address counts failed sign-ins
    # only (a whole office may sign in at 9:00), login_account every sign-in per name.
    rate_limits_enabled: bool = True
    rate_limits_login_address: RateLimit = RateLimit(count=30, seconds=300)
    rate_limits_login_account: RateLimit = RateLimit(count=10, seconds=60)
    rate_limits_public_ticket: RateLimit = RateLimit(count=5, seconds=600)
    rate_limits_survey_answer: RateLimit = RateLimit(count=30, seconds=600)
    rate_limits_help_search: RateLimit = RateLimit(count=60, seconds=60)
    # This many failed sign-ins under one name within the window lock it for a while.
    lockout_failures: int = Field(10, ge=1, le=1000)
    lockout_window_minutes: float = Field(15, gt=0, le=7 * 24 * 60)
    lockout_minutes: float = Field(15, gt=0, le=7 * 24 * 60)

    ami_host: str = ""
    ami_port: int = Field(5038, ge=1, le=65535)
    ami_username: str = "desk"
    ami_secret: SecretStr = SecretStr("")
    ami_ping_interval: float = Field(15, gt=0, le=300)

    # Channels of these endpoints carry customers; every other PJSIP channel is an agent.
    cti_trunks: list[str] = ["PJSIP/trunk"]
    cti_originate_context: str = "from-agents"
    cti_short_abandon_seconds: float = Field(5, ge=0, le=600)
    cti_callback_on_abandon: bool = True
    cti_queues: dict[str, QueueSettings] = {}

    # SLA: checked and built at start-up by routing.sla_config (errors name the setting).
    sla_calendars: dict[str, dict[str, Any]] = {}
    sla_policies: list[dict[str, Any]] = []
    sla_escalation: dict[str, Any] = {}
    # The watcher wakes at the next due time, and at least this often (clock jumps).
    sla_watch_interval: float = Field(60, gt=0, le=3600)
    sla_watch_batch: int = Field(100, ge=1, le=10_000)

    # Outgoing e-mail (escalations; later surveys) goes through the outbox to this
    # SMTP server.  An empty host turns e-mail off.
    smtp_host: str = ""
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = True  # require STARTTLS on the plain port
    smtp_tls: bool = False  # implicit TLS (usually port 465); STARTTLS is then not used
    # The whole exchange for one message must end within this many seconds.
    smtp_timeout: float = Field(30, gt=0, le=120)
    mail_from: str = ""
    mail_max_attempts: int = Field(10, ge=1, le=50)

    # Ticket routing (config/routing.toml): the tables are checked and built at
    # start-up by routing.routing_config (errors name the key).
    routing_allow_on_call: bool = False
    routing_reassign_when_offline: bool = False
    routing_offline_grace: str = "15m"
    routing_team_only: bool = False
    routing_default_team: str | int | None = None
    routing_weights: dict[str, Any] = {}
    routing_capacity: dict[str, Any] = {}
    routing_categories: dict[str, Any] = {}
    # The backlog and absent agents' tickets are looked at again at least this often.
    routing_sweep_interval: float = Field(60, gt=0, le=3600)
    # With Redis, each process publishes which agents it sees (browsers, phones) this
    # often, under a key that expires after attendance_expiry seconds: a process that
    # dies stops counting that soon (web/attendance_relay.py).
    attendance_interval: float = Field(1, gt=0, le=60)
    attendance_expiry: float = Field(5, gt=0, le=600)
    automation_rules: list[dict[str, Any]] = []

    # Satisfaction surveys (desk.surveys): what triggers one, how often a customer
    # may get one, how long its link works, and which score needs a person.
    surveys_enabled: bool = False
    # The public address the survey links start with; empty: http://host:port.
    surveys_base_url: str = ""
    surveys_ticket_solved: SurveyTriggerSettings = SurveyTriggerSettings()
    surveys_call_answered: SurveyTriggerSettings = SurveyTriggerSettings(
        enabled=False, delay_minutes=10, min_talk_seconds=30
    )
    surveys_period_days: float = Field(30, ge=0, le=365)
    surveys_expire_days: float = Field(14, gt=0, le=365)
    surveys_edit_minutes: float = Field(30, ge=0, le=7 * 24 * 60)
    surveys_excluded_tags: list[str] = ["spam", "duplicate"]
    # A score at or under these is low; -1 switches a scale off (TOML has no null).
    surveys_low_csat: int = Field(2, ge=-1, le=5)
    surveys_low_nps: int = Field(6, ge=-1, le=10)
    surveys_low_ces: int = Field(-1, ge=-1, le=7)
    surveys_reopen_ticket: bool = True
    surveys_comment_max: int = Field(2000, ge=1, le=10_000)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        # Accept the plain driver-less forms people copy from docs and pick the async driver.
        if value.startswith("sqlite:///"):
            value = "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        elif value.startswith(("postgresql://", "postgres://")):
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be empty or a redis:// URL")
        return value

    @field_validator("attendance_expiry")
    @classmethod
    def _expiry_outlasts_interval(cls, value: float, info: ValidationInfo) -> float:
        interval = info.data.get("attendance_interval")
        if interval is not None and value <= interval:
            raise ValueError(f"must be longer than attendance_interval ({interval:g}s)")
        return value

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not an ISO 3166 region phonenumbers knows")
        return region

    @field_validator("smtp_host")
    @classmethod
    def _smtp_host_name(cls, value: str) -> str:
        value = value.strip()
        if "://" in value or "/" in value or any(c.isspace() for c in value):
            raise ValueError("must be a host name or address, not a URL (e.g. smtp.example.com)")
        return value

    @field_validator("smtp_password")
    @classmethod
    def _smtp_password_with_username(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        if info.data.get("smtp_username") and not value.get_secret_value():
            raise ValueError("required when smtp_username is set")
        return value

    @field_validator("mail_from")
    @classmethod
    def _mail_from_address(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        if not value:
            if info.data.get("smtp_host"):
                raise ValueError(
                    "required when smtp_host is set (e.g. 'Calldesk <desk@example.com>')"
                )
            return value
        _, address = parseaddr(value)
        local, _, domain = address.rpartition("@")
        if not local or not domain or any(c.isspace() for c in address):
            raise ValueError("must be an e-mail address like 'Calldesk <desk@example.com>'")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone like 'Europe/Berlin' or 'UTC'") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @field_validator("public_url", "surveys_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and (
            not value.startswith(("https://", "http://"))
            or any(c.isspace() for c in value)
            or "?" in value
            or "#" in value
        ):
            raise ValueError("must be an http(s):// address like https://desk.example.com")
        return value

    @field_validator("security_trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @field_validator("security_img_sources")
    @classmethod
    def _image_origins(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _ORIGIN.match(item):
                raise ValueError(f"{item!r} is not an https:// origin like https://cdn.example.com")
        return value

    @property
    def survey_link_base(self) -> str:
        return self.surveys_base_url or self.public_url or f"http://{self.host}:{self.port}"

    @property
    def https(self) -> bool:
        """Whether browsers reach this service over https (so cookies can be Secure)."""
        if self.public_url:
            return self.public_url.startswith("https://")
        return self.mode == "production"

    @property
    def is_demo(self) -> bool:
        return self.mode == "demo"

    @property
    def ami_enabled(self) -> bool:
        return bool(self.ami_host)

    @property
    def mail_enabled(self) -> bool:
        return bool(self.smtp_host)


def _flatten(table: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level tables become prefixes; tables inside them stay values (``cti_queues``)."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}_{inner}": item for inner, item in value.items()})
        else:
            flat[key] = value
    return flat


def _from_environment(value: str) -> Any:
    # Lists and tables come as JSON (DESK_CTI_TRUNKS='["PJSIP/trunk"]'); the rest as text.
    if value.startswith(("[", "{")):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _read_config_dir(config_dir: Path) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    if not config_dir.is_dir():
        raise SettingsError(f"config directory {config_dir} does not exist")
    for path in sorted(config_dir.glob("*.toml")):
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from exc
        for name, value in _flatten(table).items():
            values[name] = value
            origin[name] = f"{path.name}: {name}"
    return values, origin


def default_config_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "config"


def load_settings(
    *,
    config_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build and validate settings; raise ``SettingsError`` with one clear line."""
    import os

    env = os.environ if environ is None else environ
    directory = config_dir or Path(env.get("DESK_CONFIG_DIR") or default_config_dir())
    values, origin = _read_config_dir(directory)
    for key, value in env.items():
        if key.startswith(ENV_PREFIX) and key not in ENV_IGNORED:
            name = key.removeprefix(ENV_PREFIX).lower()
            values[name] = _from_environment(value)
            origin[name] = f"environment variable {key}"
    for name, value in (overrides or {}).items():
        values[name] = value
        origin[name] = f"setting {name}"

    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        where = origin.get(name, f"setting {name}")
        if first["type"] == "extra_forbidden":
            raise SettingsError(f"{where}: unknown setting") from None
        raise SettingsError(f"{where}: {first['msg']} (got {first.get('input')!r})") from None

    secret = settings.secret_key.get_secret_value()
    if settings.is_demo and secret.lower() in PLACEHOLDER_SECRETS:
        settings = settings.model_copy(update={"secret_key": SecretStr(DEMO_SECRET_KEY)})
    elif not settings.is_demo:
        where = origin.get("secret_key", "DESK_SECRET_KEY")
        if secret.lower() in PLACEHOLDER_SECRETS:
            raise SettingsError(
                f"{where}: secret key is missing or a placeholder; set DESK_SECRET_KEY "
                "to a random string of at least 32 characters"
            )
        if len(secret) < 32:
            raise SettingsError(f"{where}: secret key must be at least 32 characters")
    return settings
