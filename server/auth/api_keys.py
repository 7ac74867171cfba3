"""Integrator API keys: `ck_<prefix>_<secret>`; only a SHA-256 of the whole key is stored.

Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching);
the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_PREFIX = "ck_"


@dataclass(frozen=True, slots=True)
class NewApiKey:
    prefix: str
    secret: str
    key_hash: str


def generate_api_key() -> NewApiKey:
    prefix = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(prefix=prefix, secret=secret, key_hash=hash_api_key(secret))


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_prefix(secret: str) -> str | None:
    if not secret.startswith(KEY_PREFIX):
        return None
    prefix, sep, _ = secret[len(KEY_PREFIX) :].partition("_")
    return prefix if sep and len(prefix) == 12 else None


def matches(secret: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(secret), key_hash)
