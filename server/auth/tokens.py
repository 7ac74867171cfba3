"""Bearer JWTs: HS256 with the configured secret, or RS256 with a public key / JWKS file."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from jwt import PyJWK

from server.auth.principal import Principal, PrincipalKind, subject_name_problem
from server.config import Settings
from server.errors import AuthenticationError, ConfigError
from server.inputs import text_problem

MAX_TOKEN_BYTES = 8192
# Longest claim texts a token may carry (subject, each role, team).
MAX_SUBJECT = 256
MAX_ROLE = 64
MAX_ROLES = 32


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._keys: dict[str | None, Any] = {}
        try:
            self._load_keys(settings)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                "CUSTOS_JWT_PUBLIC_KEY_FILE / CUSTOS_JWT_JWKS_FILE: "
                f"unreadable key file ({type(exc).__name__})"
            ) from None

    def _load_keys(self, settings: Settings) -> None:
        if settings.jwt_jwks_file is not None:
            jwks = json.loads(settings.jwt_jwks_file.read_text())
            for entry in jwks.get("keys", []):
                self._keys[entry.get("kid")] = PyJWK(entry).key
            self.algorithms = ["RS256"]
        elif settings.jwt_public_key_file is not None:
            self._keys[None] = settings.jwt_public_key_file.read_text()
            self.algorithms = ["RS256"]
        else:
            self._keys[None] = settings.jwt_secret_value()
            self.algorithms = ["HS256"]

    def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthenticationError("token is too large", code="TOKEN_MALFORMED")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError("token is malformed", code="TOKEN_MALFORMED") from None
        key = self._keys.get(header.get("kid"), self._keys.get(None))
        if key is None:
            raise AuthenticationError("token signed by an unknown key", code="TOKEN_INVALID")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("token has expired", code="TOKEN_EXPIRED") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("token signature is invalid", code="TOKEN_INVALID") from None
        except jwt.PyJWTError:
            raise AuthenticationError("token is invalid", code="TOKEN_INVALID") from None
        self._check_lifetime(claims)
        subject = claims["sub"]
        if subject_name_problem(subject) is not None:
            # A token names a person: never an API key, the CLI operator or a rule subject.
            raise AuthenticationError("token subject is not valid", code="TOKEN_INVALID")
        roles = claims.get("roles", [])
        if (
            not isinstance(roles, list)
            or len(roles) > MAX_ROLES
            or not all(_clean(r, MAX_ROLE) for r in roles)
        ):
            raise AuthenticationError(
                f"token claim 'roles' must be a list of at most {MAX_ROLES} role names",
                code="TOKEN_INVALID",
            )
        team = claims.get("team")
        if team is not None and not _clean(team, MAX_ROLE):
            raise AuthenticationError("token claim 'team' must be a string", code="TOKEN_INVALID")
        return Principal(subject=subject, roles=tuple(roles), team=team, kind=PrincipalKind.USER)

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """A token may live at most `CUSTOS_MAX_TOKEN_LIFETIME_SECONDS`: counted from its
        `iat` when it has one, and from now in any case (an `exp` of 10^30 is refused)."""
        limit = self.settings.max_token_lifetime_seconds
        expires = claims["exp"]
        issued = claims.get("iat")
        too_long = expires - time.time() > limit
        if isinstance(issued, int | float) and not isinstance(issued, bool):
            too_long = too_long or expires - issued > limit
        if too_long:
            raise AuthenticationError(
                f"token lifetime exceeds the maximum of {limit} seconds", code="TOKEN_INVALID"
            )


def _clean(value: object, max_length: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_length and text_problem(value) is None


def issue_token(
    settings: Settings,
    *,
    subject: str,
    roles: list[str],
    team: str | None = None,
    ttl_seconds: int = 3600,
) -> str:
    """An HS256 token for dev, tests and the CLI (`custos token`). A subject no token may
    carry (`subject_name_problem`) is refused, so none is ever minted."""
    problem = subject_name_problem(subject)
    if problem is not None:
        raise ValueError(problem)
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "roles": roles, "iat": now, "exp": now + ttl_seconds}
    if team:
        claims["team"] = team
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret_value(), algorithm="HS256")


# The default roles, in the order `make serve` prints their dev tokens.
DEFAULT_ROLES = ("admin", "manager", "agent", "support", "analyst", "compliance", "integrator")


def dev_subject(role: str) -> tuple[str, str | None]:
    """The dev subject and team of a default role (the dev console's accounts too)."""
    subject = "agent-1" if role == "agent" else f"demo-{role}"
    return subject, "east" if role in ("manager", "agent") else None


def dev_token(settings: Settings, role: str, *, ttl_seconds: int = 43_200) -> str:
    """A dev token for one default role, as `custos serve` prints them and dev GraphiQL
    prefills them: subject `demo-<role>` (`agent-1` for the agent, who owns demo
    customers), team `east` for the manager and the agent."""
    subject, team = dev_subject(role)
    return issue_token(settings, subject=subject, roles=[role], team=team, ttl_seconds=ttl_seconds)
