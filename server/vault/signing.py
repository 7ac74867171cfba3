"""Keyed signatures: HMAC-SHA256 under the key provider's versioned `signing` key.

The caller decides what is signed (and puts the key version in it); the key and the MAC
stay in the vault. Old versions stay usable for verification after a new one is added.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Protocol


class SigningKeys(Protocol):
    def signing_key(self) -> tuple[int, bytes]: ...

    def signing_key_version(self, version: int) -> bytes: ...


def sign(keys: SigningKeys, content: Callable[[int], bytes]) -> tuple[int, bytes]:
    """Sign `content(version)` under the newest signing key; returns (version, signature)."""
    version, key = keys.signing_key()
    return version, hmac.new(key, content(version), hashlib.sha256).digest()


def signature_valid(keys: SigningKeys, version: int, content: bytes, signature: bytes) -> bool:
    """Whether `signature` is the signature of `content` under signing key `version`;
    false for a version the key provider no longer has."""
    try:
        key = keys.signing_key_version(version)
    except KeyError:
        return False
    expected = hmac.new(key, content, hashlib.sha256).digest()
    return hmac.compare_digest(expected, bytes(signature))
