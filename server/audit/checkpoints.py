"""Signed checkpoints: a keyed statement "the chain tip at seq N had hash H".

Signatures are HMAC-SHA256 under the keyring's `signing` key (versioned, so old
checkpoints stay verifiable after a new key version is added). A verifier holding the key
can start from a checkpoint instead of the genesis, which is what makes pruning safe.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from server.audit.chain import canonical

# Periodic checkpoints are written inside the append that reaches a multiple of this.
DEFAULT_CHECKPOINT_EVERY = 1000


class SigningKeys(Protocol):
    def signing_key(self) -> tuple[int, bytes]: ...

    def signing_key_version(self, version: int) -> bytes: ...


def _aware_iso(value: datetime) -> str:
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def checkpoint_content(
    seq: int, chain_hash: str, created_at: datetime, key_version: int, detail: dict[str, Any]
) -> bytes:
    return canonical(
        {
            "seq": seq,
            "hash": chain_hash,
            "created_at": _aware_iso(created_at),
            "key_version": key_version,
            "detail": detail,
        }
    )


@dataclass(frozen=True)
class CheckpointSigner:
    keys: SigningKeys = field(repr=False)
    every: int = DEFAULT_CHECKPOINT_EVERY

    def sign(
        self, seq: int, chain_hash: str, created_at: datetime, detail: dict[str, Any]
    ) -> tuple[int, bytes]:
        version, key = self.keys.signing_key()
        content = checkpoint_content(seq, chain_hash, created_at, version, detail)
        return version, hmac.new(key, content, hashlib.sha256).digest()

    def is_valid(
        self,
        seq: int,
        chain_hash: str,
        created_at: datetime,
        key_version: int,
        detail: dict[str, Any],
        signature: bytes,
    ) -> bool:
        try:
            key = self.keys.signing_key_version(key_version)
        except KeyError:
            return False
        content = checkpoint_content(seq, chain_hash, created_at, key_version, detail)
        expected = hmac.new(key, content, hashlib.sha256).digest()
        return hmac.compare_digest(expected, bytes(signature))

    def is_due(self, seq: int) -> bool:
        return self.every > 0 and seq % self.every == 0
