"""Bearer JWTs: HS256 with the configured secret, or RS256 with a public key / JWKS file."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from jwt import PyJWK

from server.auth.principal import Principal, PrincipalKind, subject_name_problem
from server.config import Settings
from server.errors import AuthenticationError

MAX_TOKEN_BYTES = 8192


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._keys: dict[str | None, Any] = {}
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
        subject = claims["sub"]
        if subject_name_problem(subject) is not None:
            # A token names a person: never an API key, the CLI operator or a rule subject.
            raise AuthenticationError("token subject is not valid", code="TOKEN_INVALID")
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise AuthenticationError("token claim 'roles' must be a list", code="TOKEN_INVALID")
        team = claims.get("team")
        if team is not None and not isinstance(team, str):
            raise AuthenticationError("token claim 'team' must be a string", code="TOKEN_INVALID")
        return Principal(subject=subject, roles=tuple(roles), team=team, kind=PrincipalKind.USER)


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
