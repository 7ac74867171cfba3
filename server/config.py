"""Typed settings from the environment (`CUSTOS_*`).

Secrets are `SecretStr` so they never print. In `dev`, a missing JWT secret and keyring
are generated once and kept on disk with mode 600; in `prod` they are a start-up error.
"""

from __future__ import annotations

import os
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.errors import ConfigError

DEFAULT_STATE_DIR = Path(".custos")


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
    database_url: str = "sqlite+aiosqlite:///./custos.db"
    keyring: Path = DEFAULT_STATE_DIR / "keyring.json"
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
    # Audit: days of events kept hot (`custos audit prune`), and the signed-checkpoint cadence.
    audit_retention_days: int = Field(default=365, ge=1)
    audit_checkpoint_every: int = Field(default=1000, ge=0)
    # Where dev-generated state (JWT secret) lives when not given.
    state_dir: Path = DEFAULT_STATE_DIR
    # Loyalty: points per currency unit of a paid order, referral bonus, member levels
    # ("name:threshold" ascending) measured on lifetime points or on spend.
    loyalty_points_per_unit: Decimal = Field(default=Decimal("0.1"), ge=0)
    loyalty_referral_bonus: int = Field(default=200, ge=0)
    loyalty_level_basis: Literal["points", "spend"] = "points"
    loyalty_levels: str = "bronze:0,silver:1000,gold:5000,platinum:20000"
    # Care queue: contact cadence in days and the holiday table ("MM-DD name;...").
    care_new_customer_days: int = Field(default=90, ge=0)
    care_new_cadence_days: int = Field(default=7, ge=1)
    care_established_cadence_days: int = Field(default=30, ge=1)
    care_holidays: str = (
        "01-01 New Year's Day;03-08 Women's Day;05-01 Labour Day;"
        "06-01 Children's Day;10-01 National Day;12-25 Christmas"
    )
    # Analytics: service cost per interaction, and the value-tier rule (see README).
    analytics_cost_per_interaction: Decimal = Field(default=Decimal("15.00"), ge=0)
    analytics_tier_high_spend: Decimal = Field(default=Decimal("5000"), ge=0)
    analytics_tier_high_orders: int = Field(default=6, ge=1)
    analytics_tier_high_margin: float = Field(default=0.35, ge=0, le=1)
    analytics_tier_mid_spend: Decimal = Field(default=Decimal("1000"), ge=0)
    analytics_tier_mid_orders: int = Field(default=2, ge=1)
    # Grouped metrics suppress groups with fewer customers than this (1: no suppression).
    metrics_min_cell: int = Field(default=5, ge=1)

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
    """Build settings, turning pydantic's error into one naming the bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "CUSTOS_" + "_".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}: {error['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
