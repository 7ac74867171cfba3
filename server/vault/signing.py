"""Keyed signatures: HMAC-SHA256 under the key provider's versioned `signing` key, and the
Ed25519 signatures of the audit ledger's block heads (key pairs derived from it).

The caller decides what is signed (and puts the key version in it); the key and the MAC
stay in the vault. Old versions stay usable for verification after a new one is added.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


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


# The audit's query hash: a keyed digest, so a known query template with a guessed value
# cannot be hashed by anyone without the key and compared. Its key is derived from the
# signing key of the same version (domain-separated), so it rotates with it and a
# verifier holding the keyring can check any event's hash; the digest names its version.
QUERY_HASH_WIDTH = 64
_QUERY_HASH_LABEL = b"custos audit query hash"


def _query_key(key: bytes) -> bytes:
    return hmac.new(key, _QUERY_HASH_LABEL, hashlib.sha256).digest()


def _query_digest(version: int, key: bytes, query: str) -> str:
    prefix = f"{version}:"
    digest = hmac.new(_query_key(key), query.encode(), hashlib.sha256).hexdigest()
    return prefix + digest[: QUERY_HASH_WIDTH - len(prefix)]


def query_hash(keys: SigningKeys, query: str) -> str:
    """`<version>:<hex>` (64 characters): HMAC-SHA256 of the query text under a key derived
    from the newest signing key."""
    version, key = keys.signing_key()
    return _query_digest(version, key, query)


def query_hash_matches(keys: SigningKeys, stored: str, query: str) -> bool:
    """Whether `stored` (an event's query hash) is the keyed hash of `query`; false for an
    unkeyed or malformed hash or a version the key provider no longer has."""
    version_text, sep, _ = stored.partition(":")
    if not sep or not version_text.isdigit():
        return False
    try:
        key = keys.signing_key_version(int(version_text))
    except KeyError:
        return False
    return hmac.compare_digest(_query_digest(int(version_text), key, query), stored)


# The audit ledger's block heads are signed with Ed25519, so anyone holding the public key
# can check a block (and an inclusion proof against it) without any secret. The key pair of
# a version is derived from the signing key of the same version (domain-separated), so it
# rotates with it and needs nothing new in the keyring.
_BLOCK_KEY_LABEL = b"custos audit block ed25519"


def _block_key(key: bytes) -> Ed25519PrivateKey:
    seed = hmac.new(key, _BLOCK_KEY_LABEL, hashlib.sha256).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def sign_block(keys: SigningKeys, content: Callable[[int], bytes]) -> tuple[int, bytes]:
    """Sign `content(version)` with the newest version's Ed25519 key; (version, signature)."""
    version, key = keys.signing_key()
    return version, _block_key(key).sign(content(version))


def block_public_key(keys: SigningKeys, version: int) -> bytes:
    """The raw 32-byte Ed25519 public key of signing key `version` (KeyError if unknown)."""
    return (
        _block_key(keys.signing_key_version(version))
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def block_signature_valid(public_key: bytes, content: bytes, signature: bytes) -> bool:
    """Whether `signature` is an Ed25519 signature of `content` under the raw `public_key`:
    needs no secret, so a proof can be checked by anyone holding the public key."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes(public_key)).verify(bytes(signature), content)
    except (InvalidSignature, ValueError):
        return False
    return True
