"""Typed settings from the environment (`CUSTOS_*`) and `$CUSTOS_HOME/custos.env`.

Every command and server on a machine resolves its state from one place, whatever the
working directory: `CUSTOS_HOME` (default `~/.custos`) holds the dev JWT secret, the
keyring and its key store, the default SQLite database and the optional settings file.
The environment overrides the file; `CUSTOS_HOME` itself is read from the environment
only. Secrets are `SecretStr` so they never print. In `dev`, a missing JWT secret and
keyring are generated once and kept on disk with mode 600; in `prod` they are a start-up
error.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable
from contextlib import suppress
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from limits import parse as parse_rate
from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.business_calendar import parse_days, parse_hours, timezone_of
from server.data.engine import PoolSettings
from server.errors import ConfigError

SETTINGS_FILE = "custos.env"


def custos_home() -> Path:
    """The one directory of this machine's Custos state: `$CUSTOS_HOME`, or `~/.custos`."""
    raw = os.environ.get("CUSTOS_HOME", "").strip()
    if raw:
        return Path(raw).expanduser().absolute()
    try:
        return Path.home() / ".custos"
    except RuntimeError:  # no home directory to expand (a bare service account)
        raise ConfigError("CUSTOS_HOME: not set and the user has no home directory") from None


MIN_PROD_SECRET_BYTES = 32


class ComplaintDeadlineHours(BaseModel):
    """How long a complaint of one severity may wait at each step, in hours."""

    acknowledge: float = Field(default=2, gt=0)
    resolve: float = Field(default=24, gt=0)
    # Counted from the resolution, not from the opening.
    follow_up: float = Field(default=24, gt=0)


def default_complaint_deadlines() -> dict[str, ComplaintDeadlineHours]:
    return {
        "low": ComplaintDeadlineHours(),
        "normal": ComplaintDeadlineHours(),
        "high": ComplaintDeadlineHours(),
        "critical": ComplaintDeadlineHours(acknowledge=1, resolve=8),
    }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOS_", extra="ignore")

    env: Literal["dev", "prod"] = "dev"
    # The state directory; the three settings below default to files inside it.
    home: Path = Field(default_factory=custos_home)
    database_url: str = Field(default_factory=lambda: _sqlite_url(custos_home()))
    keyring: Path = Field(default_factory=lambda: custos_home() / "keyring.json")
    jwt_secret: SecretStr | None = None
    # RS256 for production: a PEM public key file or a JWKS file; either turns RS256 on.
    jwt_public_key_file: Path | None = None
    jwt_jwks_file: Path | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_query_depth: int = Field(default=12, ge=2)
    max_aliases: int = Field(default=30, ge=1)
    max_tokens: int = Field(default=2_000, ge=50)
    max_page_size: int = Field(default=1_000, ge=1)
    # Retention in days per data class and table (unset: kept until erasure). Applied by
    # `custos retention run`, which clears the sealed values older than this.
    retention_interaction_notes_days: int | None = Field(default=None, ge=1)
    retention_complaint_texts_days: int | None = Field(default=None, ge=1)
    retention_complaint_event_notes_days: int | None = Field(default=None, ge=1)
    # Service levels. Inbound consultations: first answer and solution deadlines.
    interaction_first_response_hours: float = Field(default=2, gt=0)
    interaction_solution_hours: float = Field(default=24, gt=0)
    # Complaint deadlines per severity (JSON in CUSTOS_COMPLAINT_DEADLINES); the keys are
    # the severities a complaint may have.
    complaint_deadlines: dict[str, ComplaintDeadlineHours] = Field(
        default_factory=default_complaint_deadlines, min_length=1
    )
    # A customer file not reviewed for this many months is stale.
    customer_review_months: int = Field(default=6, ge=1, le=120)
    # Audit: days of events kept hot (`custos audit prune`); how often each server's sealer
    # looks for unsealed entries (0: never, leave it to `custos audit seal`) and the most
    # entries one block holds.
    audit_retention_days: int = Field(default=365, ge=1)
    audit_seal_interval_seconds: float = Field(default=0.25, ge=0, le=60)
    audit_block_size: int = Field(default=1024, ge=1, le=65536)
    # Where dev-generated state (JWT secret) lives when not given: the home by default.
    state_dir: Path = Field(default_factory=custos_home)
    # Loyalty: points per currency unit of a paid order, referral bonus, member levels
    # ("name:threshold" ascending) measured on lifetime points or on spend.
    loyalty_points_per_unit: Decimal = Field(default=Decimal("0.1"), ge=0)
    loyalty_referral_bonus: int = Field(default=200, ge=0)
    loyalty_level_basis: Literal["points", "spend"] = "points"
    loyalty_levels: str = "bronze:0,silver:1000,gold:5000,platinum:20000"
    # A campaign conversion is an order placed within this many days of the campaign
    # reaching the customer.
    campaign_conversion_days: int = Field(default=30, ge=1, le=365)
    # The business calendar (server/business_calendar.py): the time zone of every period,
    # "today" and due date; working hours and days for service-level clocks.
    business_timezone: str = "Asia/Shanghai"
    business_hours: str = "09:00-18:00"
    # `cn`: China's statutory holidays and adjusted workdays; `weekdays`: Monday to Friday.
    business_calendar: Literal["cn", "weekdays"] = "cn"
    business_extra_holidays: str = ""
    business_extra_workdays: str = ""
    # Service-level deadlines count `business` hours on working days, or `wall` hours.
    sla_clock: Literal["business", "wall"] = "business"
    # Care queue: contact cadence in days and the holiday table ("MM-DD name;...").
    care_new_customer_days: int = Field(default=90, ge=0)
    care_new_cadence_days: int = Field(default=7, ge=1)
    care_established_cadence_days: int = Field(default=30, ge=1)
    # "MM-DD name" on the Gregorian calendar, "LMM-DD name" on the lunar calendar.
    care_holidays: str = (
        "01-01 New Year's Day 元旦;L01-01 Spring Festival 春节;L01-15 Lantern Festival 元宵节;"
        "03-08 Women's Day 妇女节;05-01 Labour Day 劳动节;L05-05 Dragon Boat Festival 端午节;"
        "L08-15 Mid-Autumn Festival 中秋节;10-01 National Day 国庆节"
    )
    # Customers whose stored lifecycle is `at_risk` join the care queue; handled ones
    # come back after this many days.
    care_at_risk_repeat_days: int = Field(default=30, ge=1)
    # Retention playbook: actions per churn signal (JSON over the defaults, see README),
    # and how many days after a done retention task a purchase counts as won back.
    retention_playbook: str = ""
    retention_won_back_days: int = Field(default=30, ge=1, le=365)
    # Analytics: service cost per interaction, and the value-tier rule (see README).
    analytics_cost_per_interaction: Decimal = Field(default=Decimal("15.00"), ge=0)
    analytics_tier_high_spend: Decimal = Field(default=Decimal("5000"), ge=0)
    analytics_tier_high_orders: int = Field(default=6, ge=1)
    analytics_tier_high_margin: float = Field(default=0.35, ge=0, le=1)
    analytics_tier_mid_spend: Decimal = Field(default=Decimal("1000"), ge=0)
    analytics_tier_mid_orders: int = Field(default=2, ge=1)
    # Limits on one operation and rate limits per principal: README "Limits, cost and
    # rate limits". A rate limit is "N/second|minute|hour" (the `limits` notation) or off.
    max_fields: int = Field(default=5_000, ge=10)
    max_query_cost: int = Field(default=100_000, ge=1)
    request_timeout_seconds: float = Field(default=30, gt=0)
    rate_limits: bool = True
    rate_limit_cost: str | None = "500000/minute"
    rate_limit_lookups: str | None = "60/minute"
    rate_limit_failed_auth: str | None = "30/minute"
    # Failed console sign-ins: per account (a password guessed slowly from many addresses)
    # and per client address (many accounts tried from one).
    rate_limit_signin_account: str | None = "5/15 minutes"
    rate_limit_signin_address: str | None = "20/15 minutes"
    # How long a console session lives without use, and at most.
    session_idle_seconds: int = Field(default=1_800, ge=60)
    session_max_seconds: int = Field(default=43_200, ge=300)
    redis_url: str | None = None
    # Database connections per process (PostgreSQL): kept open, extra under load, how long
    # a request waits for one, and the age at which one is replaced (instead of a ping on
    # every checkout). A 4-worker server opens at most 4 * (size + overflow).
    db_pool_size: int = Field(default=10, ge=1, le=1000)
    db_max_overflow: int = Field(default=10, ge=0, le=1000)
    db_pool_timeout_seconds: float = Field(default=5, gt=0)
    db_pool_recycle_seconds: int = Field(default=1800, ge=1)
    # The longest a request waits for the write lock (SQLite: the process's queue, then
    # another process) before the answer is 503 DATABASE_BUSY with Retry-After.
    db_busy_seconds: float = Field(default=10, gt=0)
    db_retry_after_seconds: int = Field(default=1, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _inside_home(cls, data: Any) -> Any:
        """Paths not given default to files inside `home` (given or resolved)."""
        if not isinstance(data, dict):
            return data
        home = Path(data.get("home") or custos_home()).expanduser()
        data = {**data, "home": home}
        data.setdefault("state_dir", home)
        data.setdefault("keyring", home / "keyring.json")
        data.setdefault("database_url", _sqlite_url(home))
        return data

    # Hostile input (README "Input rules and errors"): the longest string and list one
    # request may carry, checked before anything converts it.
    max_input_string: int = Field(default=20_000, ge=256)
    max_input_list: int = Field(default=1_000, ge=10)
    # "Did you mean ...?" in error messages; unset: on in dev, off in prod.
    graphql_suggestions: bool | None = None
    # The longest a bearer token may live: `exp` minus `iat` (and minus now).
    max_token_lifetime_seconds: int = Field(default=86_400, ge=60)

    # Grouped metrics suppress groups with fewer customers than this (1: no suppression).
    metrics_min_cell: int = Field(default=5, ge=1)

    # Operations (README "Operations"). Logs: one JSON line per request (the default in
    # prod) or text; unset: json in prod, text in dev.
    log_format: Literal["json", "text"] | None = None
    # Prometheus `/metrics` without a token on this port (scrape from inside the network);
    # unset: only on the main port, for a token with the `metrics` permission.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # Where the workers' metric files live (prometheus-client's multiprocess mode);
    # unset: `metrics/` in the state directory.
    metrics_dir: Path | None = None
    # Browser origins allowed to call the API ("https://app.example.com,..."; "*": any).
    cors_origins: str = ""
    # Addresses or networks of the reverse proxies whose X-Forwarded-For/-Proto are
    # believed ("10.0.0.5,10.1.0.0/16"); unset: none, the peer's address is the client's.
    trusted_proxies: str = ""
    # Persisted documents (README "Persisted documents"): Automatic Persisted Queries,
    # and the trusted-documents mode in which only registered documents run.
    persisted_queries: bool = True
    trusted_documents: bool = False
    # A JSON manifest of trusted documents ({"<sha256>": "<document>"} or a list of
    # documents), read at start-up besides those registered with `custos documents add`.
    trusted_documents_file: Path | None = None

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Accept plain `sqlite://` and `postgresql://` URLs and pick the async driver."""
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
        if url.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        if url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            return url
        raise ValueError("must be a sqlite:/// or postgresql:// URL")

    @field_validator(
        "rate_limit_cost",
        "rate_limit_lookups",
        "rate_limit_failed_auth",
        "rate_limit_signin_account",
        "rate_limit_signin_address",
    )
    @classmethod
    def _rate_limit(cls, value: str | None) -> str | None:
        """A rate in the `limits` notation ("100/minute"), or off ("", "off")."""
        if value is None or value.strip().lower() in ("", "off", "none"):
            return None
        try:
            parsed = parse_rate(value)
        except ValueError:
            raise ValueError('must be like "100/minute", or "off"') from None
        if parsed.amount < 1:
            raise ValueError("must allow at least 1")
        return value.strip()

    @field_validator(
        "business_timezone",
        "business_hours",
        "business_extra_holidays",
        "business_extra_workdays",
    )
    @classmethod
    def _calendar_text(cls, value: str, info: ValidationInfo) -> str:
        """Refuse a time zone, hours or days the business calendar cannot read at start-up."""
        check: Callable[[str], object] = {
            "business_timezone": timezone_of,
            "business_hours": parse_hours,
        }.get(info.field_name or "", parse_days)
        try:
            check(value)
        except ConfigError as error:
            raise ValueError(error.message) from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        """Addresses or networks (`10.0.0.5`, `10.1.0.0/16`, `::1`), or `*` for any peer."""
        for entry in (part.strip() for part in value.split(",")):
            if not entry or entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    "must be IP addresses or networks separated by commas (or *)"
                ) from None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        """Origins as browsers send them: `scheme://host[:port]`, no path; or `*`."""
        for origin in (part.strip() for part in value.split(",")):
            if not origin or origin == "*":
                continue
            scheme, sep, rest = origin.partition("://")
            if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
                raise ValueError("must be origins like https://app.example.com (or *)")
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough_for_prod(
        cls, secret: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        """HS256 is only as strong as its secret: prod wants at least 32 bytes."""
        if (
            secret is not None
            and info.data.get("env") == "prod"
            and len(secret.get_secret_value().encode()) < MIN_PROD_SECRET_BYTES
        ):
            raise ValueError(f"must be at least {MIN_PROD_SECRET_BYTES} bytes when CUSTOS_ENV=prod")
        return secret

    @property
    def suggestions(self) -> bool:
        """Whether error messages may suggest schema names ("Did you mean ...?")."""
        if self.graphql_suggestions is not None:
            return self.graphql_suggestions
        return self.env == "dev"

    @property
    def pool(self) -> PoolSettings:
        return PoolSettings(
            size=self.db_pool_size,
            max_overflow=self.db_max_overflow,
            timeout=self.db_pool_timeout_seconds,
            recycle=self.db_pool_recycle_seconds,
            busy_seconds=self.db_busy_seconds,
        )

    @property
    def json_logs(self) -> bool:
        if self.log_format is not None:
            return self.log_format == "json"
        return self.env == "prod"

    @property
    def metrics_path(self) -> Path:
        return self.metrics_dir or self.state_dir / "metrics"

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def graphiql(self) -> bool:
        return self.env == "dev"

    def jwt_secret_value(self) -> str:
        """The HS256 secret; in dev generated once into the state dir."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if self.env == "prod":
            raise ConfigError("CUSTOS_JWT_SECRET is required when CUSTOS_ENV=prod")
        path = self.state_dir / "jwt_secret"
        value = read_or_create_secret_file(path, lambda: secrets.token_urlsafe(48))
        self.jwt_secret = SecretStr(value)
        return value


def _sqlite_url(home: Path) -> str:
    return f"sqlite+aiosqlite:///{home / 'custos.db'}"


def read_or_create_secret_file(path: Path, make: object) -> str:
    """Return the file's content, creating it (mode 600, dir 700) the first time."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    assert callable(make)
    value = str(make())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment and `$CUSTOS_HOME/custos.env` (the environment
    wins), turning pydantic's error into one naming the bad variable."""
    home = custos_home()
    values: dict[str, Any] = {"home": home, **overrides}
    try:
        settings = Settings(_env_file=home / SETTINGS_FILE, **values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "CUSTOS_" + "_".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}: {error['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
    if settings.database_url == _sqlite_url(settings.home):
        # The default database lives in the home: make it on first use (a read-only or
        # missing parent then fails where the database is opened, naming the file).
        with suppress(OSError):
            settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return settings
