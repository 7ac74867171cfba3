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

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.errors import ConfigError

DEFAULT_STATE_DIR = Path(".custos")


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
    # Where dev-generated state (JWT secret) lives when not given.
    state_dir: Path = DEFAULT_STATE_DIR
    # Analytics: service cost per interaction, and the value-tier rule (see README).
    analytics_cost_per_interaction: Decimal = Field(default=Decimal("15.00"), ge=0)
    analytics_tier_high_spend: Decimal = Field(default=Decimal("5000"), ge=0)
    analytics_tier_high_orders: int = Field(default=6, ge=1)
    analytics_tier_high_margin: float = Field(default=0.35, ge=0, le=1)
    analytics_tier_mid_spend: Decimal = Field(default=Decimal("1000"), ge=0)
    analytics_tier_mid_orders: int = Field(default=2, ge=1)

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
